"""CBPE's formulas against scikit-learn on synthetic, calibrated probabilities: labels are drawn from
the probabilities, so the expected metrics must match the realised ones within sampling error
(binary, and multiclass with three string labels); calibration check and calibrators."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, f1_score, roc_auc_score

from mlops_provider.core import cbpe

N = 20_000
DRAWS = 40


@pytest.fixture(scope="module")
def binary():
    rng = np.random.default_rng(1)
    p = rng.beta(2, 3, N)
    ys = rng.random((DRAWS, N)) < p  # DRAWS label sets, each drawn from the probabilities
    return p, ys


def realised_binary(p, y):
    pred = p >= 0.5
    return {"accuracy": accuracy_score(y, pred), "f1": f1_score(y, pred), "roc_auc": roc_auc_score(y, p)}


def test_binary_estimates_match_realised_metrics_of_labels_drawn_from_the_probabilities(binary):
    p, ys = binary
    est = cbpe.expected_binary(p, p >= 0.5)
    realised = [realised_binary(p, y) for y in ys]
    for m in ("accuracy", "f1", "roc_auc"):
        values = np.array([r[m] for r in realised])
        # the mean of 40 realised values is within 4 standard errors of the estimate
        assert abs(values.mean() - est[m]) < 4 * values.std(ddof=1) / np.sqrt(DRAWS) + 1e-4, m


def test_binary_interval_is_the_spread_of_realised_values(binary):
    p, ys = binary
    sims = cbpe.simulate(p, (p >= 0.5).astype(int), p, draws=200, seed=3)
    realised = [realised_binary(p, y) for y in ys]
    for m in ("accuracy", "f1", "roc_auc"):
        spread = np.std([r[m] for r in realised], ddof=1)
        assert sims[m].std(ddof=1) == pytest.approx(spread, rel=0.35), m
        # the simulated realised values are those scikit-learn computes
        assert sims[m].mean() == pytest.approx(np.mean([r[m] for r in realised]), abs=3 * spread)


def test_binary_closed_form_standard_errors_match_the_spread_of_realised_values(binary):
    p, ys = binary
    se = cbpe.standard_errors_binary(p, p >= 0.5, p)
    sims = cbpe.simulate(p, (p >= 0.5).astype(int), p, draws=1000, seed=7)
    realised = [realised_binary(p, y) for y in ys]
    for m in ("accuracy", "f1", "roc_auc"):
        assert se[m] == pytest.approx(sims[m].std(ddof=1), rel=0.1), m  # 1000 draws: +-5% noise
        assert se[m] == pytest.approx(np.std([r[m] for r in realised], ddof=1), rel=0.35), m


@pytest.fixture(scope="module")
def multiclass():
    rng = np.random.default_rng(2)
    classes = np.array(["bus", "car", "train"])
    logits = rng.normal(size=(N, 3)) * 1.5 + np.array([0.3, 0.0, -0.4])
    P = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    cum = P.cumsum(axis=1)
    ys = [classes[(rng.random(N)[:, None] >= cum).sum(axis=1).clip(0, 2)] for _ in range(DRAWS)]
    return classes, P, ys


def test_multiclass_estimates_match_realised_metrics_with_string_labels(multiclass):
    classes, P, ys = multiclass
    pred_idx = P.argmax(axis=1)
    est = cbpe.expected_multiclass(P, pred_idx)
    pred = classes[pred_idx]
    realised = {
        "accuracy": [accuracy_score(y, pred) for y in ys],
        "f1_macro": [f1_score(y, pred, average="macro") for y in ys],
        "roc_auc_ovr": [roc_auc_score(y, P, multi_class="ovr", labels=list(classes)) for y in ys],
    }
    sims = cbpe.simulate(P, pred_idx, P, draws=100, seed=4)
    for m, values in realised.items():
        values = np.asarray(values)
        assert abs(values.mean() - est[m]) < 4 * values.std(ddof=1) / np.sqrt(DRAWS) + 1e-4, m
        assert sims[m].std(ddof=1) == pytest.approx(values.std(ddof=1), rel=0.35), m


def test_expected_auc_of_certain_labels_is_the_realised_auc():
    """With probabilities 0 and 1 only the labels are known: the expected ROC AUC is exact."""
    y = np.array([0, 1, 1, 0, 1, 0, 0, 1])
    assert cbpe.expected_auc(y.astype(float)) == roc_auc_score(y, y) == 1.0


def test_calibration_error_flags_miscalibrated_probabilities_and_isotonic_fixes_them():
    rng = np.random.default_rng(5)
    p = rng.uniform(0.02, 0.98, 2 * N)
    y = (rng.random(2 * N) < p).astype(int)
    skewed = p**3  # the same ranking, far from calibrated
    assert cbpe.expected_calibration_error(p, y) < 0.01
    assert cbpe.expected_calibration_error(skewed, y) > 0.1
    cal = cbpe.fit_calibrator(skewed[:N], y[:N])  # fitted on one half, checked on the other
    assert cal["method"] == "isotonic" and cbpe.check_calibrator(cal) is None
    fixed = cbpe.apply_calibrator(cal, skewed[N:])
    assert cbpe.expected_calibration_error(fixed, y[N:]) < 0.015


def test_small_references_get_a_sigmoid_calibrator():
    rng = np.random.default_rng(6)
    p = rng.uniform(0.02, 0.98, 400)
    y = (rng.random(400) < p).astype(int)
    cal = cbpe.fit_calibrator(p**2, y)
    assert cal["method"] == "sigmoid" and cbpe.check_calibrator(cal) is None
    assert cbpe.expected_calibration_error(cbpe.apply_calibrator(cal, p**2), y) < 0.06


@pytest.mark.parametrize(
    "cal, why",
    [
        ({"method": "pickle", "x": [0.0], "y": [0.0]}, "unknown calibration method"),
        ({"method": "isotonic", "x": [0.0, 0.5], "y": [0.6, 0.2]}, "non-decreasing"),
        ({"method": "isotonic", "x": [0.0, 2.0], "y": [0.1, 0.2]}, "in [0, 1]"),
        ({"method": "isotonic", "x": [0.0, float("nan")], "y": [0.1, 0.2]}, "finite"),
        ({"method": "isotonic", "x": [0.0], "y": [0.1, 0.2]}, "same length"),
        ({"method": "isotonic", "x": [0.0], "y": [0.1], "code": "import os"}, "exactly the keys"),
        ({"method": "sigmoid", "a": "1", "b": 0.0}, "finite numbers"),
        ("isotonic", "JSON object"),
    ],
)
def test_a_calibrator_that_this_module_would_not_write_is_refused(cal, why):
    assert why in cbpe.check_calibrator(cal)
