"""Human-readable reports for the two quality gates: self-contained HTML pages (and PNG plots).

* :func:`render_validation_html` / :func:`write_validation_report`: the data-quality gate, from a
  ``ValidationReport.to_dict()``: a PASS/FAIL banner, the statistics, and one row per expectation
  (failed ones first and highlighted) with what was expected, what was observed, how many rows
  were unexpected and examples of them.
* :func:`write_evaluation_report`: the model gate, from a ``Verdict.to_dict()`` and the scores of
  the challenger (and champion) on the evaluation data: ROC, precision-recall, confusion-matrix
  and calibration plots for a binary classifier (residual and predicted-vs-actual plots for a
  regressor), the checks, the metric comparison and an optional per-slice table.

Every value that comes from data or parameters is HTML-escaped. The evaluation page links its
PNGs by relative name (``<img src="roc.png">``), so it works both served from the artifact store
and opened from disk. Plots use ``matplotlib.figure.Figure`` with the Agg canvas directly: no
pyplot, no global backend switch. Heavy libraries are imported inside functions only, and this
module imports no Airflow.
"""

from mlops_provider.core.reports.evaluation import write_evaluation_report
from mlops_provider.core.reports.validation import (
    describe_expected,
    render_validation_html,
    write_validation_report,
)

__all__ = [
    "describe_expected",
    "render_validation_html",
    "write_evaluation_report",
    "write_validation_report",
]
