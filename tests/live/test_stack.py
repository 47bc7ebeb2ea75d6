"""The live stack itself: an asset watched by a trigger in the triggerer starts a DAG run that the
scheduler and executor carry to success, and the task sees its triggering asset event."""

from __future__ import annotations

import textwrap

import pytest

pytestmark = pytest.mark.e2e

DAG = """
import datetime as dt
from airflow.sdk import DAG, Asset, AssetWatcher, task
from airflow.providers.standard.triggers.file import FileDeleteTrigger

DROP = Asset("file://{drop}", watchers=[
    AssetWatcher(name="drop", trigger=FileDeleteTrigger(filepath="{drop}", poke_interval=1)),
])

with DAG(dag_id="live_stack_probe", schedule=[DROP], start_date=dt.datetime(2024, 1, 1), catchup=False):
    @task
    def seen(triggering_asset_events=None):
        events = [e for evs in triggering_asset_events.values() for e in evs]
        assert events and events[0].extra.get("from_trigger") is True, events
        return len(events)

    seen()
"""


def test_a_watched_file_starts_a_run(live_airflow, tmp_path):
    dags = tmp_path / "dags"
    dags.mkdir()
    drop = tmp_path / "drop.flag"
    (dags / "probe.py").write_text(textwrap.dedent(DAG.format(drop=drop)))
    stack = live_airflow(dags)
    stack.unpause("live_stack_probe")
    stack.wait_for(
        lambda: stack.api("GET", "/assets", params={"uri_pattern": "drop.flag"})["assets"],
        60,
        "the asset to be registered",
    )
    drop.write_text("go")
    run = stack.wait_for_run("live_stack_probe", 180)
    assert run["run_type"] == "asset_triggered"
    assert not drop.exists()  # the trigger consumed the file
