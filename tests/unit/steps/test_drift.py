"""detect_drift and evaluate_champion without Airflow, notebook style: a breast-cancer classifier
trained, evaluated, registered and promoted by the core steps, then monitored on shifted and
relabelled windows; statistics are checked against SciPy and scikit-learn computed here."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from sklearn.datasets import load_breast_cancer
from sklearn.metrics import log_loss, roc_auc_score

from mlops_provider.core.errors import InvalidParameterError
from mlops_provider.core.events import RetrainRequest
from mlops_provider.core.registry import ModelRegistry
from mlops_provider.core.steps.drift import (
    ChampionCheckParams,
    DriftParams,
    detect_drift,
    evaluate_champion,
)
from mlops_provider.core.steps.evaluate import EvaluateParams, evaluate_challenger
from mlops_provider.core.steps.register import RegisterParams, register_and_promote
from mlops_provider.core.steps.run import RunInfo
from mlops_provider.core.storage import ArtifactStore
from tests.unit.steps.test_evaluate import features, frames, snapshot, train

MODEL = "cancer"
WATCHED = ["mean radius", "mean texture", "mean smoothness"]
WINDOW = {"start": "2024-01-01T00:00:00+00:00", "end": "2024-02-01T00:00:00+00:00"}


@pytest.fixture(scope="module")
def cancer():
    return frames(load_breast_cancer)


@pytest.fixture
def store(tmp_path):
    return ArtifactStore(f"file://{tmp_path}/root")


@pytest.fixture
def champion(store, cancer):
    """v1 of ``cancer``, trained on one half, evaluated on the other, promoted."""
    train_df, eval_df = cancer
    train_snap = snapshot(store, "cancer_train", train_df)
    eval_snap = snapshot(store, "cancer_eval", eval_df)
    run = RunInfo.local("train", run_id="nb-1")
    model, trained = train(
        store, train_snap, train_df, "sklearn.linear_model.LogisticRegression", run, C=0.05
    )
    registry = ModelRegistry(store)
    verdict = evaluate_challenger(
        EvaluateParams(MODEL),
        challenger=trained,
        dataset=eval_snap,
        store=store,
        registry=registry,
        run=run.for_task("evaluate"),
    ).to_dict()
    register_and_promote(
        RegisterParams(MODEL),
        trained=trained,
        verdict=verdict,
        store=store,
        registry=registry,
        run=run.for_task("register"),
    )
    return {"model": model, "train": train_snap, "eval": eval_snap, "verdict": verdict}


def shifted(store, cancer, by: float, name: str = "cancer_window"):
    """The evaluation half with 'mean radius' moved by ``by`` standard deviations."""
    df = cancer[1].copy()
    df["mean radius"] += by * cancer[0]["mean radius"].std()
    return df, snapshot(store, name, df)


def drift(store, window, **kw):
    return detect_drift(
        DriftParams(MODEL, **{"features": WATCHED, **kw}),
        dataset=window,
        store=store,
        registry=ModelRegistry(store),
        window=WINDOW,
    )


# --------------------------------------------------------------------------- detect_drift
def test_the_training_data_does_not_drift_from_itself(store, champion):
    result = drift(store, champion["train"], features=None)
    assert result.report["n_drifted"] == 0 and len(result.report["features"]) == 30
    assert all(f["psi"] < 1e-6 and f["statistic"] < 1e-9 for f in result.report["features"])
    assert not result.retrain and result.request is None and result.to_dict()["event"] is None


def test_a_shifted_feature_drifts_and_ks_matches_scipy(store, champion, cancer):
    window_df, window = shifted(store, cancer, 1.0)
    result = drift(store, window)
    by = {f["feature"]: f for f in result.report["features"]}
    assert result.report["drifted_features"] == ["mean radius"]
    for name in WATCHED:  # KS on a grid of reference quantiles: within 1/rows of the exact statistic
        ks = stats.ks_2samp(cancer[0][name], window_df[name])
        assert by[name]["statistic"] == pytest.approx(ks.statistic, abs=1 / len(cancer[0]))
    assert by["mean radius"]["p_value"] < 1e-6 < by["mean texture"]["p_value"]


def test_psi_of_a_shifted_feature_matches_a_hand_computation(store, champion, cancer):
    window_df, window = shifted(store, cancer, 1.0)
    psi = next(f["psi"] for f in drift(store, window).report["features"] if f["feature"] == "mean radius")
    ref, cur = cancer[0]["mean radius"].to_numpy(), window_df["mean radius"].to_numpy()
    edges = np.quantile(ref, np.linspace(0, 1, 11)[1:-1])
    r = np.bincount(np.searchsorted(edges, ref, "right"), minlength=10) / len(ref)
    c = np.bincount(np.searchsorted(edges, cur, "right"), minlength=10) / len(cur)
    r, c = np.clip(r, 1e-4, None), np.clip(c, 1e-4, None)
    assert psi == pytest.approx(float(np.sum((c - r) * np.log(c / r))), rel=0.05)


def test_drift_asks_for_a_retrain_that_parses_back(store, champion, cancer):
    _, window = shifted(store, cancer, 1.0)
    result = drift(store, window)
    assert result.retrain and result.request.reason == "drift" and result.request.window == WINDOW
    request = RetrainRequest.parse(result.to_dict()["event"], artifact_root=store.root)
    assert request.model == MODEL and request.champion_version == 1
    assert request.drifted_features == ["mean radius"] and request.report_uri == result.report_uri


def test_report_and_history_layout(store, champion, cancer):
    _, window = shifted(store, cancer, 1.0)
    result = drift(store, window)
    assert result.report_uri == store.uri(f"drift/{MODEL}/{window['sha256']}.json")
    assert store.read_json(f"drift/{MODEL}/{window['sha256']}.json") == result.report
    drift(store, window)  # the same window again replaces its history entry
    (entry,) = store.list_dir(f"drift/{MODEL}/history")
    assert entry.endswith(f"-{window['sha256'][:12]}.json")
    assert store.read_json(f"drift/{MODEL}/history/{entry}")["report_uri"] == result.report_uri


def test_persistence_needs_consecutive_drifting_windows(store, champion, cancer):
    _, first_window = shifted(store, cancer, 1.0, "first")
    _, second_window = shifted(store, cancer, 1.5, "second")
    first = drift(store, first_window, persistence=2)
    assert not first.retrain and "only 1 recorded" in first.policy_reason
    second = drift(store, second_window, persistence=2)
    assert second.retrain and [h["window_sha256"] for h in second.to_dict()["history"]] == [
        first_window["sha256"],
        second_window["sha256"],
    ]


def test_reference_profile_is_built_once(store, champion, cancer):
    first = drift(store, champion["train"])
    second = drift(store, shifted(store, cancer, 1.0)[1])
    assert not first.profile_reused and second.profile_reused
    assert first.profile_uri == second.profile_uri == f"{champion['train']['uri']}/profile.json"


def test_drift_lineage(store, champion, cancer):
    _, window = shifted(store, cancer, 1.0)
    lineage = drift(store, window).lineage()
    assert (
        lineage["inputs"][0] == champion["train"]["data_uri"]
        and lineage["inputs"][1][0] == window["data_uri"]
    )
    assert lineage["details"] == {"n_drifted": 1, "retrain": True, "champion_version": 1}


@pytest.mark.parametrize(
    "kw, name",
    [
        ({"persistence": 0}, "persistence"),
        ({"psi_threshold": {"mean radius": -1}}, "psi_threshold"),
        ({"features": []}, "features"),
        ({"decide_by": "vibes"}, "decide_by"),
    ],
)
def test_bad_drift_parameter_is_named(kw, name):
    with pytest.raises(InvalidParameterError, match=f"'{name}' parameter of detect_drift"):
        DriftParams(MODEL, **kw)


def test_drift_parameters_from_template_text():
    params = DriftParams.build("op", model_name=MODEL, psi_threshold='{"default": 0.3}', persistence="2")
    assert params.psi_threshold == {"default": 0.3} and params.persistence == 2


# --------------------------------------------------------------------------- evaluate_champion
def check(store, dataset, run_id="nb-2", **kw):
    return evaluate_champion(
        ChampionCheckParams(MODEL, **kw),
        dataset=dataset,
        store=store,
        registry=ModelRegistry(store),
        run=RunInfo.local("monitor", run_id=run_id),
        window=WINDOW,
    )


def test_champion_on_its_evaluation_data_loses_nothing(store, champion, cancer):
    result = check(store, champion["eval"])
    eval_df = cancer[1]
    auc = roc_auc_score(eval_df["target"], champion["model"].predict_proba(features(eval_df))[:, 1])
    assert result.report["metric"] == "roc_auc" and result.report["current"] == pytest.approx(auc, abs=1e-6)
    assert result.report["recorded"] == result.report["current"] and result.report["drop"] == 0.0
    assert not result.retrain and result.to_dict()["event"] is None


def test_flipped_labels_ask_for_a_retrain(store, champion, cancer):
    flipped = snapshot(store, "cancer_flipped", cancer[1].assign(target=1 - cancer[1]["target"]))
    result = check(store, flipped)
    recorded = champion["verdict"]["metrics"]["challenger"]["roc_auc"]
    assert result.retrain and result.report["current"] == pytest.approx(1 - recorded, abs=1e-6)
    request = RetrainRequest.parse(result.to_dict()["event"], artifact_root=store.root)
    assert request.reason == "performance" and request.window == WINDOW
    assert request.scores["drop"] == pytest.approx(result.report["drop"])
    folder = RunInfo.local("monitor", run_id="nb-2").folder
    assert store.read_json(f"{folder}/champion_evaluation.json") == result.report


def test_lower_is_better_metric_drops_by_increasing(store, champion, cancer):
    flipped_df = cancer[1].assign(target=1 - cancer[1]["target"])
    flipped = snapshot(store, "cancer_flipped", flipped_df)
    result = check(store, flipped, metric="log_loss")
    proba = champion["model"].predict_proba(features(flipped_df))[:, 1]
    expected = log_loss(flipped_df["target"], proba)
    assert result.report["current"] == pytest.approx(expected, abs=1e-6)
    assert result.report["drop"] == pytest.approx(expected - result.report["recorded"], abs=1e-6)


def test_champion_lineage(store, champion):
    lineage = check(store, champion["eval"]).lineage()
    assert lineage["step"] == "evaluate_champion" and lineage["inputs"][1][0] == champion["eval"]["data_uri"]
    assert lineage["details"] == {"metric": "roc_auc", "drop": 0.0, "retrain": False}


def test_bad_tolerance_is_named():
    with pytest.raises(InvalidParameterError, match=r"'tolerance' parameter of evaluate_champion.*-1"):
        ChampionCheckParams(MODEL, tolerance=-1)


def test_unknown_metric_names_close_matches():
    with pytest.raises(
        InvalidParameterError, match="'metric' parameter of evaluate_champion.*'auc'.*roc_auc"
    ):
        ChampionCheckParams(MODEL, metric="auc")


def test_metric_that_does_not_fit_the_champion(store, champion):
    with pytest.raises(InvalidParameterError, match="'metric' parameter of evaluate_champion names 'rmse'"):
        check(store, champion["eval"], metric="rmse")
