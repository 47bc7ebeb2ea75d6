"""Check a retraining run's settings before any data is read (no I/O, about a second).

Everything the config block or the Params form can get wrong: the model name, the estimator and its
parameters (built once, so scikit-learn's own parameter validation speaks), the seed, the positive
label, and the model gate's metrics (scikit-learn scorer names, their direction and their fit to a
classifier or a regressor), the promotion rule and the minimum improvement. Whether a classifier
is binary or multiclass is known only from its labels; the train step checks that before fitting.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from mlops_provider.core.params import Interval, Name, Params, Text

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ConfigParams(Params):
    """:param model_name: the registry name. :param estimator: an allow-listed import path.
    :param model_params: the estimator's parameters. :param seed: random seed. :param thresholds:
    the model gate's absolute thresholds by metric name. :param compare_metric: the champion
    comparison's metric (None: the task's default). :param promote_if: ``"better"`` or
    ``"significantly_better"``. :param min_improvement: the smallest improvement that promotes.
    :param positive_label: a binary label's positive class, or None. :param slice_gates: the slice
    and fairness gates (:mod:`mlops_provider.core.slices`). :param columns: the evaluation data's
    columns if known before extraction (the slice gates' columns are then checked too)."""

    _step: ClassVar[str] = "check_config"
    _parameter_constraints: ClassVar = {
        "model_name": [Name()],
        "estimator": [Text("an estimator import path such as 'sklearn.linear_model.LogisticRegression'")],
        "seed": [Interval(int, 0, 2**32, closed="left")],
        "min_improvement": [Interval(float, 0, None)],
    }

    model_name: str
    estimator: str
    model_params: dict[str, Any] | None = None
    seed: int = 42
    thresholds: dict[str, Any] | None = None
    compare_metric: str | None = None
    promote_if: Literal["better", "significantly_better"] = "better"
    min_improvement: float = 0.0
    positive_label: Any = None
    slice_gates: list[Any] | None = None
    columns: list[str] | None = None

    def __post_init__(self) -> None:
        # what forms send: a seed of 7.0, an empty compare metric or positive label
        if isinstance(self.seed, float) and self.seed.is_integer():
            object.__setattr__(self, "seed", int(self.seed))
        for name in ("compare_metric", "positive_label"):
            if getattr(self, name) == "":
                object.__setattr__(self, name, None)
        super().__post_init__()


@dataclass
class ConfigResult:
    task: str  # "classification" | "regression"
    estimator: str
    seed: int
    positive_label: Any
    thresholds: dict[str, list[Any]]
    compare_metric: str | None
    promote_if: str
    min_improvement: float
    gate_metrics: list[str] = field(default_factory=list)
    slice_gates: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def check_config(params: ConfigParams, *, caller: str | None = None) -> ConfigResult:
    """Build the estimator once and resolve the gate's metrics; raise on the first bad setting."""
    from sklearn.base import is_classifier

    from mlops_provider.core import metrics as M
    from mlops_provider.core.errors import InvalidParameterError
    from mlops_provider.core.modeling import make_estimator

    owner = caller or params._step
    est = make_estimator(params.estimator, params.model_params, params.seed, owner)
    task = "classification" if is_classifier(est) else "regression"
    positive = params.positive_label
    if task == "regression" and positive is not None:
        raise InvalidParameterError(
            f"The 'positive_label' parameter of {owner} must be empty for the regressor "
            f"{params.estimator}. Got {positive!r} instead."
        )
    gate = M.check_gate_config(
        "binary" if task == "classification" and positive is not None else task,
        thresholds=params.thresholds,
        compare_metric=params.compare_metric,
        promote_if=params.promote_if,
        owner=owner,
    )
    from mlops_provider.core.slices import normalize_slice_gates

    if task == "classification" and positive is not None:
        kind = "binary"
    else:
        kind = task  # a classifier without a positive label: binary or multiclass, known at training
    slices = normalize_slice_gates(params.slice_gates, kind, owner, columns=params.columns)
    gate_metrics = list(gate["thresholds"])
    if params.compare_metric:
        gate_metrics = list(dict.fromkeys([*gate_metrics, gate["compare_metric"]]))
    result = ConfigResult(
        task=task,
        estimator=params.estimator,
        seed=params.seed,
        positive_label=positive,
        thresholds={k: list(v) for k, v in gate["thresholds"].items()},
        compare_metric=params.compare_metric,
        promote_if=gate["promote_if"],
        min_improvement=float(params.min_improvement),
        gate_metrics=gate_metrics,
        slice_gates=[g.to_dict() for g in slices],
    )
    log.info("Settings checked: %s %s; gate %s", task, params.estimator, result.to_dict())
    return result
