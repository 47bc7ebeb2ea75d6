"""estimate_performance without Airflow, notebook style, beyond the flights demo: a multiclass wine
classifier with string labels, a breast-cancer classifier, a diabetes regressor (refused), a window
missing a feature column, and a tampered calibration state in the store (rebuilt, never used)."""

from __future__ import annotations

import json

import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes, load_wine
from sklearn.metrics import accuracy_score, f1_score, roc_auc_score

from mlops_provider.core.errors import InvalidParameterError, MissingColumnsError
from mlops_provider.core.registry import ModelRegistry
from mlops_provider.core.steps.estimate import (
    EstimateParams,
    NotAClassifierError,
    estimate_history,
    estimate_performance,
)
from mlops_provider.core.steps.evaluate import EvaluateParams, evaluate_challenger
from mlops_provider.core.steps.register import RegisterParams, register_and_promote
from mlops_provider.core.steps.run import RunInfo
from mlops_provider.core.storage import ArtifactStore
from tests.unit.steps.test_evaluate import frames, snapshot, train

WINDOW = {"start": "2024-01-01T00:00:00+00:00", "end": "2024-02-01T00:00:00+00:00"}
WINES = {0: "barolo", 1: "grignolino", 2: "barbera"}


@pytest.fixture
def store(tmp_path):
    return ArtifactStore(f"file://{tmp_path}/root")


def champion(store, name, train_df, eval_df, estimator, **params):
    """v1 of ``name``: trained, evaluated on ``eval_df`` (the CBPE reference), promoted."""
    train_snap = snapshot(store, f"{name}_train", train_df)
    eval_snap = snapshot(store, f"{name}_eval", eval_df)
    run = RunInfo.local("train", run_id="nb-1")
    model, trained = train(store, train_snap, train_df, estimator, run, **params)
    registry = ModelRegistry(store)
    verdict = evaluate_challenger(
        EvaluateParams(name),
        challenger=trained,
        dataset=eval_snap,
        store=store,
        registry=registry,
        run=run.for_task("evaluate"),
    ).to_dict()
    register_and_promote(
        RegisterParams(name), trained=trained, verdict=verdict, store=store, registry=registry, run=run
    )
    return model


def estimate(store, name, window_df, window_name="window", **kw):
    return estimate_performance(
        EstimateParams(name, **kw),
        dataset=snapshot(store, window_name, window_df),
        store=store,
        registry=ModelRegistry(store),
        window=WINDOW,
    )


@pytest.fixture
def wine(store):
    train_df, eval_df = frames(load_wine)
    train_df, eval_df = (d.assign(target=d["target"].map(WINES)) for d in (train_df, eval_df))
    model = champion(store, "wine", train_df, eval_df, "sklearn.linear_model.LogisticRegression", C=0.05)
    return model, eval_df


def test_multiclass_string_labels_estimate_and_realised(store, wine):
    model, eval_df = wine
    res = estimate(store, "wine", eval_df)
    out = res.to_dict()
    assert out["kind"] == "multiclass" and out["metric"] == "roc_auc_ovr"
    assert set(out["estimated"]) == {"accuracy", "f1_macro", "roc_auc_ovr"}
    # the window holds labels: the realised metrics are scikit-learn's
    X = eval_df.drop(columns="target")
    proba, pred = model.predict_proba(X), model.predict(X)
    assert out["realised"]["accuracy"] == pytest.approx(accuracy_score(eval_df["target"], pred), abs=1e-6)
    assert out["realised"]["f1_macro"] == pytest.approx(
        f1_score(eval_df["target"], pred, average="macro"), abs=1e-6
    )
    assert out["realised"]["roc_auc_ovr"] == pytest.approx(
        roc_auc_score(eval_df["target"], proba, multi_class="ovr", labels=list(model.classes_)), abs=1e-6
    )
    # on its own (small) reference, calibrated there, the estimate is within its interval of the truth
    for m, est in out["estimated"].items():
        assert est["lower"] - 0.02 <= out["realised"][m] <= est["upper"] + 0.02, (m, est, out["realised"])
    cal = out["calibration"]
    assert cal["status"] == "built" and (cal["method"] == "sigmoid" or not cal["calibrated"])


def test_bad_metric_for_the_task_is_named(store, wine):
    _, eval_df = wine
    with pytest.raises(InvalidParameterError, match="'metric'.*roc_auc_ovr.*multiclass.*'f1'"):
        estimate(store, "wine", eval_df, metric="f1")


def test_a_regressor_is_refused_with_a_clear_error(store):
    train_df, eval_df = frames(load_diabetes)
    champion(store, "diabetes", train_df, eval_df, "sklearn.linear_model.Ridge")
    with pytest.raises(NotAClassifierError, match="CBPE estimates the performance of classifiers.*regressor"):
        estimate(store, "diabetes", eval_df.drop(columns="target"))


@pytest.fixture
def cancer(store):
    train_df, eval_df = frames(load_breast_cancer)
    champion(store, "cancer", train_df, eval_df, "sklearn.linear_model.LogisticRegression", C=0.05)
    return eval_df


def test_a_window_missing_a_feature_names_the_column(store, cancer):
    with pytest.raises(MissingColumnsError, match=r"lacks the feature column\(s\) \['mean radius'\]"):
        estimate(store, "cancer", cancer.drop(columns=["target", "mean radius"]))
    assert estimate_history(store, "cancer") == []  # nothing half-written


def _state_file(store, res):
    return res.report["calibration"]["uri"]


@pytest.mark.parametrize(
    "tamper",
    [
        "reference_metrics",  # a plausible edit: the digest no longer matches
        "calibrator_with_digest",  # a consistent digest, but a calibrator this package never writes
        "not_json",
    ],
)
def test_a_tampered_calibration_state_is_rebuilt_never_used(store, cancer, tamper):
    from mlops_provider.core.steps.estimate import _digest

    window = cancer.drop(columns="target")
    first = estimate(store, "cancer", window, max_calibration_error=0.0)  # always calibrate
    assert first.report["calibration"]["status"] == "built"
    key = store.key_of(_state_file(store, first))
    state = store.read_json(key)
    if tamper == "reference_metrics":
        state["reference_metrics"]["roc_auc"] = 0.0
        store.write_bytes(key, json.dumps(state).encode())
    elif tamper == "calibrator_with_digest":
        state["calibrators"]["positive"] = {"method": "pickle", "x": [0.0], "y": [1.0]}
        state["digest"] = _digest(state)
        store.write_bytes(key, json.dumps(state).encode())
    else:
        store.write_bytes(key, b"\x80\x04 not json")
    again = estimate(store, "cancer", window, max_calibration_error=0.0)
    assert again.report["calibration"]["status"].startswith("rebuilt: ")
    assert again.report["reference"] == first.report["reference"]
    assert again.report["estimated"] == first.report["estimated"]
    assert store.read_json(key)["calibrators"]["positive"]["method"] in ("isotonic", "sigmoid")
    third = estimate(store, "cancer", window, max_calibration_error=0.0)
    assert third.report["calibration"]["status"] == "reused"


def test_estimates_are_recorded_once_per_window(store, cancer):
    window = cancer.drop(columns="target")
    estimate(store, "cancer", window)
    estimate(store, "cancer", cancer, window_name="window_labelled")  # the labels arrived
    history = estimate_history(store, "cancer")
    assert len(history) == 1 and history[0]["realised"] is not None
    assert history[0]["window"] == WINDOW
    entry = history[0]
    assert entry["error"]["roc_auc"] == pytest.approx(
        entry["realised"]["roc_auc"] - entry["estimated"]["roc_auc"]["value"]
    )
