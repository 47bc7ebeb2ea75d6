"""train without Airflow, on scikit-learn's bundled data (breast cancer, diabetes, wine): the
model the step saves predicts like the same pipeline built with scikit-learn directly."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes, load_wine
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from mlops_provider.core.datasets import write_snapshot
from mlops_provider.core.errors import EstimatorNotAllowedError, InvalidParameterError
from mlops_provider.core.modeling import FeatureSpec, prepare_frame
from mlops_provider.core.serialization import load_model, sha256_bytes
from mlops_provider.core.steps.run import RunInfo
from mlops_provider.core.steps.train import TrainParams, train
from mlops_provider.core.storage import ArtifactStore
from tests.conftest import files_under


@pytest.fixture
def store(tmp_path):
    return ArtifactStore(f"file://{tmp_path}/root")


def _snapshot(store, name, frame):
    return write_snapshot(store, name, [pa.Table.from_pandas(frame, preserve_index=False)], source="sklearn")


def _reference(estimator, frame, label):
    X, y = frame.drop(columns=label).to_numpy(dtype=float), frame[label].to_numpy()
    return make_pipeline(SimpleImputer(strategy="median"), StandardScaler(), estimator).fit(X, y), X


def test_binary_model_predicts_like_the_sklearn_pipeline(store):
    cancer = load_breast_cancer(as_frame=True).frame
    params = TrainParams(
        "target", estimator="sklearn.linear_model.LogisticRegression", model_params={"C": 0.5}, seed=3
    )
    result = train(
        params, dataset=_snapshot(store, "cancer", cancer), store=store, run=RunInfo.local("train")
    )
    reference, X = _reference(LogisticRegression(C=0.5, random_state=3), cancer, "target")
    spec = FeatureSpec.from_dict(result.to_dict()["spec"])
    proba = result.model.predict_proba(prepare_frame(cancer, spec))
    np.testing.assert_allclose(proba, reference.predict_proba(X), rtol=1e-6, atol=1e-9)
    assert spec.positive_label == 1 and spec.kind == "binary"  # 0/1 labels: 1 by default


def test_regression_result_records_rows_and_label_mean(store):
    diabetes = load_diabetes(as_frame=True).frame
    params = TrainParams("target", estimator="sklearn.linear_model.Ridge", model_params={"alpha": 2.0})
    out = train(
        params, dataset=_snapshot(store, "diabetes", diabetes), store=store, run=RunInfo.local()
    ).to_dict()
    assert out["rows"] == len(diabetes) and out["spec"]["task"] == "regression"
    assert out["label_distribution"]["mean"] == pytest.approx(diabetes["target"].mean())
    reference, X = _reference(Ridge(alpha=2.0), diabetes, "target")
    model = load_model(store.read_bytes(store.key_of(out["model_uri"])), expected_sha256=out["model_sha256"])
    spec = FeatureSpec.from_dict(out["spec"])
    np.testing.assert_allclose(model.predict(prepare_frame(diabetes, spec)), reference.predict(X), rtol=1e-9)


def test_the_saved_model_and_train_json_are_in_the_run_folder(store):
    wine = load_wine(as_frame=True).frame
    run = RunInfo.local("train", run_id="nb-1")
    snap = _snapshot(store, "wine", wine)
    params = TrainParams("target", model_params={"max_iter": 20}, exclude=["proline"])
    result = train(params, dataset=snap.uri, store=store, run=run)
    assert result.model_uri == store.uri(f"{run.folder}/model.skops")
    assert result.model_sha256 == sha256_bytes(store.read_bytes(f"{run.folder}/model.skops"))
    saved = store.read_json(f"{run.folder}/train.json")
    assert saved["dataset"]["sha256"] == snap.sha256 and "proline" not in saved["spec"]["numeric"]
    assert result.lineage()["outputs"] == [result.model_uri]


def test_a_gate_metric_that_does_not_fit_the_labels_fails_before_fitting(store, tmp_path):
    wine = load_wine(as_frame=True).frame
    snap = _snapshot(store, "wine", wine)
    before = files_under(tmp_path / "root")
    params = TrainParams("target", model_params={"max_iter": 20}, gate_metrics="roc_auc, f1")
    with pytest.raises(InvalidParameterError, match="'gate_metrics' parameter of train.*multiclass"):
        train(params, dataset=snap, store=store, run=RunInfo.local())
    assert files_under(tmp_path / "root") == before


def test_form_values_are_coerced():
    params = TrainParams.build(
        "TrainModelOperator (task 'train')", label_column="y", seed="7", model_params='{"max_iter": 5}'
    )
    assert (params.seed, params.model_params) == (7, {"max_iter": 5})
    assert TrainParams("y", seed=7.0).seed == 7


@pytest.mark.parametrize(
    "fields, name",
    [
        ({"label_column": None}, "'label_column'"),
        ({"label_column": "y", "seed": -1}, "'seed'"),
        ({"label_column": "y", "seed": 2**32}, "'seed'"),
        ({"label_column": "y", "model_params": "{bad json"}, "'model_params'"),
        ({"label_column": "y", "features": "a"}, "'features'"),
    ],
)
def test_bad_parameters_are_named(fields, name):
    with pytest.raises(InvalidParameterError, match=f"The {name} parameter of train must be"):
        TrainParams(**fields)


def test_an_estimator_outside_the_allow_list_fails_before_reading(store):
    params = TrainParams("y", estimator="os.system")
    with pytest.raises(
        EstimatorNotAllowedError, match="'estimator' parameter of train must be an allow-listed"
    ):
        train(params, dataset="file:///nowhere", store=store, run=RunInfo.local())
