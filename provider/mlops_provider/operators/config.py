"""CheckRetrainConfigOperator: the first, cheap task of a retraining run; an adapter of
:func:`mlops_provider.core.steps.config.check_config`.

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
    :param slice_gates: the model gate's slice and fairness gates (templated; see
        :mod:`mlops_provider.core.slices`).
    :param columns: the evaluation data's columns when known before extraction (the slice gates'
        columns are then checked here; else by the evaluate task before scoring).
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
        "slice_gates",
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
        slice_gates: Any = None,
        columns: list[str] | None = None,
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
        self.slice_gates = slice_gates
        self.columns = columns

    def execute_step(self, context: Context) -> dict[str, Any]:
        from mlops_provider.core.steps.config import ConfigParams, check_config

        params = self.params_for(
            ConfigParams,
            model_name=self.model_name,
            estimator=self.estimator,
            model_params=self.model_params,
            seed=self.seed,
            thresholds=self.thresholds,
            compare_metric=self.compare_metric,
            promote_if=self.promote_if,
            min_improvement=self.min_improvement,
            positive_label=self.positive_label,
            slice_gates=self.slice_gates or None,
            columns=self.columns,
        )
        return check_config(params, caller=self.caller).to_dict()
