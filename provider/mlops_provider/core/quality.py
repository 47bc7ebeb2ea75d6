"""Data quality gate: a Great Expectations 1.x suite run on a snapshot -> a structured report.

A suite is declared as a dict (or a JSON file holding one) in GX's own format::

    {"name": "flights", "expectations": [
        {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "dep_time"}},
        ...]}

``expectation_type`` is accepted for ``type``, and a flat form without ``kwargs``
(``{"type": ..., "column": ...}``) too.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from typing import Any

from mlops_provider.core.errors import InvalidInputError

log = logging.getLogger(__name__)
MAX_EXAMPLES = 10


@dataclass
class ExpectationOutcome:
    expectation: str
    column: str | None
    kwargs: dict[str, Any]
    success: bool
    observed_value: Any = None
    element_count: int | None = None
    unexpected_count: int | None = None
    unexpected_percent: float | None = None
    missing_count: int | None = None
    unexpected_examples: list[Any] = field(default_factory=list)
    exception: str | None = None

    def describe(self) -> str:
        where = f" on column {self.column!r}" if self.column else ""
        if self.exception:
            return f"{self.expectation}{where}: could not be evaluated: {self.exception}"
        if self.unexpected_count is not None:
            pct = f" ({self.unexpected_percent:.2f}%)" if self.unexpected_percent is not None else ""
            ex = f"; e.g. {self.unexpected_examples[:5]}" if self.unexpected_examples else ""
            return (
                f"{self.expectation}{where}: {self.unexpected_count} of {self.element_count} rows unexpected"
                f"{pct}{ex}"
            )
        return f"{self.expectation}{where}: observed {self.observed_value!r}, expected {self.kwargs}"


@dataclass
class ValidationReport:
    suite_name: str
    dataset_uri: str | None
    dataset_sha256: str | None
    success: bool
    evaluated: int
    successful: int
    unsuccessful: int
    success_percent: float
    results: list[ExpectationOutcome]
    report_uri: str | None = None
    gx_version: str | None = None

    @property
    def failures(self) -> list[ExpectationOutcome]:
        return [r for r in self.results if not r.success]

    def summary(self) -> str:
        head = (
            f"Data quality gate {'passed' if self.success else 'FAILED'} for suite {self.suite_name!r}: "
            f"{self.successful}/{self.evaluated} expectations met"
        )
        if self.success:
            return head
        return head + ". Failed: " + "; ".join(r.describe() for r in self.failures)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["gate"] = "data"
        d["failures"] = [asdict(r) for r in self.failures]
        d["summary"] = self.summary()
        return d


def normalize_suite(suite: Any, parameter: str = "expectations") -> dict[str, Any]:
    """Turn a suite given as dict, list of expectations, or JSON text into ``{"name", "expectations"}``."""
    if isinstance(suite, str):
        try:
            suite = json.loads(suite)
        except ValueError as err:
            raise InvalidInputError(f"The {parameter!r} parameter is not valid JSON: {err}") from err
    if isinstance(suite, list):
        suite = {"name": "suite", "expectations": suite}
    if not isinstance(suite, dict) or not isinstance(suite.get("expectations"), list):
        raise InvalidInputError(
            f"The {parameter!r} parameter must be a suite {{'name': ..., 'expectations': [...]}} or a list "
            "of "
            f"expectations. Got {type(suite).__name__} instead."
        )
    out = []
    for i, e in enumerate(suite["expectations"]):
        if not isinstance(e, dict):
            raise InvalidInputError(f"Expectation #{i} in {parameter!r} must be a dict. Got {e!r} instead.")
        e = dict(e)
        etype = e.pop("type", None) or e.pop("expectation_type", None)
        if not etype:
            raise InvalidInputError(f"Expectation #{i} in {parameter!r} has no 'type'. Got {e!r}.")
        kwargs = dict(e.pop("kwargs", {}) or {})
        meta = e.pop("meta", None)
        e.pop("id", None)
        e.pop("rendered_content", None)
        kwargs.update(e)  # flat form
        item = {"type": etype, "kwargs": kwargs}
        if meta:
            item["meta"] = meta
        out.append(item)
    return {"name": str(suite.get("name") or "suite"), "expectations": out}


def load_suite_file(path: str, fs: Any = None) -> dict[str, Any]:
    from mlops_provider.core.storage import filesystem_for

    fs = fs or filesystem_for(path)
    p = path.split("://", 1)[1] if "://" in path else path
    with fs.open(p, "rb") as f:
        return normalize_suite(f.read().decode(), parameter=f"expectations file {path}")


def validate_dataframe(
    df: Any, suite: Any, *, dataset_uri: str | None = None, dataset_sha256: str | None = None
) -> ValidationReport:
    """Validate a pandas DataFrame with an ephemeral GX context; never raises on failed expectations."""
    import great_expectations as gx
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

    spec = normalize_suite(suite)
    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    ctx = gx.get_context(mode="ephemeral")
    try:
        ctx.variables.progress_bars = {"globally": False, "metric_calculations": False}
    except Exception:  # older GX: progress bars are cosmetic
        pass
    gx_suite = gx.ExpectationSuite(name=spec["name"])
    for i, e in enumerate(spec["expectations"]):
        try:
            cfg = ExpectationConfiguration(type=e["type"], kwargs=e["kwargs"], meta=e.get("meta"))
            gx_suite.add_expectation_configuration(cfg)
        except Exception as err:
            raise InvalidInputError(
                f"Expectation #{i} ({e['type']!r}, kwargs {e['kwargs']}) is not a valid Great Expectations "
                f"expectation: {err}"
            ) from err
    batch = (
        ctx.data_sources.add_pandas("mlops")
        .add_dataframe_asset("snapshot")
        .add_batch_definition_whole_dataframe("whole")
        .get_batch(batch_parameters={"dataframe": df})
    )
    result = batch.validate(
        gx_suite, result_format={"result_format": "SUMMARY", "partial_unexpected_count": MAX_EXAMPLES}
    )
    raw = result.to_json_dict()
    outcomes = []
    for r in raw["results"]:
        cfg = r["expectation_config"]
        kwargs = {k: v for k, v in cfg.get("kwargs", {}).items() if k != "batch_id"}
        res = r.get("result") or {}
        exc_msg = _exception_message(r.get("exception_info") or {})
        missing = [c for c in _columns_of(kwargs) if c not in df.columns]
        if missing:
            exc_msg = f"column(s) {missing} not in the data; it has {list(df.columns)}"
        outcomes.append(
            ExpectationOutcome(
                expectation=cfg["type"],
                column=kwargs.get("column"),
                kwargs=kwargs,
                success=bool(r["success"]),
                observed_value=res.get("observed_value"),
                element_count=res.get("element_count"),
                unexpected_count=res.get("unexpected_count"),
                unexpected_percent=res.get("unexpected_percent"),
                missing_count=res.get("missing_count"),
                unexpected_examples=list(res.get("partial_unexpected_list") or [])[:MAX_EXAMPLES],
                exception=exc_msg,
            )
        )
    stats = raw["statistics"]
    return ValidationReport(
        suite_name=spec["name"],
        dataset_uri=dataset_uri,
        dataset_sha256=dataset_sha256,
        success=bool(raw["success"]),
        evaluated=int(stats["evaluated_expectations"]),
        successful=int(stats["successful_expectations"]),
        unsuccessful=int(stats["unsuccessful_expectations"]),
        success_percent=float(stats.get("success_percent") or 0.0),
        results=outcomes,
        gx_version=gx.__version__,
    )


def _exception_message(info: dict[str, Any]) -> str | None:
    """GX reports exceptions flat ({raised_exception, exception_message}) or keyed by metric id."""
    if "raised_exception" in info:
        return info.get("exception_message") if info.get("raised_exception") else None
    for v in info.values():
        if isinstance(v, dict) and v.get("exception_message"):
            return str(v["exception_message"])
    return None


def _columns_of(kwargs: dict[str, Any]) -> list[str]:
    cols = [kwargs[k] for k in ("column", "column_A", "column_B") if isinstance(kwargs.get(k), str)]
    if isinstance(kwargs.get("column_list"), list):
        cols += [c for c in kwargs["column_list"] if isinstance(c, str)]
    return cols
