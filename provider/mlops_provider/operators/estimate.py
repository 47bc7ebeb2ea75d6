"""Estimating the champion's performance before labels arrive (CBPE); a drop beyond the tolerance
asks for a retrain through ``x-mlops://<model>/retrain-requested`` (reason ``estimated_performance``),
emitted through the same alias as the drift monitor's requests (see :mod:`.drift`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from mlops_provider.core.names import CHAMPION
from mlops_provider.operators._base import MlopsBaseOperator
from mlops_provider.operators.drift import _RetrainEmitterMixin

if TYPE_CHECKING:
    from airflow.sdk import Context


class EstimatePerformanceOperator(_RetrainEmitterMixin, MlopsBaseOperator):
    """Estimate the champion's accuracy, F1 and ROC AUC on an unlabelled window from its calibrated
    probabilities (CBPE); request a retrain when the estimate of ``metric`` dropped by more than
    ``tolerance`` below the champion's value on its evaluation snapshot.

    :param model_name: registry name (its ``alias`` version is estimated).
    :param dataset: the window's snapshot URI, or an ``ExtractOperator`` result (labels not needed;
        labelled rows give the realised metrics, recorded next to the estimate).
    :param metric: binary ``roc_auc`` (default), ``accuracy`` or ``f1``; multiclass ``roc_auc_ovr``
        (default), ``accuracy`` or ``f1_macro``.
    :param tolerance: the drop allowed before a retrain is requested (default 0.02).
    :param max_calibration_error: recalibrate on the reference above this expected calibration error.
    :param draws: label sets drawn for the 95% interval.
    :param skip_regressors: a regressor champion skips the task with its reason logged (True) or
        fails it (False).
    :param retrain_alias: name of the AssetAlias outlet (default ``mlops-retrain-requested:<model>``).
    :return: model, champion_version, metric, reference, estimate, lower, upper, drop, tolerance,
        retrain, estimated (every metric), realised (or None), calibration, report_uri and event.
    """

    # model_name names the retrain-request outlet when the DAG is parsed, so it is not templated
    template_fields: Sequence[str] = (
        "dataset",
        "metric",
        "tolerance",
        "max_calibration_error",
        "artifact_root",
    )
    ui_color = "#fdf1dc"

    def __init__(
        self,
        *,
        model_name: str,
        dataset: Any,
        metric: str | None = None,
        tolerance: Any = 0.02,
        max_calibration_error: Any = 0.01,
        draws: Any = 200,
        alias: str = CHAMPION,
        trusted_types: list[str] | None = None,
        skip_regressors: bool = True,
        retrain_alias: str | None = None,
        artifact_root: str | None = None,
        **kwargs: Any,
    ):
        super().__init__(artifact_root=artifact_root, **kwargs)
        self.model_name = model_name
        self.dataset = dataset
        self.metric = metric
        self.tolerance = tolerance
        self.max_calibration_error = max_calibration_error
        self.draws = draws
        self.alias = alias
        self.trusted_types = trusted_types
        self.skip_regressors = skip_regressors
        self._declare_retrain_outlet(model_name, retrain_alias)

    def execute_step(self, context: Context) -> dict[str, Any]:
        from airflow.sdk.exceptions import AirflowSkipException

        from mlops_provider.core.steps.estimate import (
            EstimateParams,
            NotAClassifierError,
            estimate_performance,
        )

        params = self.params_for(
            EstimateParams,
            model_name=self.model_name,
            metric=self.metric or None,
            tolerance=self.tolerance,
            max_calibration_error=self.max_calibration_error,
            draws=self.draws,
            alias=self.alias,
            trusted_types=self.trusted_types,
        )
        try:
            return self._monitor(estimate_performance, params, context)
        except NotAClassifierError as err:
            if not self.skip_regressors:
                raise
            self.log.warning("Skipped: %s", err)
            raise AirflowSkipException(str(err)) from err
