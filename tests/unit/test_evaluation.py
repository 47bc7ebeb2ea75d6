import pytest
from sklearn.metrics import roc_auc_score

from mlops_provider.core import evaluation, modeling
from mlops_provider.core.errors import InvalidParameterError, SingleClassLabelError
from mlops_provider.examples.nycflights import CATEGORICAL, FEATURES, LABEL


def decide(ch, cm=None, **kw):
    kw.setdefault("thresholds", None)
    return evaluation.decide(
        model="m",
        task="classification",
        challenger_metrics=ch,
        champion_metrics=cm,
        champion_version=4 if cm else None,
        **kw,
    )


def test_tie_never_promotes_and_delta_is_reported():
    v = decide({"roc_auc": 0.75}, {"roc_auc": 0.75})
    assert not v.passed and v.decision == "reject" and "ties never promote" in v.reason
    (check,) = v.checks
    assert (check.kind, check.metric, check.challenger, check.champion, check.delta) == (
        "champion",
        "roc_auc",
        0.75,
        0.75,
        0.0,
    )
    assert decide({"roc_auc": 0.7501}, {"roc_auc": 0.75}).passed


def test_min_improvement_and_lower_is_better_metric():
    assert not decide({"roc_auc": 0.755}, {"roc_auc": 0.75}, min_improvement=0.01).passed
    assert decide({"roc_auc": 0.761}, {"roc_auc": 0.75}, min_improvement=0.01).passed
    v = decide({"log_loss": 0.50}, {"log_loss": 0.52}, compare_metric="log_loss")
    assert v.passed and v.checks[0].op == "<" and v.checks[0].delta == pytest.approx(-0.02)


def test_thresholds_fail_even_when_better_than_champion():
    v = decide(
        {"roc_auc": 0.66, "log_loss": 0.6},
        {"roc_auc": 0.6, "log_loss": 0.7},
        thresholds={"roc_auc": 0.7, "log_loss": {"max": 0.55}},
    )
    assert not v.passed
    failed = {c.metric: c for c in v.failed_checks}
    assert set(failed) == {"roc_auc", "log_loss"}
    assert failed["roc_auc"].threshold == 0.7 and failed["roc_auc"].delta == pytest.approx(-0.04)
    assert failed["log_loss"].op == "<=" and failed["log_loss"].delta == pytest.approx(0.05)
    assert "roc_auc" in v.summary() and "0.7000" in v.summary()


@pytest.mark.parametrize(
    "policy, thresholds, passed",
    [
        ("promote", None, True),
        ("promote", {"roc_auc": 0.9}, False),
        ("require_thresholds", None, False),
        ("require_thresholds", {"roc_auc": 0.7}, True),
        ("fail", {"roc_auc": 0.7}, False),
    ],
)
def test_first_run_policy(policy, thresholds, passed):
    v = decide({"roc_auc": 0.75}, None, bootstrap=policy, thresholds=thresholds)
    assert v.passed is passed and v.champion_version is None and "no champion" in v.reason


@pytest.mark.parametrize(
    "kw, match",
    [
        ({"bootstrap": "yolo"}, "'bootstrap' parameter"),
        ({"thresholds": {"auc": 0.7}}, "unknown metric 'auc'"),
        ({"thresholds": {"roc_auc": "high"}}, "must be a number"),
        ({"compare_metric": "rmse"}, "'compare_metric'"),
        ({"min_improvement": -1}, "'min_improvement'"),
    ],
)
def test_invalid_gate_parameters(kw, match):
    with pytest.raises(InvalidParameterError, match=match):
        decide({"roc_auc": 0.7, "rmse": 1.0}, None, **kw)


def test_metrics_match_sklearn_on_real_flights(flights_frame):
    train, evaluation_df = flights_frame
    model, res = modeling.train_model(
        train.sample(20_000, random_state=0),
        label=LABEL,
        estimator="sklearn.ensemble.HistGradientBoostingClassifier",
        params={"max_iter": 30},
        features=FEATURES,
        categorical=CATEGORICAL,
    )
    m = evaluation.compute_metrics(model, evaluation_df, res.spec)
    proba = model.predict_proba(modeling.prepare_frame(evaluation_df, res.spec))[:, 1]
    assert m["roc_auc"] == pytest.approx(roc_auc_score(evaluation_df[LABEL], proba), abs=1e-6)
    assert m["rows"] == len(evaluation_df) and 0.6 < m["roc_auc"] < 0.9
    with pytest.raises(SingleClassLabelError, match="single class"):
        evaluation.compute_metrics(model, evaluation_df[evaluation_df[LABEL] == 1], res.spec)
