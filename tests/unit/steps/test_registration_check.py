"""What is registered is what was judged: before registering, the model file is loaded through the
safe loader in a fresh process and must predict, on a sample of the evaluation snapshot, what the
judged model predicted (scikit-learn's bundled datasets: binary, multiclass with string labels,
regression)."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.datasets import load_breast_cancer, load_diabetes, load_digits, load_wine
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

from mlops_provider.core import registration_check as RC
from mlops_provider.core.errors import RegisteredModelMismatchError, UnsafeModelError
from mlops_provider.core.modeling import FeatureSpec, predict, prepare_frame
from mlops_provider.core.registry import ModelRegistry
from mlops_provider.core.serialization import dump_model, sha256_bytes
from mlops_provider.core.steps.register import RegisterParams, register_and_promote
from mlops_provider.core.steps.run import RunInfo
from mlops_provider.core.storage import ArtifactStore
from tests.unit.steps.test_evaluate import LOGREG, evaluate, features, frames, snapshot, train, wine_names


@pytest.fixture
def store(tmp_path):
    return ArtifactStore(f"file://{tmp_path}/root")


@pytest.fixture(scope="module")
def cancer():
    return frames(load_breast_cancer)


@pytest.fixture
def cancer_trained(store, cancer):
    train_df, eval_df = cancer
    snap = snapshot(store, "cancer_train", train_df)
    model, trained = train(store, snap, train_df, LOGREG, RunInfo.local("train", run_id="nb-1"), C=0.05)
    return model, trained, snapshot(store, "cancer_eval", eval_df)


def register(store, evaluation: dict, run_id: str = "nb-1", name: str = "cancer"):
    verdict = {k: v for k, v in evaluation.items() if k != "challenger"}
    return register_and_promote(
        RegisterParams(name),
        trained=evaluation["challenger"],
        verdict=verdict,
        store=store,
        registry=ModelRegistry(store),
        run=RunInfo.local("register", run_id=run_id),
    )


def _read(store, uri: str) -> pd.DataFrame:
    return pd.read_parquet(io.BytesIO(store.read_bytes(store.key_of(uri))))


def test_a_normal_version_registers_with_the_check_recorded(store, cancer, cancer_trained):
    model, trained, eval_snap = cancer_trained
    evaluation = evaluate(store, trained, eval_snap).to_dict()
    # the judged predictions are those of the in-memory model (checked against scikit-learn here)
    judged = evaluation["judged"]
    sample = _read(store, judged["sample_uri"])
    proba = _read(store, judged["predictions_uri"])[["proba_0", "proba_1"]].to_numpy()
    assert np.array_equal(proba, model.predict_proba(sample))
    result = register(store, evaluation)
    check = ModelRegistry(store).get_version("cancer", 1).lineage["registration_check"]
    _, eval_df = cancer
    assert result.created and result.promoted
    assert check["compared"] and check["rows_checked"] == len(eval_df) == judged["rows"]
    assert check["rows_differing"] == 0 and check["max_diff"] <= RC.TOLERANCE
    assert check["fresh_process"] and check["loaded_as"] == "sklearn.pipeline.Pipeline"
    assert check["seconds"] > 0


def test_a_file_replaced_by_another_model_is_not_registered(store, cancer, cancer_trained):
    """The evaluated file is replaced, at the same URI, by another (trusted) model, and the recorded
    sha256 with it: only the fresh-process comparison can tell."""
    _, trained, eval_snap = cancer_trained
    first = evaluate(store, trained, eval_snap).to_dict()
    assert register(store, first).promoted  # v1 is the champion
    train_df, _ = cancer
    _, second = train(
        store, {"uri": "u", "sha256": "0" * 64, "rows": 1}, train_df, LOGREG, RunInfo.local("t2")
    )
    evaluation = evaluate(store, second, eval_snap, run_id="nb-2").to_dict()
    other = dump_model(
        make_pipeline(LogisticRegression(C=1e-4, max_iter=50)).fit(features(train_df), train_df["target"])
    )
    store.write_bytes(store.key_of(second["model_uri"]), other)
    evaluation["challenger"]["model_sha256"] = sha256_bytes(other)
    with pytest.raises(RegisteredModelMismatchError, match="predicts differently") as info:
        register(store, evaluation, run_id="nb-2")
    err = info.value
    assert err.model == "cancer" and err.rows_checked == first["judged"]["rows"]
    assert 0 < err.rows_differing <= err.rows_checked and err.max_diff > 1e-3
    registry = ModelRegistry(store)
    assert [v.version for v in registry.list_versions("cancer")] == [1]
    assert registry.get_alias("cancer") == 1


class Doubler(TransformerMixin, BaseEstimator):
    """A custom step: the evaluation's worker trusted it (MLOPS_TRUSTED_TYPES), the registering
    worker does not."""

    def fit(self, X, y=None):
        return self

    def transform(self, X):
        return np.asarray(X, dtype=float) * 2


def test_a_model_the_fresh_process_refuses_to_load_is_not_registered(store, cancer, monkeypatch):
    name = f"{__name__}.Doubler"
    train_df, eval_df = cancer
    monkeypatch.setenv("MLOPS_TRUSTED_TYPES", name)
    model = make_pipeline(Doubler(), LogisticRegression(C=0.05, max_iter=500))
    model.fit(features(train_df), train_df["target"])
    data = dump_model(model)
    key = "runs/nb/train/model.skops"
    spec = FeatureSpec("target", list(features(train_df).columns), [], "classification", [0, 1], 1)
    trained = {
        "model_uri": store.uri(key),
        "model_sha256": store.write_bytes(key, data),
        "spec": spec.to_dict(),
    }
    evaluation = evaluate(store, trained, snapshot(store, "cancer_eval", eval_df)).to_dict()
    monkeypatch.delenv("MLOPS_TRUSTED_TYPES")
    with pytest.raises(UnsafeModelError, match=f"In a fresh process.*outside the trusted list.*{name}"):
        register(store, evaluation)
    assert ModelRegistry(store).list_models() == []


@pytest.mark.parametrize(
    "name, loader, estimator",
    [
        ("wine", load_wine, "sklearn.ensemble.HistGradientBoostingClassifier"),
        ("diabetes", load_diabetes, "sklearn.linear_model.Ridge"),
    ],
)
def test_multiclass_string_labels_and_a_regressor_pass(store, name, loader, estimator):
    train_df, eval_df = frames(loader)
    if loader is load_wine:
        train_df, eval_df = wine_names(train_df), wine_names(eval_df)
    snap = snapshot(store, f"{name}_train", train_df)
    _, trained = train(store, snap, train_df, estimator, RunInfo.local("train"))
    evaluation = evaluate(store, trained, snapshot(store, f"{name}_eval", eval_df), model_name=name).to_dict()
    register(store, evaluation, name=name)
    check = ModelRegistry(store).get_version(name, 1).lineage["registration_check"]
    assert check["rows_checked"] == len(eval_df) and check["rows_differing"] == 0
    if loader is load_wine:
        assert evaluation["judged"]["classes"] == ["barbera", "barolo", "grignolino"]
        assert set(_read(store, evaluation["judged"]["predictions_uri"])["pred"]) <= {
            "barbera",
            "barolo",
            "grignolino",
        }


def test_the_judged_sample_is_at_most_2000_seeded_rows(store):
    df = pd.concat([load_digits(as_frame=True).frame] * 2, ignore_index=True)
    X = df.drop(columns="target")
    spec = FeatureSpec("target", list(X.columns), [], "classification", sorted(set(df["target"])))
    model = LogisticRegression(max_iter=200).fit(X.to_numpy(), df["target"])
    preds = predict(model, prepare_frame(df, spec).to_numpy(), spec)
    a = RC.write_judged_sample(store, "runs/a", df, spec, preds, seed=7)
    b = RC.write_judged_sample(store, "runs/b", df, spec, preds, seed=7)
    c = RC.write_judged_sample(store, "runs/c", df, spec, preds, seed=8)
    assert a["rows"] == RC.MAX_ROWS == len(_read(store, a["sample_uri"]))
    assert a["sample_sha256"] == b["sample_sha256"] != c["sample_sha256"]
    sample = _read(store, a["sample_uri"])
    got = _read(store, a["predictions_uri"])
    assert np.array_equal(got["pred"], model.predict(sample.to_numpy()))


def test_tolerance_is_absolute_for_probabilities_and_relative_for_large_values():
    judged = pd.DataFrame({"pred": [1.0, 2.5e6]})
    assert (
        RC.compare_predictions(judged, judged.assign(pred=[1.0, 2.5e6 + 1e-7]), "regression")[
            "rows_differing"
        ]
        == 0
    )
    assert (
        RC.compare_predictions(judged, judged.assign(pred=[1.0 + 1e-9, 2.5e6]), "regression")[
            "rows_differing"
        ]
        == 1
    )
    proba = pd.DataFrame({"pred": ["a", "b"], "proba_0": [0.3, 0.6], "proba_1": [0.7, 0.4]})
    moved = proba.assign(proba_0=[0.3 + 1e-10, 0.6])
    out = RC.compare_predictions(proba, moved, "classification")
    assert out["rows_differing"] == 1 and out["label_mismatches"] == 0
    assert out["max_diff"] == pytest.approx(1e-10, rel=1e-3)
    relabel = proba.assign(pred=["a", "a"])
    assert RC.compare_predictions(proba, relabel, "classification")["label_mismatches"] == 1
