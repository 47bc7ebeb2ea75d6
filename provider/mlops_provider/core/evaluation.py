"""Model quality gate: absolute thresholds, and challenger vs champion on the same evaluation data.

The verdict is structured so alerts and the UI can say exactly what failed and by how much: each
check carries the metric, the operator, the threshold, the champion and challenger values and the
delta. Ties never promote: the challenger must beat the champion by more than
``min_improvement``. With no champion yet, ``bootstrap`` decides:

* ``"promote"``: promote if every absolute threshold passes (or none is set);
* ``"require_thresholds"``: promote only if at least one threshold is set and all pass;
* ``"fail"``: never promote automatically; someone promotes by hand (``mlops models promote``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from mlops_provider.core.errors import InvalidParameterError, SingleClassLabelError
from mlops_provider.core.modeling import FeatureSpec, predict_scores, prepare_frame

HIGHER_IS_BETTER = {
    "roc_auc": True,
    "average_precision": True,
    "accuracy": True,
    "balanced_accuracy": True,
    "f1": True,
    "precision": True,
    "recall": True,
    "log_loss": False,
    "brier": False,
    "r2": True,
    "rmse": False,
    "mae": False,
}
CLASSIFICATION_METRICS = ("roc_auc", "average_precision", "log_loss", "brier", "accuracy", "balanced_accuracy", "f1", "precision", "recall")
REGRESSION_METRICS = ("rmse", "mae", "r2")
BOOTSTRAP_POLICIES = ("promote", "require_thresholds", "fail")
ON_FAIL = ("fail", "skip", "warn")


def default_compare_metric(task: str) -> str:
    return "roc_auc" if task == "classification" else "rmse"


def score_frame(model, df, spec: FeatureSpec, where: str = "The evaluation data"):
    """Rows with a label, scored: ``(labelled_df, y, prediction, score)``."""
    from mlops_provider.core.modeling import check_columns

    check_columns(list(df.columns), [spec.label], "label", where)
    df = df.loc[df[spec.label].notna()]
    X = prepare_frame(df, spec, where)
    pred, score = predict_scores(model, X, spec)
    return df, df[spec.label].to_numpy(), pred, score


def metrics_from(y, pred, score, spec: FeatureSpec, where: str = "The evaluation data") -> dict[str, float]:
    import numpy as np
    from sklearn import metrics as m

    if spec.task == "classification":
        y_pos = y == spec.positive_label
        if y_pos.all() or (~y_pos).all():
            raise SingleClassLabelError(
                f"{where}: the label column {spec.label!r} has a single class in all {len(y)} rows; ROC AUC and "
                "the champion comparison need both classes."
            )
        pred_pos = pred == spec.positive_label
        eps = 1e-15
        s = np.clip(score.astype("float64"), eps, 1 - eps)
        out = {
            "roc_auc": m.roc_auc_score(y_pos, score),
            "average_precision": m.average_precision_score(y_pos, score),
            "log_loss": m.log_loss(y_pos, s, labels=[False, True]),
            "brier": m.brier_score_loss(y_pos, s),
            "accuracy": m.accuracy_score(y_pos, pred_pos),
            "balanced_accuracy": m.balanced_accuracy_score(y_pos, pred_pos),
            "f1": m.f1_score(y_pos, pred_pos, zero_division=0),
            "precision": m.precision_score(y_pos, pred_pos, zero_division=0),
            "recall": m.recall_score(y_pos, pred_pos, zero_division=0),
        }
    else:
        y = y.astype("float64")
        out = {
            "rmse": float(np.sqrt(m.mean_squared_error(y, pred))),
            "mae": m.mean_absolute_error(y, pred),
            "r2": m.r2_score(y, pred),
        }
    out = {k: round(float(v), 6) for k, v in out.items()}
    out["rows"] = len(y)
    return out


def compute_metrics(model, df, spec: FeatureSpec, where: str = "The evaluation data") -> dict[str, float]:
    _, y, pred, score = score_frame(model, df, spec, where)
    return metrics_from(y, pred, score, spec, where)


@dataclass
class Check:
    kind: str  # "threshold" | "champion"
    metric: str
    op: str
    threshold: float
    challenger: float
    champion: float | None
    delta: float | None
    passed: bool

    def describe(self) -> str:
        verdict = "ok" if self.passed else "FAILED"
        if self.kind == "champion":
            return (
                f"{self.metric}: challenger {self.challenger:.4f} vs champion {self.champion:.4f} "
                f"(delta {self.delta:+.4f}, needs {self.op} {self.threshold:.4f}) {verdict}"
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


def normalize_thresholds(thresholds: Any, owner: str = "EvaluateModelOperator") -> dict[str, tuple[str, float]]:
    """``{"roc_auc": 0.7, "log_loss": {"max": 0.5}}`` -> ``{"roc_auc": (">=", 0.7), "log_loss": ("<=", 0.5)}``."""
    if thresholds in (None, {}):
        return {}
    if not isinstance(thresholds, dict):
        raise InvalidParameterError(
            f"The 'thresholds' parameter of {owner} must be a dict of metric -> value. Got {thresholds!r} instead."
        )
    out = {}
    for metric, spec in thresholds.items():
        if metric not in HIGHER_IS_BETTER:
            raise InvalidParameterError(
                f"The 'thresholds' parameter of {owner} names unknown metric {metric!r}; known metrics: "
                f"{sorted(HIGHER_IS_BETTER)}."
            )
        if isinstance(spec, dict):
            if set(spec) == {"min"}:
                op, value = ">=", spec["min"]
            elif set(spec) == {"max"}:
                op, value = "<=", spec["max"]
            else:
                raise InvalidParameterError(
                    f"The threshold for {metric!r} in {owner} must be a number or {{'min': x}} / {{'max': x}}. Got {spec!r}."
                )
        else:
            op, value = (">=" if HIGHER_IS_BETTER[metric] else "<="), spec
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise InvalidParameterError(
                f"The threshold for {metric!r} in {owner} must be a number. Got {value!r} instead."
            )
        out[metric] = (op, float(value))
    return out


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
    eval_dataset: dict[str, Any] | None = None,
    owner: str = "EvaluateModelOperator",
) -> Verdict:
    """Pure decision from metrics (no model needed): the unit-testable heart of the gate."""
    if bootstrap not in BOOTSTRAP_POLICIES:
        raise InvalidParameterError(
            f"The 'bootstrap' parameter of {owner} must be one of {list(BOOTSTRAP_POLICIES)}. Got {bootstrap!r} instead."
        )
    if isinstance(min_improvement, bool) or not isinstance(min_improvement, (int, float)) or min_improvement < 0:
        raise InvalidParameterError(
            f"The 'min_improvement' parameter of {owner} must be a number >= 0. Got {min_improvement!r} instead."
        )
    compare_metric = compare_metric or default_compare_metric(task)
    known = CLASSIFICATION_METRICS if task == "classification" else REGRESSION_METRICS
    if compare_metric not in known:
        raise InvalidParameterError(
            f"The 'compare_metric' parameter of {owner} must be one of {list(known)} for a {task} model. "
            f"Got {compare_metric!r} instead."
        )
    limits = normalize_thresholds(thresholds, owner)
    for metric in limits:
        if metric not in known:
            raise InvalidParameterError(
                f"The 'thresholds' parameter of {owner} names {metric!r}, which is not a {task} metric {list(known)}."
            )
    checks: list[Check] = []
    for metric, (op, value) in limits.items():
        got = challenger_metrics[metric]
        ok = got >= value if op == ">=" else got <= value
        checks.append(
            Check("threshold", metric, op, value, got, champion_metrics.get(metric) if champion_metrics else None,
                  round(got - value, 6), ok)
        )
    thresholds_ok = all(c.passed for c in checks)
    if champion_metrics is not None:
        higher = HIGHER_IS_BETTER[compare_metric]
        ch, cm = challenger_metrics[compare_metric], champion_metrics[compare_metric]
        need = cm + min_improvement if higher else cm - min_improvement
        better = ch > need if higher else ch < need  # strict: ties never promote
        checks.append(Check("champion", compare_metric, ">" if higher else "<", round(need, 6), ch, cm,
                            round(ch - cm, 6), better))
        passed = thresholds_ok and better
        if passed:
            reason = f"challenger beats champion v{champion_version} on {compare_metric} and meets every threshold"
        elif not thresholds_ok:
            reason = "challenger misses absolute threshold(s): " + ", ".join(c.metric for c in checks if not c.passed and c.kind == "threshold")
        else:
            reason = (
                f"challenger does not beat champion v{champion_version} on {compare_metric} "
                f"({ch:.4f} vs {cm:.4f}, needs {'>' if higher else '<'} {need:.4f}); ties never promote"
            )
    else:
        if bootstrap == "fail":
            passed, reason = False, "no champion yet and bootstrap='fail': promote a first version by hand"
        elif bootstrap == "require_thresholds" and not limits:
            passed, reason = False, "no champion yet and bootstrap='require_thresholds', but no thresholds are set"
        elif not thresholds_ok:
            passed = False
            reason = "no champion yet; challenger misses absolute threshold(s): " + ", ".join(
                c.metric for c in checks if not c.passed
            )
        else:
            passed, reason = True, f"no champion yet; bootstrap={bootstrap!r} and every threshold is met"
    return Verdict(
        model=model,
        passed=passed,
        decision="promote" if passed else "reject",
        reason=reason,
        compare_metric=compare_metric,
        bootstrap=bootstrap,
        checks=checks,
        metrics={"challenger": challenger_metrics, **({"champion": champion_metrics} if champion_metrics else {})},
        champion_version=champion_version,
        eval_dataset=dict(eval_dataset or {}),
    )
