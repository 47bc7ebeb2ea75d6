"""ReproduceModelOperator in a real DAG run (dag.test): a version that comes out identical passes with
the comparison in XCom; one that differs beyond the tolerance fails the task, comparison in XCom
first; a tampered snapshot fails it naming the snapshot."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from mlops_provider.core.registry import ModelRegistry
from mlops_provider.core.storage import ArtifactStore
from tests.unit.steps.test_reproduce import _wine, retrain

DAG_FILE = """
import datetime as dt
from airflow.sdk import DAG
from mlops_provider.operators.reproduce import ReproduceModelOperator

with DAG(dag_id="mlops_reproduce_check", schedule=None, catchup=False,
         start_date=dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc),
         params={{"model": "wine", "version": 1, "tolerance": 0.01}}):
    ReproduceModelOperator(task_id="reproduce", model_name="{{{{ params.model }}}}",
                           version="{{{{ params.version }}}}", tolerance="{{{{ params.tolerance }}}}",
                           artifact_root={root!r})
"""


@pytest.fixture
def bag(airflow_db, tmp_path, monkeypatch):
    """A registry with wine v1 (deterministic) and wine_rf v1 (a random forest without a seed)."""
    from tests.helpers import dag_bag_of

    root = f"file://{tmp_path / 'artifacts'}"
    store = ArtifactStore(root)
    train_df, eval_df = _wine()
    from mlops_provider.core.steps import TrainParams

    lr = TrainParams(
        "cultivar",
        "sklearn.linear_model.LogisticRegression",
        model_params={"C": 0.5, "max_iter": 5000},
        exclude=["row_id"],
    )
    rf = TrainParams(
        "cultivar",
        "sklearn.ensemble.RandomForestClassifier",
        model_params={"n_estimators": 10, "random_state": None},
        exclude=["row_id"],
    )
    retrain(store, "wine", train_df, eval_df, lr, "w1")
    retrain(store, "wine_rf", train_df, eval_df, rf, "w2")
    return dag_bag_of(
        tmp_path / "dags", monkeypatch, "mlops-reproduce-tests", {"r.py": DAG_FILE.format(root=root)}
    ), root


def _run(bag, **conf):
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    dag = bag.dags["mlops_reproduce_check"]
    dr = dag.test(logical_date=dt.datetime.now(dt.timezone.utc), run_conf=conf)
    (ti,) = dr.get_task_instances()
    with create_session() as session:
        rows = (
            session.query(XComModel.key, XComModel.value)
            .filter(XComModel.dag_id == dr.dag_id, XComModel.run_id == dr.run_id)
            .all()
        )
    xcoms = {k: json.loads(v) if isinstance(v, str) else v for k, v in rows}
    return ti.state, xcoms


def _conf(model: str, version: int = 1, tolerance: float = 0.01) -> dict:
    return {"model": model, "version": version, "tolerance": tolerance}


def test_identical_version_passes_with_the_comparison_in_xcom(bag):
    dags, root = bag
    state, xcoms = _run(dags, **_conf("wine"))
    assert state == "success"
    out = xcoms["return_value"]
    sha = ModelRegistry(ArtifactStore(root)).get_version("wine", 1).model_sha256
    assert out["identical"] is True and out["reproduced"]["model_sha256"] == sha


def test_version_beyond_the_tolerance_fails_the_task_after_its_result_is_in_xcom(bag):
    dags, _ = bag
    state, xcoms = _run(dags, **_conf("wine_rf", tolerance=0.0))
    assert state == "failed"
    out = xcoms["return_value"]
    assert out["identical"] is False and out["reproducible"] is False
    assert any(d["kind"] == "metric" and not d["within_tolerance"] for d in out["differences"])
    assert xcoms["mlops_error"]["error"] == "NotReproducibleError"
    assert "NOT reproduced" in xcoms["mlops_error"]["message"]


def test_tampered_snapshot_fails_the_task_naming_it(bag):
    dags, root = bag
    mv = ModelRegistry(ArtifactStore(root)).get_version("wine", 1)
    data = Path(mv.lineage["eval_dataset"]["uri"].removeprefix("file://")) / "data.parquet"
    data.write_bytes(data.read_bytes() + b"\0")
    state, xcoms = _run(dags, **_conf("wine"))
    assert state == "failed" and "return_value" not in xcoms
    err = xcoms["mlops_error"]
    assert err["error"] == "IntegrityError" and "evaluation snapshot" in err["message"]
    assert mv.lineage["eval_dataset"]["sha256"] in err["message"]
