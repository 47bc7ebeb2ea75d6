"""Validate a dataset snapshot against a Great Expectations 1.x suite and write the report.

The step reports; it does not gate. What a failed report means (fail, skip, warn) is the caller's
choice: the operator applies ``on_fail``, a notebook reads :attr:`ValidationResult.passed`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from mlops_provider.core.params import Params, dataset_uri, parameter_error
from mlops_provider.core.steps.run import RunInfo


@dataclass(frozen=True)
class ValidateParams(Params):
    """:param expectations: the suite, ``{"name": ..., "expectations": [{"type": ..., "kwargs":
    {...}}]}``, or just the list of expectations (JSON text of either works too).
    :param expectations_file: instead, a GX suite JSON file (any URI)."""

    _step: ClassVar[str] = "validate_snapshot"

    expectations: Any = None
    expectations_file: str | None = None

    def validate(self, caller: str) -> None:
        super().validate(caller)
        if (self.expectations is None) == (self.expectations_file is None):
            raise parameter_error("expectations / expectations_file", "exactly one of the two", None, caller)

    def suite(self) -> dict[str, Any]:
        """The suite in GX's form (read from ``expectations_file`` when it is given)."""
        from mlops_provider.core.quality import load_suite_file, normalize_suite

        if self.expectations_file:
            return load_suite_file(self.expectations_file)
        return normalize_suite(self.expectations)


@dataclass
class ValidationResult:
    report: Any  # core.quality.ValidationReport
    snapshot: Any  # core.datasets.DatasetSnapshot
    report_html_uri: str

    @property
    def passed(self) -> bool:
        return bool(self.report.success)

    @property
    def summary(self) -> str:
        return self.report.summary()

    def to_dict(self) -> dict[str, Any]:
        out = self.report.to_dict()
        out["report_html_uri"] = self.report_html_uri
        return out

    def lineage(self) -> dict[str, Any]:
        report = self.report.to_dict()
        return {
            "inputs": [(self.snapshot.data_uri, self.snapshot.columns)],
            "step": "validate",
            "details": {
                k: report[k] for k in ("suite_name", "success", "evaluated", "unsuccessful", "summary")
            },
        }


def validate_snapshot(
    params: ValidateParams, *, dataset: Any, store, run: RunInfo, caller: str | None = None
) -> ValidationResult:
    """Run the suite on the snapshot ``dataset`` (its URI, or an extract result) and write
    ``validation.json`` and ``validation.html`` to the run's folder. Never raises on failed
    expectations: the result says whether they all passed."""
    from mlops_provider.core.datasets import read_dataframe, read_manifest
    from mlops_provider.core.quality import validate_dataframe
    from mlops_provider.core.reports import write_validation_report

    uri = dataset_uri(dataset, caller or ValidateParams._step)
    suite = params.suite()
    snap = read_manifest(store, uri)
    df = read_dataframe(store, snap.uri)
    report = validate_dataframe(df, suite, dataset_uri=snap.uri, dataset_sha256=snap.sha256)
    report.report_uri = store.uri(f"{run.folder}/validation.json")
    store.write_json(f"{run.folder}/validation.json", report.to_dict())
    links = run.report_links(snapshot_uri=snap.uri, store=store)
    html_uri = write_validation_report(store, run.folder, report.to_dict(), links=links)
    return ValidationResult(report, snap, html_uri)
