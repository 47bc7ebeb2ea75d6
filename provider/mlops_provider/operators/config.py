"""CheckRetrainConfigOperator: the first, cheap task of a retraining run.

Everything a run's settings can get wrong is checked here, from the DAG's config block and the
Params form, before any data is extracted or any model trained: the model name, the estimator and
its parameters, the seed, the positive label, and the model gate's metrics (scikit-learn scorer
names, their direction, their fit to a classifier or a regressor), promotion rule and improvement.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from mlops_provider.operators._base import MlopsBaseOperator

if TYPE_CHECKING:
    from airflow.sdk import Context


class CheckRetrainConfigOperator(MlopsBaseOperator):
    """Validate a retraining run's settings at its start (no I/O, about a second).

    :param model_name: registry name.
    :param estimator: estimator import path (templated).
    :param model_params: estimator parameters (templated).
    :param seed: random seed (templated).
    :param thresholds: the model gate's absolute thresholds (templated).
    :param compare_metric: the champion comparison's metric, or None for the task's default.
    :param promote_if: ``"better"`` or ``"significantly_better"`` (templated).
    :param min_improvement: a number >= 0 (templated).
    :param positive_label: the positive class of a binary label, or empty (templated).
    :return: ``{"task", "estimator", "thresholds", "compare_metric", "promote_if", "min_improvement",
        "gate_metrics"}`` (``task`` is ``"classification"`` or ``"regression"``; whether a
        classifier is binary or multiclass is known only from its labels, and checked by the train
        task before fitting).
    """

    template_fields: Sequence[str] = (
        "model_name",
        "estimator",
        "model_params",
        "seed",
        "thresholds",
        "compare_metric",
        "promote_if",
        "min_improvement",
        "positive_label",
        "artifact_root",
    )
    ui_color = "#eef3e2"

    def __init__(
        self,
        *,
        model_name: str,
        estimator: str,
        model_params: Any = None,
        seed: Any = 42,
        thresholds: Any = None,
        compare_metric: Any = None,
        promote_if: Any = "better",
        min_improvement: Any = 0.0,
        positive_label: Any = None,
        artifact_root: str | None = None,
        **kwargs: Any,
    ):
        super().__init__(artifact_root=artifact_root, **kwargs)
        self.model_name = model_name
        self.estimator = estimator
        self.model_params = model_params
        self.seed = seed
        self.thresholds = thresholds
        self.compare_metric = compare_metric
        self.promote_if = promote_if
        self.min_improvement = min_improvement
        self.positive_label = positive_label

    def execute_step(self, context: Context) -> dict[str, Any]:
        from sklearn.base import is_classifier

        from mlops_provider.core import metrics as M
        from mlops_provider.core.modeling import make_estimator

        owner = f"{self.owner_name()} (task {self.task_id!r})"
        self.name_param(self.model_name)
        seed = check_seed(self, self.seed)
        params = self.as_dict(self.model_params, "model_params")
        est = make_estimator(self.estimator, params, seed, owner)
        task = "classification" if is_classifier(est) else "regression"
        positive = self.positive_label
        if task == "regression" and positive not in (None, ""):
            raise self.param_error("positive_label", f"empty for the regressor {self.estimator}", positive)
        thresholds = self.as_dict(self.thresholds, "thresholds")
        gate = M.check_gate_config(
            "binary" if task == "classification" and positive not in (None, "") else task,
            thresholds=thresholds,
            compare_metric=self.compare_metric or None,
            promote_if=self.promote_if,
            owner=owner,
        )
        try:
            min_improvement = float(self.min_improvement)
        except (TypeError, ValueError):
            min_improvement = -1.0
        if isinstance(self.min_improvement, bool) or not min_improvement >= 0:
            raise self.param_error("min_improvement", "a number >= 0", self.min_improvement)
        out = {
            "task": task,
            "estimator": self.estimator,
            "seed": seed,
            "positive_label": positive,
            "thresholds": {k: list(v) for k, v in gate["thresholds"].items()},
            "compare_metric": self.compare_metric or None,
            "promote_if": gate["promote_if"],
            "min_improvement": min_improvement,
            "gate_metrics": list(dict.fromkeys([*gate["thresholds"], gate["compare_metric"]]))
            if self.compare_metric
            else list(gate["thresholds"]),
        }
        self.log.info("Settings checked: %s %s; gate %s", task, self.estimator, out)
        return out


def check_seed(op: MlopsBaseOperator, seed: Any) -> int:
    """A seed from the config or a form (``"7"``, ``7.0`` accepted): an int in [0, 2**32)."""
    value = seed
    if isinstance(value, str) and value.strip().lstrip("-").isascii() and value.strip().lstrip("-").isdigit():
        value = int(value)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**32:
        raise op.param_error("seed", "an int in [0, 2**32)", seed)
    return value
