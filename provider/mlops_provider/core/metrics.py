"""Metrics by scikit-learn scorer name, and the significance of a challenger's improvement.

A metric is named as scikit-learn names its scorers (``sklearn.metrics.get_scorer_names()``:
``accuracy``, ``f1_macro``, ``roc_auc_ovr``, ``neg_log_loss``, ``r2`` ...). Every scorer is
"greater is better" (that is why error scorers are negated); a few short aliases name the positive
error instead, lower is better, and are shown as such in reports and alerts:

=============  ==================================  =========
alias          scorer                              better
=============  ==================================  =========
``log_loss``   ``neg_log_loss``                    lower
``brier``      ``neg_brier_score``                 lower
``rmse``       ``neg_root_mean_squared_error``     lower
``mse``        ``neg_mean_squared_error``          lower
``mae``        ``neg_mean_absolute_error``         lower
``median_ae``  ``neg_median_absolute_error``       lower
``mape``       ``neg_mean_absolute_percentage_error`` lower
=============  ==================================  =========

Values are computed by the scorer itself, on predictions made once (a stand-in estimator returns
them), so a metric means exactly what scikit-learn means by it. A binary problem is scored with
the positive class as 1 (so ``f1``, ``precision``, ``roc_auc`` ... are about the class the user
named); a multiclass one with its own labels, so a binary-only scorer (``roc_auc``, ``f1``) does
not fit it: use ``roc_auc_ovr``, ``f1_macro``... Whether a metric fits a task is decided by
scikit-learn too: the scorer is run on a tiny problem of that kind (:func:`fits`).

:func:`compare` estimates the challenger's improvement over the champion on the same rows, with a
confidence interval: DeLong's method for binary ROC AUC, else a seeded, stratified paired
bootstrap.
"""

from __future__ import annotations

import difflib
import functools
from dataclasses import asdict, dataclass
from typing import Any

from mlops_provider.core.errors import InvalidParameterError

ALIASES = {
    "log_loss": "neg_log_loss",
    "brier": "neg_brier_score",
    "rmse": "neg_root_mean_squared_error",
    "mse": "neg_mean_squared_error",
    "mae": "neg_mean_absolute_error",
    "median_ae": "neg_median_absolute_error",
    "mape": "neg_mean_absolute_percentage_error",
}
TASKS = ("binary", "multiclass", "regression")
#: What every evaluation records, per task (thresholds and the compare metric are added to it).
DEFAULT_METRICS = {
    "binary": (
        "roc_auc",
        "average_precision",
        "log_loss",
        "brier",
        "accuracy",
        "balanced_accuracy",
        "f1",
        "precision",
        "recall",
    ),
    "multiclass": (
        "accuracy",
        "balanced_accuracy",
        "f1_macro",
        "f1_weighted",
        "precision_macro",
        "recall_macro",
        "precision_weighted",
        "recall_weighted",
        "log_loss",
        "roc_auc_ovr",
        "roc_auc_ovo",
        "roc_auc_ovr_weighted",
    ),
    "regression": ("rmse", "mae", "r2", "median_ae", "explained_variance"),
}
#: The champion comparison's metric when none is configured: a threshold-free ranking metric for
#: binary classifiers, the proper scoring rule for multiclass ones (it rewards calibrated
#: probabilities of every class), the usual error for regressors.
DEFAULT_COMPARE = {"binary": "roc_auc", "multiclass": "log_loss", "regression": "rmse"}
PROMOTE_IF = ("better", "significantly_better")
CONFIDENCE = 0.95
RESAMPLES = 1000


@dataclass(frozen=True)
class Metric:
    """A metric as the user named it: ``name`` (alias or scorer name), the scorer behind it and its
    direction (``sign`` -1 for an alias of a negated scorer)."""

    name: str
    scorer: str
    sign: int

    @property
    def higher_is_better(self) -> bool:
        return self.sign > 0

    @property
    def op(self) -> str:
        """How a threshold on this metric reads: ``>=`` or ``<=``."""
        return ">=" if self.higher_is_better else "<="


def scorer_names() -> list[str]:
    from sklearn.metrics import get_scorer_names

    return list(get_scorer_names())


def resolve(name: Any, parameter: str = "metric", owner: str = "EvaluateModelOperator") -> Metric:
    """The :class:`Metric` called ``name``; unknown names are refused naming close matches."""
    if isinstance(name, str) and name in ALIASES:
        return Metric(name, ALIASES[name], -1)
    names = scorer_names()
    if isinstance(name, str) and name in names:
        return Metric(name, name, 1)
    close = (
        difflib.get_close_matches(str(name), [*names, *ALIASES], n=3, cutoff=0.6)
        if isinstance(name, str)
        else []
    )
    hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
    raise InvalidParameterError(
        f"The {parameter!r} parameter of {owner} names unknown metric {name!r}: "
        "not a scikit-learn scorer name (sklearn.metrics.get_scorer_names()) "
        f"nor one of the aliases {sorted(ALIASES)}.{hint}"
    )


# --------------------------------------------------------------------------- computing
def _stand_in(task: str, classes, pred, proba):
    """An estimator whose predict / predict_proba return precomputed values (built once per call)."""
    import numpy as np
    from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin

    if task == "regression":

        class Fixed(RegressorMixin, BaseEstimator):
            def predict(self, X):
                return pred

        return Fixed()

    class FixedClassifier(ClassifierMixin, BaseEstimator):
        classes_ = np.asarray(classes)

        def predict(self, X):
            return pred

        def predict_proba(self, X):
            return proba

    return FixedClassifier()


def _with_labels(scorer, classes):
    """The same scorer with ``labels=classes`` (for data that lacks some of the model's classes:
    scikit-learn asks for them explicitly, e.g. log_loss). None if it takes no labels."""
    import inspect

    from sklearn.metrics import make_scorer

    func = getattr(scorer, "_score_func", None)
    if func is None or "labels" not in inspect.signature(func).parameters:
        return None
    kwargs = {**getattr(scorer, "_kwargs", {}), "labels": list(classes)}
    return make_scorer(
        func, response_method=scorer._response_method, greater_is_better=scorer._sign > 0, **kwargs
    )


def score(metric: Metric, task: str, y, pred, proba=None, classes=None) -> float:
    """``metric`` of predictions ``pred`` (labels or values) and ``proba`` (n x classes, columns in
    ``classes`` order) against ``y``. For ``task="binary"``, ``y``/``pred`` are 0/1 and ``classes``
    is ``[0, 1]``. A value the scorer cannot define on these rows (e.g. one-vs-rest ROC AUC for a
    class absent from them) is NaN."""
    import numpy as np
    from sklearn.metrics import get_scorer

    est = _stand_in(task, classes, pred, proba)
    X = np.zeros((len(y), 1))
    scorer = get_scorer(metric.scorer)
    try:
        value = scorer(est, X, y)
    except ValueError as err:
        labelled = _with_labels(scorer, classes) if classes is not None and "label" in str(err) else None
        if labelled is None:
            if task != "regression" and len(np.unique(y)) < len(classes if classes is not None else ()):
                return float("nan")  # not defined without every class in the rows
            raise
        try:
            value = labelled(est, X, y)
        except ValueError:
            return float("nan")
    return float(value) * metric.sign


_TINY = {
    "binary": ([0, 1, 0, 1, 1, 0, 1, 0], None),
    "multiclass": (["x", "y", "z", "x", "y", "z", "y", "x", "z"], None),
    "multiclass_ints": ([0, 1, 2, 0, 1, 2, 1, 0, 2], None),
    "regression": ([1.5, 2.0, 3.5, 4.0, 5.5, 2.5, 3.0, 1.0], None),
}


@functools.lru_cache(maxsize=512)
def _computes(scorer: str, problem: str) -> str | None:
    """None if ``scorer`` computes a finite value on a tiny problem of the kind, else why not."""
    import warnings

    import numpy as np

    y = np.asarray(_TINY[problem][0])
    task = "regression" if problem == "regression" else "binary" if problem == "binary" else "multiclass"
    if task == "regression":
        pred, proba, classes = y * 0.9 + 0.3, None, None
    else:
        classes = np.unique(y)
        codes = np.searchsorted(classes, y)
        proba = np.full((len(y), len(classes)), 0.1)
        proba[np.arange(len(y)), codes] = 0.8
        proba[0] = np.roll(proba[0], 1)
        proba /= proba.sum(axis=1, keepdims=True)
        pred = classes[proba.argmax(axis=1)]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            value = score(Metric(scorer, scorer, 1), task, y, pred, proba, classes)
    except Exception as err:  # the scorer's own words: why it does not fit
        return f"{type(err).__name__}: {err}"
    if not np.isfinite(value):
        return "it is not finite on such data"
    return None


def _fits(scorer: str, task: str) -> str | None:
    """Does ``scorer`` fit ``task``? Decided by scikit-learn: the scorer must compute on a tiny
    problem of that kind. A scorer that computes on continuous targets but not on class labels that
    are strings (r2, rmse ...) is a regression metric, even though it would compute on 0/1 labels."""
    if task == "regression":
        return _computes(scorer, "regression")
    regression_only = _computes(scorer, "regression") is None and _computes(scorer, "multiclass") is not None
    if regression_only:
        return "it measures numeric errors of a regressor, not class predictions"
    return _computes(scorer, task)


def fits(metric: Metric, task: str) -> str | None:
    """None if ``metric`` fits ``task`` (``"binary"``, ``"multiclass"``, ``"regression"``, or
    ``"classification"`` = binary or multiclass), else why not."""
    if task == "classification":
        problems = [_fits(metric.scorer, t) for t in ("binary", "multiclass")]
        return None if None in problems else problems[0]
    return _fits(metric.scorer, task)


def check_fit(metric: Metric, task: str, parameter: str, owner: str) -> None:
    why = fits(metric, task)
    if why is not None:
        kind = (
            "classifier"
            if task == "classification"
            else f"{task} model"
            if task != "multiclass"
            else "multiclass classifier"
        )
        suggestions = ", ".join(
            DEFAULT_METRICS[
                "multiclass" if task == "multiclass" else "regression" if task == "regression" else "binary"
            ]
        )
        raise InvalidParameterError(
            f"The {parameter!r} parameter of {owner} names {metric.name!r}, which does not fit a {kind} "
            f"(scikit-learn says {why.splitlines()[0][:200]!r}). Metrics that do: {suggestions}."
        )


def compute_metrics(names, task: str, y, pred, proba=None, classes=None) -> dict[str, float]:
    """Each named metric (aliases and scorer names) rounded to 6 digits, plus ``rows``."""
    out = {}
    for name in dict.fromkeys(names):
        out[name] = round(score(resolve(name), task, y, pred, proba, classes), 6)
    out["rows"] = len(y)
    return out


# --------------------------------------------------------------------------- thresholds
def normalize_thresholds(
    thresholds: Any, task: str | None = None, owner: str = "EvaluateModelOperator"
) -> dict[str, tuple[str, float]]:
    """``{"f1_macro": 0.8, "log_loss": {"max": 0.5}}``
    -> ``{"f1_macro": (">=", 0.8), "log_loss": ("<=", 0.5)}``.

    A plain number is a floor for a higher-is-better metric and a ceiling for a lower-is-better
    one; ``{"min": x}`` / ``{"max": x}`` must agree with the metric's direction (a floor on an error
    is a mistake, not a gate). With ``task``, each metric must fit it.
    """
    if thresholds in (None, {}):
        return {}
    if not isinstance(thresholds, dict):
        raise InvalidParameterError(
            f"The 'thresholds' parameter of {owner} must be a dict of metric -> value. "
            f"Got {thresholds!r} instead."
        )
    out = {}
    for name, spec in thresholds.items():
        metric = resolve(name, "thresholds", owner)
        if task is not None:
            check_fit(metric, task, "thresholds", owner)
        if isinstance(spec, dict):
            if set(spec) not in ({"min"}, {"max"}):
                raise InvalidParameterError(
                    f"The threshold for {name!r} in {owner} must be a number "
                    f"or {{'min': x}} / {{'max': x}}. Got {spec!r}."
                )
            op, value = (">=", spec["min"]) if "min" in spec else ("<=", spec["max"])
            if op != metric.op:
                better = "higher" if metric.higher_is_better else "lower"
                kind = "floor" if op == ">=" else "ceiling"
                key = "min" if metric.higher_is_better else "max"
                raise InvalidParameterError(
                    f"The threshold for {name!r} in {owner} is a {kind} ({spec!r}), but "
                    f"{better} {name} is better: use {{'{key}': x}} or a plain number."
                )
        else:
            op, value = metric.op, spec
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
            raise InvalidParameterError(
                f"The threshold for {name!r} in {owner} must be a number. Got {value!r} instead."
            )
        out[name] = (op, float(value))
    return out


def check_gate_config(
    task: str,
    *,
    thresholds: Any = None,
    compare_metric: Any = None,
    promote_if: Any = "better",
    owner: str = "EvaluateModelOperator",
) -> dict[str, Any]:
    """Validate the model gate's metric settings for ``task`` before anything runs; returns
    ``{"thresholds": {...}, "compare_metric": name, "promote_if": rule}``."""
    if promote_if not in PROMOTE_IF:
        raise InvalidParameterError(
            f"The 'promote_if' parameter of {owner} must be one of {list(PROMOTE_IF)}. "
            f"Got {promote_if!r} instead."
        )
    limits = normalize_thresholds(thresholds, task, owner)
    if compare_metric in (None, ""):
        compare_metric = DEFAULT_COMPARE[
            "multiclass" if task == "multiclass" else "regression" if task == "regression" else "binary"
        ]
    metric = resolve(compare_metric, "compare_metric", owner)
    check_fit(metric, task, "compare_metric", owner)
    return {"thresholds": limits, "compare_metric": metric.name, "promote_if": promote_if}


# --------------------------------------------------------------------------- significance
@dataclass
class Comparison:
    """The challenger's improvement over the champion on one metric (positive = better, whatever
    the metric's direction) with a two-sided confidence interval."""

    metric: str
    challenger: float
    champion: float
    improvement: float
    ci_low: float
    ci_high: float
    confidence: float
    method: str  # "delong" | "paired_bootstrap"
    resamples: int | None = None
    seed: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: (round(v, 6) if isinstance(v, float) else v) for k, v in asdict(self).items()}


def _delong(y01, s1, s2) -> tuple[float, float, float]:
    """AUC(s1) - AUC(s2) and its standard error by DeLong's method (fast version, Sun & Xu 2014)."""
    import numpy as np
    from scipy.stats import rankdata

    pos, neg = y01 == 1, y01 == 0
    m, n = int(pos.sum()), int(neg.sum())
    aucs, v10, v01 = [], [], []
    for s in (s1, s2):
        x, y = s[pos], s[neg]
        tx, ty, tz = rankdata(x), rankdata(y), rankdata(np.concatenate([x, y]))
        auc = (tz[:m].sum() - m * (m + 1) / 2) / (m * n)
        aucs.append(auc)
        v10.append((tz[:m] - tx) / n)
        v01.append(1.0 - (tz[m:] - ty) / m)
    s10, s01 = np.cov(np.vstack(v10)), np.cov(np.vstack(v01))
    var = (s10[0, 0] + s10[1, 1] - 2 * s10[0, 1]) / m + (s01[0, 0] + s01[1, 1] - 2 * s01[0, 1]) / n
    return float(aucs[0] - aucs[1]), float(np.sqrt(max(var, 0.0))), float(aucs[0])


def compare(
    metric_name: str,
    task: str,
    y,
    challenger: tuple,
    champion: tuple,
    classes=None,
    *,
    confidence: float = CONFIDENCE,
    resamples: int = RESAMPLES,
    seed: int = 0,
    groups=None,
) -> Comparison:
    """Improvement of ``challenger`` over ``champion`` (each ``(pred, proba)``) on the same ``y``.

    With ``groups`` (one label per row: rows of a group are correlated, e.g. the flights of one day
    share its weather): a paired *cluster* bootstrap that resamples whole groups, so the interval
    reflects how the comparison varies from group to group, not only from row to row. Without:
    binary ``roc_auc`` uses DeLong's variance of the paired AUC difference (exact, O(n log n));
    other metrics ``resamples`` paired bootstrap resamples of rows, stratified by class for
    classifiers. Seeded; the bootstrap interval is the percentile interval.
    """
    import numpy as np
    from scipy.stats import norm

    metric = resolve(metric_name)
    ch_value = score(metric, task, y, *challenger, classes)
    cm_value = score(metric, task, y, *champion, classes)
    improvement = (ch_value - cm_value) * (1 if metric.higher_is_better else -1)
    alpha = 1 - confidence
    if groups is not None:
        return _cluster_bootstrap(
            metric,
            task,
            np.asarray(y),
            challenger,
            champion,
            classes,
            groups,
            ch_value,
            cm_value,
            improvement,
            confidence,
            resamples,
            seed,
        )
    if task == "binary" and metric.scorer == "roc_auc":
        proba_ch, proba_cm = challenger[1], champion[1]
        diff, se, _ = _delong(np.asarray(y), proba_ch[:, 1], proba_cm[:, 1])
        z = norm.ppf(1 - alpha / 2)
        return Comparison(
            metric.name,
            ch_value,
            cm_value,
            improvement,
            diff - z * se,
            diff + z * se,
            confidence,
            "delong",
            seed=None,
        )
    rng = np.random.default_rng(seed)
    y = np.asarray(y)
    groups = [np.flatnonzero(y == c) for c in np.unique(y)] if task != "regression" else [np.arange(len(y))]
    diffs = []
    for _ in range(resamples):
        idx = np.concatenate([g[rng.integers(0, len(g), len(g))] for g in groups])
        diffs.append(_difference(metric, task, idx, y, challenger, champion, classes))
    values = (ch_value, cm_value, improvement)
    return _interval(metric, values, diffs, confidence, "paired_bootstrap", resamples, seed)


def _cluster_bootstrap(
    metric,
    task,
    y,
    challenger,
    champion,
    classes,
    groups,
    ch_value,
    cm_value,
    improvement,
    confidence,
    resamples,
    seed,
) -> Comparison:
    import warnings

    import numpy as np
    import pandas as pd

    codes, uniques = pd.factorize(pd.Series(groups, dtype=object), use_na_sentinel=False)
    if len(uniques) < 5:
        raise InvalidParameterError(
            "The confidence interval by groups needs at least 5 groups; "
            f"the evaluation rows have {len(uniques)}. "
            "Use a finer grouping column, or none."
        )
    rng = np.random.default_rng(seed)
    values = (ch_value, cm_value, improvement)
    method = f"cluster_bootstrap ({len(uniques)} groups)"
    if task == "binary" and metric.scorer == "roc_auc":
        weights = rng.multinomial(len(uniques), np.full(len(uniques), 1 / len(uniques)), size=resamples)
        diffs = _cluster_auc(y, challenger[1][:, 1], codes, len(uniques), weights) - _cluster_auc(
            y, champion[1][:, 1], codes, len(uniques), weights
        )
        diffs = diffs[np.isfinite(diffs)]
        return _interval(metric, values, diffs, confidence, method, resamples, seed)
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(len(uniques) + 1))
    members = [order[bounds[g] : bounds[g + 1]] for g in range(len(uniques))]
    diffs = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(resamples):
            idx = np.concatenate([members[g] for g in rng.integers(0, len(members), len(members))])
            d = _difference(metric, task, idx, y, challenger, champion, classes)
            if d == d:
                diffs.append(d)
    if len(diffs) < resamples // 2:
        raise InvalidParameterError(
            f"The {metric.name} difference is undefined on most group resamples "
            f"({len(diffs)} of {resamples} usable); "
            "use a coarser grouping column or none."
        )
    return _interval(metric, values, diffs, confidence, method, resamples, seed)


def _difference(metric, task: str, idx, y, challenger, champion, classes) -> float:
    """challenger - champion on the rows ``idx``, signed so that positive is better (NaN when the
    metric is undefined on them)."""

    def on(model) -> float:
        pred, proba = model
        return score(metric, task, y[idx], pred[idx], None if proba is None else proba[idx], classes)

    return (on(challenger) - on(champion)) * (1 if metric.higher_is_better else -1)


def _interval(metric, values: tuple, diffs, confidence: float, method: str, resamples, seed) -> Comparison:
    """The comparison with the central ``confidence`` interval of the resampled differences."""
    import numpy as np

    alpha = 1 - confidence
    low, high = np.quantile(diffs, [alpha / 2, 1 - alpha / 2])
    return Comparison(metric.name, *values, float(low), float(high), confidence, method, resamples, seed)


def _cluster_auc(y01, score, codes, n_groups: int, weights):
    """ROC AUC of ``score`` for each row of ``weights`` (how often each group was drawn), exactly.

    The Mann-Whitney count splits into group pairs: ``U[g, h]`` = pairs (positive in g, negative
    in h) ranked right (ties count half). A resample that draws group g ``w_g`` times has
    ``U = w' U w`` over ``(w' P)(w' N)`` pairs, so any number of resamples costs one G x G matrix.
    """
    import numpy as np

    pos, neg = y01 == 1, y01 == 0
    P = np.bincount(codes[pos], minlength=n_groups).astype(float)
    N = np.bincount(codes[neg], minlength=n_groups).astype(float)
    U = np.zeros((n_groups, n_groups))
    pos_scores, pos_groups = score[pos], codes[pos]
    for h in range(n_groups):
        negatives = np.sort(score[neg & (codes == h)])
        if not len(negatives):
            continue
        below = np.searchsorted(negatives, pos_scores, side="left")
        ties = np.searchsorted(negatives, pos_scores, side="right") - below
        U[:, h] = np.bincount(pos_groups, weights=below + 0.5 * ties, minlength=n_groups)
    w = np.asarray(weights, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.einsum("rg,gh,rh->r", w, U, w) / ((w @ P) * (w @ N))
