"""Through Airflow (dag.test, SQLite metadata DB): a value typed in the Params form reaches the
trained model, and an invalid one is refused when the run is created (before any task), on a
multiclass problem with string labels (scikit-learn's wine data), with a RandomForestClassifier."""

from __future__ import annotations

import datetime as dt
import json

import pytest

pytestmark = pytest.mark.e2e
DAG_ID = "mlops_form_to_model"
DAG_FILE = """
import datetime as dt

from airflow.sdk import DAG

from mlops_provider.forms import form_values, retrain_params
from mlops_provider.operators.config import CheckRetrainConfigOperator
from mlops_provider.operators.extract import ExtractOperator
from mlops_provider.operators.train import TrainModelOperator

ESTIMATOR = "sklearn.ensemble.RandomForestClassifier"
with DAG(dag_id={dag_id!r}, schedule=None, start_date=dt.datetime(2013, 1, 1, tzinfo=dt.timezone.utc),
         catchup=False, render_template_as_native_obj=True,
         params=retrain_params(ESTIMATOR, {{"n_estimators": 20, "max_depth": 3, "max_features": "sqrt"}},
                               {{"f1_macro": 0.3}})) as dag:
    model_params, thresholds = form_values(dag.params)
    check = CheckRetrainConfigOperator(task_id="check_config", model_name="wine", estimator=ESTIMATOR,
                                       model_params=model_params, thresholds=thresholds,
                                       seed="{{{{ params.seed }}}}")
    extract = ExtractOperator(task_id="extract", dataset_name="wine_train", source_uri={uri!r})
    train = TrainModelOperator(task_id="train", dataset=extract.output, label="cultivar", estimator=ESTIMATOR,
                               model_params=model_params, seed="{{{{ params.seed }}}}")
    check >> extract >> train
"""


@pytest.fixture
def form_dag(airflow_db, artifact_root, tmp_path, monkeypatch):
    from sklearn.datasets import load_wine

    from tests.helpers import dag_bag_of

    frame = load_wine(as_frame=True).frame
    frame["cultivar"] = frame.pop("target").map({0: "barolo", 1: "grignolino", 2: "barbera"})
    data = tmp_path / "wine.parquet"
    frame.to_parquet(data)
    text = DAG_FILE.format(dag_id=DAG_ID, uri=f"file://{data}")
    return dag_bag_of(tmp_path / "dags", monkeypatch, "mlops-form-tests", {"form_dag.py": text}).dags[DAG_ID]


def test_a_form_value_reaches_the_trained_model_and_a_bad_one_is_refused_at_trigger(form_dag, artifact_root):
    from airflow.exceptions import ParamValidationError
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    from mlops_provider.core.serialization import load_model
    from mlops_provider.core.storage import ArtifactStore

    day = dt.datetime(2013, 7, 1, tzinfo=dt.timezone.utc)
    # the same validation as the trigger form and POST /api/v2/dags/{dag_id}/dagRuns (create_dagrun)
    with pytest.raises(ParamValidationError, match="Invalid input for param n_estimators: 'ten'"):
        form_dag.test(logical_date=day, run_conf={"n_estimators": "ten"})
    with pytest.raises(ParamValidationError, match="Invalid input for param max_depth: 0 is less than"):
        form_dag.test(logical_date=day, run_conf={"max_depth": 0})

    dr = form_dag.test(logical_date=day, run_conf={"n_estimators": 7, "max_depth": 2, "max_features": 0.5})
    states = {ti.task_id: ti.state for ti in dr.get_task_instances()}
    assert states == {"check_config": "success", "extract": "success", "train": "success"}, states
    with create_session() as session:
        (value,) = (
            session.query(XComModel.value)
            .filter(XComModel.dag_id == DAG_ID, XComModel.run_id == dr.run_id, XComModel.task_id == "train")
            .filter(XComModel.key == "return_value")
            .one()
        )
    result = json.loads(value) if isinstance(value, str) else value
    store = ArtifactStore(artifact_root)
    model = load_model(
        store.read_bytes(store.key_of(result["model_uri"])), expected_sha256=result["model_sha256"]
    )
    forest = model.named_steps["model"]
    assert (forest.n_estimators, forest.max_depth, forest.max_features) == (7, 2, 0.5)
    assert len(forest.estimators_) == 7 and max(t.get_depth() for t in forest.estimators_) <= 2
    assert forest.random_state == 42  # the seed field's default
