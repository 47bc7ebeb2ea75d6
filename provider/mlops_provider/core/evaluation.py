"""Model quality gate: absolute thresholds, and challenger vs champion on the same evaluation data.

Metrics are scikit-learn scorers (:mod:`mlops_provider.core.metrics`), measured for what the model
is: a **binary** classifier about the positive class the user named, a **multiclass** one with
multiclass metrics (no class is singled out), a **regressor** with error metrics.

The verdict is structured so alerts and the UI can say exactly what failed and by how much: each
check carries the metric, the operator, the threshold, the champion and challenger values and the
delta; the champion check also carries the confidence interval of the improvement
(:func:`mlops_provider.core.metrics.compare`). Ties never promote. ``promote_if`` decides what
"beats the champion" means:

* ``"better"``: the improvement on the compare metric is more than ``min_improvement``;
* ``"significantly_better"``: the lower end of its confidence interval is more than
  ``min_improvement`` (a challenger that differs only by noise, e.g. its seed, is not promoted).

With no champion yet, ``bootstrap`` decides:

* ``"promote"``: promote if every absolute threshold passes (or none is set);
* ``"require_thresholds"``: promote only if at least one threshold is set and all pass;
* ``"fail"``: never promote automatically; someone promotes by hand (``mlops models promote``).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from mlops_provider.core import metrics as M
from mlops_provider.core.errors import InvalidInputError, InvalidParameterError, SingleClassLabelError
from mlops_provider.core.modeling import FeatureSpec, Predictions, predict, prepare_frame

BOOTSTRAP_POLICIES = ("promote", "require_thresholds", "fail")
#: The metrics every evaluation records (scikit-learn scorer names or aliases), by task.
CLASSIFICATION_METRICS = M.DEFAULT_METRICS["binary"]
MULTICLASS_METRICS = M.DEFAULT_METRICS["multiclass"]
REGRESSION_METRICS = M.DEFAULT_METRICS["regression"]
ON_FAIL = ("fail", "skip", "warn")


def default_compare_metric(task: str) -> str:
    """The compare metric used when none is configured (see :data:`metrics.DEFAULT_COMPARE`)."""
    return M.DEFAULT_COMPARE["binary" if task == "classification" else task]


def higher_is_better(metric: str) -> bool:
    return M.resolve(metric).higher_is_better


def score_frame(model, df, spec: FeatureSpec, where: str = "The evaluation data"):
    """Rows with a label, predicted: ``(labelled_df, y, Predictions)``."""
    from mlops_provider.core.modeling import check_columns

    check_columns(list(df.columns), [spec.label], "label", where)
    df = df.loc[df[spec.label].notna()]
    X = prepare_frame(df, spec, where)
    return df, df[spec.label].to_numpy(), predict(model, X, spec)


@dataclass
class Encoded:
    """What the scorers see: for a binary model the labels as 0/1 (1 = the positive class) and the
    probabilities as two columns; for a multiclass model its own labels and one column per class."""

    task: str
    y: Any
    pred: Any
    proba: Any
    classes: Any


def _same(a, b) -> Any:
    """Label equality that also matches ``1`` and ``"1"`` (labels from a form arrive as text)."""
    import numpy as np

    a = np.asarray(a, dtype=object)
    eq = a == b
    if not np.asarray(eq).any() and not isinstance(b, str):
        eq = np.asarray([str(v) == str(b) for v in a])
    return np.asarray(eq, dtype=bool)


def encode(y, preds: Predictions, spec: FeatureSpec, where: str = "The evaluation data") -> Encoded:
    import numpy as np

    task = spec.kind
    if task == "regression":
        return Encoded(
            task, np.asarray(y, dtype="float64"), np.asarray(preds.pred, dtype="float64"), None, None
        )
    classes = list(preds.classes)
    unseen = sorted(
        {str(v) for v in np.unique(np.asarray(y, dtype=object).astype(str))} - {str(c) for c in classes}
    )
    if unseen:
        raise InvalidInputError(
            f"{where}: the label column {spec.label!r} holds class(es) {unseen[:10]} that the model was not "
            "trained "
            f"on (its classes: {classes}); it cannot be scored on them."
        )
    if task == "binary":
        pos = spec.positive_label
        y01 = _same(y, pos).astype(int)
        if y01.all() or not y01.any():
            raise SingleClassLabelError(
                f"{where}: the label column {spec.label!r} has a single class in all {len(y01)} rows; ROC "
                "AUC and "
                "the champion comparison need both classes."
            )
        col = [i for i, c in enumerate(classes) if _same([c], pos)[0]]
        p = preds.proba[:, col[0]] if col else np.zeros(len(y01))
        proba = np.column_stack([1.0 - p, p])
        return Encoded(task, y01, _same(preds.pred, pos).astype(int), proba, np.array([0, 1]))
    # Labels keep their values but get a concrete dtype: scikit-learn's type_of_target calls an
    # object array of integers "unknown".
    kind = np.asarray(classes).dtype.kind
    lookup = {str(c): c for c in classes}
    y = as_labels([lookup[str(v)] for v in np.asarray(y, dtype=object)], kind)
    return Encoded(task, y, as_labels(preds.pred, kind), preds.proba, as_labels(classes, kind))


def as_labels(values: Any, kind: str) -> Any:
    """Class labels as an array scikit-learn's metrics accept: integers, floats or text, after the
    dtype kind of the model's ``classes``."""
    import numpy as np

    arr = np.asarray(values, dtype=object)
    if kind in "iub":
        return arr.astype("int64")
    if kind == "f":
        return arr.astype("float64")
    return arr.astype(str)


def metric_names(task: str, thresholds: Any = None, compare_metric: str | None = None) -> list[str]:
    names = list(M.DEFAULT_METRICS[task])
    for extra in [*(thresholds or {}), compare_metric]:
        if extra and extra not in names:
            names.append(extra)
    return names


def metrics_of(enc: Encoded, names) -> dict[str, float]:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zero-division and undefined-metric warnings: NaN or 0 is reported
        return M.compute_metrics(names, enc.task, enc.y, enc.pred, enc.proba, enc.classes)


def compute_metrics(
    model, df, spec: FeatureSpec, where: str = "The evaluation data", names=None
) -> dict[str, float]:
    """The task's default metrics (plus ``names``) of ``model`` on the labelled rows of ``df``."""
    _, y, preds = score_frame(model, df, spec, where)
    enc = encode(y, preds, spec, where)
    return metrics_of(
        enc, metric_names(enc.task) + [n for n in (names or []) if n not in M.DEFAULT_METRICS[enc.task]]
    )


@dataclass
class Check:
    kind: str  # "threshold" | "champion" | "slice"
    metric: str
    op: str
    threshold: float
    challenger: float
    champion: float | None
    delta: float | None
    passed: bool
    ci_low: float | None = None  # champion check: the improvement's confidence interval
    ci_high: float | None = None
    slice: dict[str, Any] | None = None  # slice checks: column, rule, the slice's value and rows

    def describe(self) -> str:
        verdict = "ok" if self.passed else "FAILED"
        if self.kind == "slice":
            from mlops_provider.core.slices import describe

            return describe(self)
        if self.kind == "champion":
            ci = (
                f", improvement CI [{self.ci_low:+.4f}, {self.ci_high:+.4f}]"
                if self.ci_low is not None
                else ""
            )
            return (
                f"{self.metric}: challenger {self.challenger:.4f} vs champion {self.champion:.4f} "
                f"(delta {self.delta:+.4f}, needs {self.op} {self.threshold:.4f}{ci}) {verdict}"
            )
        return (
            f"{self.metric}: {self.challenger:.4f} (threshold {self.op} {self.threshold:.4f}, "
            f"delta {self.delta:+.4f}) {verdict}"
        )


@dataclass
class Verdict:
    model: str
    passed: bool
    decision: str  # "promote" | "reject"
    reason: str
    compare_metric: str
    bootstrap: str
    checks: list[Check]
    metrics: dict[str, dict[str, float]]
    champion_version: int | None = None
    eval_dataset: dict[str, Any] = field(default_factory=dict)
    task: str = "binary"  # "binary" | "multiclass" | "regression"
    promote_if: str = "better"
    min_improvement: float = 0.0
    comparison: dict[str, Any] | None = None  # metrics.Comparison.to_dict()
    directions: dict[str, str] = field(default_factory=dict)  # metric -> "higher" | "lower" (is better)
    positive_label: Any = None
    classes: list[Any] = field(default_factory=list)
    slices: list[dict[str, Any]] = field(default_factory=list)  # per slice gate: its per-slice table

    @property
    def failed_checks(self) -> list[Check]:
        return [c for c in self.checks if not c.passed]

    def summary(self) -> str:
        head = f"Model gate {'passed' if self.passed else 'FAILED'} for {self.model!r}: {self.reason}"
        return head + (". " + "; ".join(c.describe() for c in self.checks) if self.checks else "")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["gate"] = "model"
        d["failed_checks"] = [asdict(c) for c in self.failed_checks]
        d["summary"] = self.summary()
        return d


def normalize_thresholds(
    thresholds: Any, owner: str = "EvaluateModelOperator", task: str | None = None
) -> dict[str, tuple[str, float]]:
    """See :func:`mlops_provider.core.metrics.normalize_thresholds`."""
    return M.normalize_thresholds(thresholds, task, owner)


def _fmt(v: Any) -> str:
    return "undefined" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.4f}"


def decide(
    *,
    model: str,
    task: str,
    challenger_metrics: dict[str, float],
    champion_metrics: dict[str, float] | None,
    champion_version: int | None,
    thresholds: Any = None,
    compare_metric: str | None = None,
    min_improvement: float = 0.0,
    bootstrap: str = "promote",
    promote_if: str = "better",
    comparison: dict[str, Any] | None = None,
    eval_dataset: dict[str, Any] | None = None,
    positive_label: Any = None,
    classes: list[Any] | None = None,
    slice_checks: list[Check] | None = None,
    slices: list[dict[str, Any]] | None = None,
    owner: str = "EvaluateModelOperator",
) -> Verdict:
    """Pure decision from metrics (no model needed): the unit-testable heart of the gate.

    ``task`` is ``"binary"``, ``"multiclass"`` or ``"regression"`` (``"classification"`` is read
    as binary). ``comparison`` (from :func:`metrics.compare`) holds the improvement's confidence
    interval; ``promote_if="significantly_better"`` needs it whenever there is a champion.
    """
    task = _check_decision_args(task, bootstrap, min_improvement, owner)
    gate = M.check_gate_config(
        task, thresholds=thresholds, compare_metric=compare_metric, promote_if=promote_if, owner=owner
    )
    compare_metric, limits = gate["compare_metric"], gate["thresholds"]
    if promote_if == "significantly_better" and champion_metrics is not None and not comparison:
        raise InvalidParameterError(
            f"promote_if='significantly_better' in {owner} needs the comparison's confidence interval; none "
            "was given."
        )
    checks = _threshold_checks(limits, challenger_metrics, champion_metrics)
    thresholds_ok = all(c.passed for c in checks)
    if champion_metrics is not None:
        check, reason = _champion_check(
            compare_metric,
            challenger_metrics[compare_metric],
            champion_metrics[compare_metric],
            champion_version,
            min_improvement,
            promote_if,
            comparison,
        )
        checks.append(check)
        passed = thresholds_ok and check.passed
        if not thresholds_ok:
            reason = "challenger misses absolute threshold(s): " + ", ".join(
                c.metric for c in checks if not c.passed and c.kind == "threshold"
            )
    else:
        passed, reason = _first_version(bootstrap, limits, checks)
    failed_slices = [c for c in slice_checks or [] if not c.passed]
    checks.extend(slice_checks or [])
    if failed_slices:
        why = "challenger fails slice gate(s): " + "; ".join(c.describe() for c in failed_slices)
        reason = why if passed else f"{reason}; {why}"
        passed = False
    names = list(challenger_metrics) + [k for k in (champion_metrics or {}) if k not in challenger_metrics]
    directions = _directions(names)
    return Verdict(
        model=model,
        passed=passed,
        decision="promote" if passed else "reject",
        reason=reason,
        compare_metric=compare_metric,
        bootstrap=bootstrap,
        checks=checks,
        metrics={
            "challenger": challenger_metrics,
            **({"champion": champion_metrics} if champion_metrics else {}),
        },
        champion_version=champion_version,
        eval_dataset=dict(eval_dataset or {}),
        task=task,
        promote_if=promote_if,
        min_improvement=float(min_improvement),
        comparison=comparison,
        directions=directions,
        positive_label=positive_label,
        classes=list(classes or []),
        slices=list(slices or []),
    )


@dataclass
class Judgement:
    """Everything the gate looked at: the verdict, the labelled rows and both models' predictions."""

    verdict: Verdict
    labelled: Any
    y: Any
    challenger: Predictions
    champion: Predictions | None
    spec: FeatureSpec


def _check_decision_args(task: str, bootstrap: str, min_improvement: Any, owner: str) -> str:
    """The task (``"classification"`` read as binary) once ``bootstrap`` and ``min_improvement``
    are checked."""
    if task == "classification":
        task = "binary"
    if task not in M.TASKS:
        raise InvalidParameterError(
            f"The 'task' of {owner} must be one of {list(M.TASKS)}. Got {task!r} instead."
        )
    if bootstrap not in BOOTSTRAP_POLICIES:
        raise InvalidParameterError(
            f"The 'bootstrap' parameter of {owner} must be one of {list(BOOTSTRAP_POLICIES)}. Got "
            f"{bootstrap!r} instead."
        )
    if (
        isinstance(min_improvement, bool)
        or not isinstance(min_improvement, (int, float))
        or min_improvement < 0
    ):
        raise InvalidParameterError(
            f"The 'min_improvement' parameter of {owner} must be a number >= 0. Got {min_improvement!r} "
            "instead."
        )
    return task


def _threshold_checks(
    limits: dict[str, tuple[str, float]],
    challenger_metrics: dict[str, float],
    champion_metrics: dict[str, float] | None,
) -> list[Check]:
    checks = []
    for metric, (op, value) in limits.items():
        got = challenger_metrics[metric]
        ok = got == got and (got >= value if op == ">=" else got <= value)
        checks.append(
            Check(
                "threshold",
                metric,
                op,
                value,
                got,
                champion_metrics.get(metric) if champion_metrics else None,
                round(got - value, 6) if got == got else None,
                ok,
            )
        )
    return checks


def _champion_check(
    metric: str,
    ch: float,
    cm: float,
    champion_version: int | None,
    min_improvement: float,
    promote_if: str,
    comparison: dict[str, Any] | None,
) -> tuple[Check, str]:
    """The challenger-vs-champion check on ``metric`` and the reason it gives (NaN never wins,
    ties never promote, ``significantly_better`` needs the interval above ``min_improvement``)."""
    higher = M.resolve(metric).higher_is_better
    need = cm + min_improvement if higher else cm - min_improvement
    beats = ch == ch and cm == cm and (ch > need if higher else ch < need)  # strict: ties never promote
    ci_low = ci_high = None
    better = beats
    if comparison:
        ci_low, ci_high = comparison["ci_low"], comparison["ci_high"]
        if promote_if == "significantly_better":
            better = beats and ci_low > min_improvement
    check = Check(
        "champion",
        metric,
        ">" if higher else "<",
        round(need, 6),
        ch,
        cm,
        round(ch - cm, 6) if ch == ch and cm == cm else None,
        better,
        ci_low,
        ci_high,
    )
    if better:
        how = "significantly " if promote_if == "significantly_better" else ""
        return (
            check,
            f"challenger {how}beats champion v{champion_version} on {metric} and meets every threshold",
        )
    if beats:  # better, but its interval reaches below min_improvement
        return check, (
            f"challenger is better than champion v{champion_version} on {metric} ({_fmt(ch)} vs "
            f"{_fmt(cm)}), but not significantly: the {comparison['confidence']:.0%} interval of the "
            f"improvement, [{ci_low:+.4f}, {ci_high:+.4f}], does not lie above {min_improvement:g}"
        )
    return check, (
        f"challenger does not beat champion v{champion_version} on {metric} "
        f"({_fmt(ch)} vs {_fmt(cm)}, needs {'>' if higher else '<'} {need:.4f}); ties never promote"
    )


def _first_version(bootstrap: str, limits: dict[str, Any], checks: list[Check]) -> tuple[bool, str]:
    """Whether a first version (no champion yet) passes, by the ``bootstrap`` policy."""
    if bootstrap == "fail":
        return False, "no champion yet and bootstrap='fail': promote a first version by hand"
    if bootstrap == "require_thresholds" and not limits:
        return False, "no champion yet and bootstrap='require_thresholds', but no thresholds are set"
    failed = [c.metric for c in checks if not c.passed]
    if failed:
        return False, "no champion yet; challenger misses absolute threshold(s): " + ", ".join(failed)
    return True, f"no champion yet; bootstrap={bootstrap!r} and every threshold is met"


def _directions(names: list[str]) -> dict[str, str]:
    directions = {}
    for name in names:
        if name == "rows":
            continue
        try:
            directions[name] = "higher" if M.resolve(name).higher_is_better else "lower"
        except InvalidParameterError:
            pass
    return directions


def judge(
    challenger_model,
    df,
    spec: FeatureSpec,
    *,
    model: str,
    champion: tuple[Any, int, FeatureSpec] | None = None,
    thresholds: Any = None,
    compare_metric: str | None = None,
    min_improvement: float = 0.0,
    bootstrap: str = "promote",
    promote_if: str = "better",
    resamples: int = M.RESAMPLES,
    confidence: float = M.CONFIDENCE,
    seed: int = 0,
    cluster_column: str | None = None,
    eval_dataset: dict[str, Any] | None = None,
    where: str = "The evaluation data",
    owner: str = "EvaluateModelOperator",
    slice_gates: Any = None,
) -> Judgement:
    """Score the challenger (and the champion ``(model, version, spec)``) on the labelled rows of
    ``df``, measure both with the task's metrics, estimate the improvement's confidence interval on
    the compare metric, and decide (:func:`decide`). The gate settings are checked first, before any
    model runs. With ``cluster_column`` (rows of one value are correlated, e.g. one day's flights),
    the improvement's interval resamples whole groups (:func:`metrics.compare`)."""
    task = spec.kind
    gate = M.check_gate_config(
        task, thresholds=thresholds, compare_metric=compare_metric, promote_if=promote_if, owner=owner
    )
    if isinstance(resamples, bool) or not isinstance(resamples, int) or not 100 <= resamples <= 100_000:
        raise InvalidParameterError(
            f"The 'resamples' parameter of {owner} must be an int in [100, 100000]. "
            f"Got {resamples!r} instead."
        )
    if not isinstance(confidence, float) or not 0.5 <= confidence < 1:
        raise InvalidParameterError(
            f"The 'confidence' parameter of {owner} must be a float in [0.5, 1). Got {confidence!r} instead."
        )
    names = metric_names(task, gate["thresholds"], gate["compare_metric"])
    from mlops_provider.core.slices import evaluate_gates, normalize_slice_gates

    gates = normalize_slice_gates(slice_gates, task, owner, columns=list(df.columns), classes=spec.classes)
    if cluster_column is not None and cluster_column not in df.columns:
        raise InvalidParameterError(
            f"The 'cluster_column' parameter of {owner} must be a column of the evaluation data "
            f"{list(df.columns)}. "
            f"Got {cluster_column!r} instead."
        )
    labelled, y, ch_preds = score_frame(challenger_model, df, spec, where)
    ch_enc = encode(y, ch_preds, spec, where)
    ch_metrics = metrics_of(ch_enc, names)
    champ_preds = champ_metrics = comparison = None
    champ_version = None
    if champion is not None:
        champ_model, champ_version, champ_spec = champion
        if champ_spec.kind != task:
            raise InvalidInputError(
                f"The champion v{champ_version} of {model!r} is a {champ_spec.kind} model and the "
                f"challenger a {task} "
                f"one; they cannot be compared on one metric. Promote a first {task} version by hand."
            )
        _, y_c, champ_preds = score_frame(
            champ_model, labelled, champ_spec, f"{where} (champion v{champ_version})"
        )
        champ_enc = encode(y_c, champ_preds, champ_spec, where)
        champ_metrics = metrics_of(champ_enc, names)
        comparison = M.compare(
            gate["compare_metric"],
            task,
            ch_enc.y,
            (ch_enc.pred, ch_enc.proba),
            _aligned(champ_enc, ch_enc),
            ch_enc.classes,
            confidence=confidence,
            resamples=resamples,
            seed=seed,
            groups=labelled[cluster_column].to_numpy() if cluster_column else None,
        ).to_dict()
    slice_checks, slices = evaluate_gates(
        gates, labelled, ch_enc, _aligned(champ_enc, ch_enc) if champion is not None else None
    )
    verdict = decide(
        model=model,
        task=task,
        challenger_metrics=ch_metrics,
        champion_metrics=champ_metrics,
        champion_version=champ_version,
        thresholds=thresholds,
        compare_metric=gate["compare_metric"],
        min_improvement=min_improvement,
        bootstrap=bootstrap,
        promote_if=promote_if,
        comparison=comparison,
        eval_dataset=eval_dataset,
        positive_label=spec.positive_label,
        classes=spec.classes,
        slice_checks=slice_checks,
        slices=slices,
        owner=owner,
    )
    return Judgement(verdict, labelled, y, ch_preds, champ_preds, spec)


def _aligned(champion: Encoded, challenger: Encoded) -> tuple[Any, Any]:
    """The champion's (pred, proba) with its probability columns in the challenger's class order
    (a class it never saw gets probability 0)."""
    import numpy as np

    if champion.proba is None or list(map(str, champion.classes)) == list(map(str, challenger.classes)):
        return champion.pred, champion.proba
    index = {str(c): j for j, c in enumerate(champion.classes)}
    proba = np.zeros((len(champion.pred), len(challenger.classes)))
    for j, c in enumerate(challenger.classes):
        if str(c) in index:
            proba[:, j] = champion.proba[:, index[str(c)]]
    return champion.pred, proba
