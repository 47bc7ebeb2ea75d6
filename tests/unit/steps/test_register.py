"""register_and_promote without Airflow: a notebook-style run on a non-demo model (breast cancer)."""

from __future__ import annotations

import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from mlops_provider.core.errors import IntegrityError, InvalidParameterError
from mlops_provider.core.registry import ModelRegistry
from mlops_provider.core.serialization import dump_model, load_model, sha256_bytes
from mlops_provider.core.steps import RegisterParams, RunInfo, register_and_promote
from mlops_provider.core.steps.register import split_evaluation
from mlops_provider.core.storage import ArtifactStore

MODEL = "cancer"


@pytest.fixture(scope="module")
def model_bytes() -> bytes:
    X, y = load_breast_cancer(return_X_y=True)
    return dump_model(make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(X, y))


@pytest.fixture
def store(tmp_path):
    return ArtifactStore(f"file://{tmp_path}/root")


def _trained(store, data: bytes, key: str = "runs/nb/train/model.skops") -> dict:
    store.write_bytes(key, data)
    return {
        "model_uri": store.uri(key),
        "model_sha256": sha256_bytes(data),
        "estimator": "LogisticRegression",
        "spec": {"label": "target"},
        "params": {"C": 1.0},
        "seed": 0,
        "rows": 569,
        "dataset": {"uri": "file:///data/cancer", "sha256": "0" * 64},
    }


def _verdict(passed: bool, champion_version=None) -> dict:
    return {
        "passed": passed,
        "reason": "roc_auc 0.99 >= 0.9" if passed else "roc_auc 0.5 < 0.9",
        "champion_version": champion_version,
        "metrics": {"challenger": {"roc_auc": 0.99}},
        "eval_dataset": {"uri": "file:///data/cancer-eval"},
    }


def test_registers_the_exact_bytes_with_lineage_and_promotes(store, model_bytes):
    registry = ModelRegistry(store)
    run = RunInfo.local("register", run_id="nb-1")
    result = register_and_promote(
        RegisterParams(MODEL),
        trained=_trained(store, model_bytes),
        verdict=_verdict(True),
        store=store,
        registry=registry,
        run=run,
    )
    assert result.created and result.promoted and result.champion_version == result.version.version == 1
    mv = registry.get_version(MODEL, 1)
    assert mv.model_sha256 == sha256_bytes(model_bytes)
    assert mv.lineage["run_id"] == "nb-1" and mv.lineage["dag_id"] == "local"
    assert mv.lineage["train_dataset"]["uri"] == "file:///data/cancer"
    assert mv.metrics == {"roc_auc": 0.99}
    assert registry.history(MODEL)[-1].actor == "local:local/nb-1"
    # what was registered predicts like the model that was trained
    X, _ = load_breast_cancer(return_X_y=True)
    loaded, _ = registry.load(MODEL, 1)
    expected = load_model(model_bytes, expected_sha256=sha256_bytes(model_bytes))
    assert (loaded.predict_proba(X) == expected.predict_proba(X)).all()


def test_same_run_key_returns_the_version_registered_before(store, model_bytes):
    registry = ModelRegistry(store)
    run = RunInfo.local("register", run_id="nb-2")
    kwargs = dict(trained=_trained(store, model_bytes), verdict=None, store=store, registry=registry, run=run)
    first = register_and_promote(RegisterParams(MODEL), **kwargs)
    again = register_and_promote(RegisterParams(MODEL), **kwargs)
    assert first.created and not again.created and again.version.version == first.version.version
    assert [v.version for v in registry.list_versions(MODEL)] == [1]


def test_failed_verdict_registers_without_promoting(store, model_bytes):
    registry = ModelRegistry(store)
    result = register_and_promote(
        RegisterParams(MODEL),
        trained=_trained(store, model_bytes),
        verdict=_verdict(False),
        store=store,
        registry=registry,
        run=RunInfo.local("register"),
    )
    assert result.created and not result.promoted and result.champion_version is None
    assert result.why == "the gate did not pass"


def test_stale_verdict_does_not_replace_a_newer_champion(store, model_bytes):
    registry = ModelRegistry(store)
    first = register_and_promote(
        RegisterParams(MODEL),
        trained=_trained(store, model_bytes),
        verdict=_verdict(True),
        store=store,
        registry=registry,
        run=RunInfo.local("register", run_id="a"),
    )
    # evaluated when there was no champion; v1 was promoted meanwhile
    second = register_and_promote(
        RegisterParams(MODEL),
        trained=_trained(store, model_bytes, "runs/nb/train2/model.skops"),
        verdict=_verdict(True, champion_version=None),
        store=store,
        registry=registry,
        run=RunInfo.local("register", run_id="b"),
    )
    assert first.promoted and not second.promoted
    assert registry.get_alias(MODEL, "champion") == 1 and "since the evaluation" in second.why


def test_model_file_changed_after_training_is_refused(store, model_bytes):
    trained = _trained(store, model_bytes)
    store.write_bytes("runs/nb/train/model.skops", model_bytes + b"\0")
    registry = ModelRegistry(store)
    with pytest.raises(IntegrityError, match="changed after training"):
        register_and_promote(
            RegisterParams(MODEL),
            trained=trained,
            verdict=_verdict(True),
            store=store,
            registry=registry,
            run=RunInfo.local(),
        )
    assert registry.list_models() == []


@pytest.mark.parametrize("field, value", [("model_name", "../x"), ("alias", "a/b"), ("tags", ["x"])])
def test_bad_parameters_name_the_parameter(field, value):
    kwargs = {"model_name": MODEL, field: value}
    with pytest.raises(InvalidParameterError, match=f"The '{field}' parameter of register_and_promote"):
        RegisterParams(**kwargs)


def test_split_evaluation_requires_a_model():
    with pytest.raises(InvalidParameterError, match="'evaluation / model'"):
        split_evaluation({"passed": True}, None, "notebook")
    model, verdict = split_evaluation({"passed": True, "challenger": {"model_uri": "u"}}, None, "nb")
    assert model == {"model_uri": "u"} and verdict == {"passed": True}
