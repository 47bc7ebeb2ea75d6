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
        from mlops_provider.core.datasets import read_dataframe, read_manifest
        from mlops_provider.core.quality import load_suite_file, normalize_suite, validate_dataframe

        on_fail = self.check_on_fail(self.on_fail)
        if (self.expectations is None) == (self.expectations_file is None):
            raise self.param_error("expectations / expectations_file", "exactly one of the two", None)
        suite = (
            load_suite_file(self.expectations_file)
            if self.expectations_file
            else normalize_suite(self.expectations)
        )
        store = self.store()
        uri = self.as_uri(self.dataset, "dataset")
        snap = read_manifest(store, uri)
        df = read_dataframe(store, snap.uri)
        report = validate_dataframe(df, suite, dataset_uri=snap.uri, dataset_sha256=snap.sha256)
        from mlops_provider.core.reports import write_validation_report
        from mlops_provider.links.report import artifact_url

        folder = self.run_folder(context)
        report.report_uri = store.uri(f"{folder}/validation.json")
        result = report.to_dict()
        store.write_json(f"{folder}/validation.json", result)
        result["report_html_uri"] = write_validation_report(store, folder, result)
        self.mlops_links[DataQualityReportLink.name] = artifact_url(store, result["report_html_uri"])
        self.lineage_record = {
            "inputs": [(snap.data_uri, snap.columns)],
            "step": "validate",
            "details": {
                k: result[k] for k in ("suite_name", "success", "evaluated", "unsuccessful", "summary")
            },
        }
        return self.gate_outcome(
            context, result, report.success, report.summary(), on_fail, DataValidationFailed
        )
