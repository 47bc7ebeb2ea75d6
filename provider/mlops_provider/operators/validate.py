"""ValidateDataOperator: the data quality gate (Great Expectations 1.x)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from mlops_provider.exceptions import DataValidationFailed
from mlops_provider.links.report import DataQualityReportLink
from mlops_provider.operators._base import MlopsBaseOperator, quiet_library_logs

if TYPE_CHECKING:
    from airflow.sdk import Context


class ValidateDataOperator(MlopsBaseOperator):
    """Validate a snapshot against a GX suite; write the report as an artifact; gate on it.

    :param dataset: the snapshot URI, or the upstream ``ExtractOperator``'s result (``extract.output``).
    :param expectations: the suite: ``{"name": ..., "expectations": [{"type": ..., "kwargs": {...}}]}``
        or just the list of expectations.
    :param expectations_file: instead, a GX suite JSON file (any URI).
    :param on_fail: ``"fail"`` (default; raises :class:`DataValidationFailed`, no retry),
        ``"skip"`` (downstream tasks are skipped) or ``"warn"`` (log and go on).
    :return: the report: success, statistics, each failed expectation with column, expected
        kwargs, observed value, unexpected count and percent, and ``report_uri``.
    """

    template_fields: Sequence[str] = ("dataset", "expectations_file", "on_fail", "artifact_root")
    ui_color = "#fbe8d6"
    operator_extra_links = (DataQualityReportLink(),)

    def __init__(
        self,
        *,
        dataset: Any,
        expectations: Any = None,
        expectations_file: str | None = None,
        on_fail: str = "fail",
        artifact_root: str | None = None,
        **kwargs: Any,
    ):
        super().__init__(artifact_root=artifact_root, **kwargs)
        self.dataset = dataset
        self.expectations = expectations
        self.expectations_file = expectations_file
        self.on_fail = on_fail

    def execute_step(self, context: Context) -> dict[str, Any]:
        quiet_library_logs()
        from mlops_provider.core.steps.validate import ValidateParams, validate_snapshot
        from mlops_provider.links.report import artifact_url

        on_fail = self.check_on_fail(self.on_fail)
        params = self.params_for(
            ValidateParams, expectations=self.expectations, expectations_file=self.expectations_file
        )
        store = self.store()
        result = validate_snapshot(
            params, dataset=self.dataset, store=store, run=self.run_info(context), caller=self.caller
        )
        out = result.to_dict()
        self.mlops_links[DataQualityReportLink.name] = artifact_url(store, result.report_html_uri)
        self.lineage_record = result.lineage()
        return self.gate_outcome(context, out, result.passed, result.summary, on_fail, DataValidationFailed)
