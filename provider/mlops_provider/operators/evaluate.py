"""EvaluateModelOperator: the model quality gate, challenger vs champion on the same data."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from mlops_provider.core.names import CHAMPION
from mlops_provider.exceptions import ModelGateFailed
from mlops_provider.links.report import EvaluationReportLink
from mlops_provider.operators._base import MlopsBaseOperator

if TYPE_CHECKING:
    from airflow.sdk import Context


class EvaluateModelOperator(MlopsBaseOperator):
    """Score the challenger (and the current champion) on one evaluation snapshot and decide.

    :param model_name: registry name; its ``alias`` version is the champion.
    :param model: the ``TrainModelOperator``'s result (``train.output``).
    :param dataset: evaluation snapshot URI or the upstream ``ExtractOperator``'s result.
    :param thresholds: absolute gates by scikit-learn scorer name or alias, e.g. ``{"f1_macro": 0.8,
        "log_loss": {"max": 0.55}}`` (templated); a plain number is a floor for a higher-is-better
        metric and a ceiling for an error.
    :param compare_metric: metric for challenger vs champion (default: ``roc_auc`` for binary,
        ``log_loss`` for multiclass, ``rmse`` for regression; see :mod:`mlops_provider.core.metrics`).
    :param min_improvement: the challenger must beat the champion by more than this (ties never promote).
    :param promote_if: ``"better"`` (the improvement exceeds ``min_improvement``) or
        ``"significantly_better"`` (the lower end of its confidence interval does).
    :param bootstrap: first-run policy with no champion: ``"promote"``, ``"require_thresholds"``, ``"fail"``.
    :param on_fail: ``"fail"`` | ``"skip"`` | ``"warn"`` when the verdict does not pass.
    :param slice_column: a column of the evaluation data (e.g. ``"carrier"``) whose values get
        per-slice metrics in the HTML report.
    :param slice_gates: slice and fairness gates (templated), e.g. ``[{"column": "carrier", "metric":
        "roc_auc", "min": 0.6, "max_gap": 0.08, "min_rows": 300}]`` or ``[{"column": "origin",
        "metric": "positive_rate", "min_ratio": 0.8}]``: the challenger fails the gate if a slice with
        ``min_rows`` rows is below ``min``, or the best-to-worst spread widens by more than
        ``max_gap`` compared with the champion (:mod:`mlops_provider.core.slices`).
    :param cluster_column: a column of the evaluation data whose rows are correlated within a value
        (e.g. the departure date: one day's flights share its weather): the improvement's confidence
        interval then resamples whole groups, so it reflects day-to-day variation, not only row noise.
    :param resamples: bootstrap resamples for the improvement's confidence interval (without
        ``cluster_column``, binary ROC AUC uses DeLong's method instead).
    :param confidence: the interval's confidence level (default 0.95).
    :param seed: seed of the bootstrap.
    :return: the verdict (passed, decision, reason, checks with metric / threshold / champion /
        challenger / delta and the improvement's interval, metrics, comparison) plus ``challenger``
        (the model result) and ``verdict_uri``.
    """

    template_fields: Sequence[str] = (
        "model_name",
        "model",
        "dataset",
        "thresholds",
        "compare_metric",
        "min_improvement",
        "promote_if",
        "bootstrap",
        "on_fail",
        "slice_gates",
        "artifact_root",
    )
    ui_color = "#f6e3f3"
    operator_extra_links = (EvaluationReportLink(),)

    def __init__(
        self,
        *,
        model_name: str,
        model: Any,
        dataset: Any,
        thresholds: Any = None,
        compare_metric: str | None = None,
        min_improvement: Any = 0.0,
        promote_if: str = "better",
        bootstrap: str = "promote",
        on_fail: str = "fail",
        alias: str = CHAMPION,
        slice_column: str | None = None,
        slice_gates: Any = None,
        cluster_column: str | None = None,
        trusted_types: list[str] | None = None,
        resamples: int = 1000,
        confidence: float = 0.95,
        seed: int = 0,
        artifact_root: str | None = None,
        **kwargs: Any,
    ):
        super().__init__(artifact_root=artifact_root, **kwargs)
        self.model_name = model_name
        self.model = model
        self.dataset = dataset
        self.thresholds = thresholds
        self.compare_metric = compare_metric
        self.min_improvement = min_improvement
        self.promote_if = promote_if
        self.bootstrap = bootstrap
        self.on_fail = on_fail
        self.alias = alias
        self.slice_column = slice_column
        self.slice_gates = slice_gates
        self.cluster_column = cluster_column
        self.trusted_types = trusted_types
        self.resamples = resamples
        self.confidence = confidence
        self.seed = seed

    def execute_step(self, context: Context) -> dict[str, Any]:
        from mlops_provider.core.steps.evaluate import EvaluateParams, check_trained, evaluate_challenger
        from mlops_provider.links.report import artifact_url

        params = self.params_for(
            EvaluateParams,
            model_name=self.model_name,
            thresholds=self.thresholds,
            compare_metric=self.compare_metric,
            min_improvement=self.min_improvement,
            promote_if=self.promote_if,
            bootstrap=self.bootstrap,
            on_fail=self.on_fail,
            alias=self.alias,
            slice_column=self.slice_column,
            slice_gates=self.slice_gates or None,
            cluster_column=self.cluster_column,
            trusted_types=self.trusted_types,
            resamples=self.resamples,
            confidence=self.confidence,
            seed=self.seed,
        )
        challenger = check_trained(self.as_dict(self.model, "model", allow_none=False), self.caller, "model")
        store = self.store()
        result = evaluate_challenger(
            params,
            challenger=challenger,
            dataset=self.as_uri(self.dataset, "dataset"),
            store=store,
            registry=self.model_registry(store),
            run=self.run_info(context),
            caller=self.caller,
        )
        self.mlops_links[EvaluationReportLink.name] = artifact_url(store, result.report_uri)
        self.lineage_record = result.lineage()
        return self.gate_outcome(
            context, result.to_dict(), result.passed, result.summary, params.on_fail, ModelGateFailed
        )
