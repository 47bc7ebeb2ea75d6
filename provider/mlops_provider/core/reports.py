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

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import Any

from mlops_provider.core import html as h
from mlops_provider.core import metrics as _metrics
from mlops_provider.core.errors import InvalidInputError

MAX_CLASS_CURVES = 20

MAX_SLICES = 30
MAX_CURVE_POINTS = 1500
MAX_SCATTER_POINTS = 5000
MAX_SET_ITEMS = 20
MAX_TEXT = 400
_CHALLENGER_COLOR = "#1f77b4"
_CHAMPION_COLOR = "#ff7f0e"


def _norm_prefix(key_prefix: str) -> str:
    return str(key_prefix or "").strip("/")


def _key(prefix: str, name: str) -> str:
    return f"{prefix}/{name}" if prefix else name


# --------------------------------------------------------------------------- data-quality report
# shown in the Column cell, or not about the data
_HIDDEN_KWARGS = {
    "column",
    "column_A",
    "column_B",
    "result_format",
    "catch_exceptions",
    "meta",
    "batch_id",
    "include_config",
}


def describe_expected(expectation: str, kwargs: Mapping[str, Any] | None) -> str:
    """What an expectation asks for, readably: ``between 1 and 5000``, ``in {UA, AA}``, ``mostly >= 95%``."""
    kw = {k: v for k, v in dict(kwargs or {}).items() if k not in _HIDDEN_KWARGS}
    parts: list[str] = []
    lo, hi = kw.pop("min_value", None), kw.pop("max_value", None)
    strict_lo, strict_hi = bool(kw.pop("strict_min", False)), bool(kw.pop("strict_max", False))
    if lo is not None and hi is not None:
        parts.append(
            f"{'>' if strict_lo else '>='} {h.readable(lo)} and {'<' if strict_hi else '<='} {h.readable(hi)}"
        )
    elif lo is not None:
        parts.append(f"{'>' if strict_lo else '>='} {h.readable(lo)}")
    elif hi is not None:
        parts.append(f"{'<' if strict_hi else '<='} {h.readable(hi)}")
    if "value_set" in kw:
        vs = kw.pop("value_set")
        word = "not in" if "_not_" in expectation else "in"
        is_set = isinstance(vs, (list, tuple, set, frozenset))
        parts.append(f"{word} {h.readable_set(vs, MAX_SET_ITEMS) if is_set else h.readable(vs)}")
    if "regex" in kw:
        parts.append(f"matches /{h.readable(kw.pop('regex'))}/")
    if "regex_list" in kw:
        parts.append(f"matches any of {h.readable_set(kw.pop('regex_list'), MAX_SET_ITEMS)}")
    if "type_" in kw:
        parts.append(f"type {h.readable(kw.pop('type_'))}")
    if "type_list" in kw:
        parts.append(f"type in {h.readable_set(kw.pop('type_list'), MAX_SET_ITEMS)}")
    if "value" in kw:
        parts.append(f"= {h.readable(kw.pop('value'))}")
    if "column_list" in kw:
        parts.append(f"columns {h.readable_set(kw.pop('column_list'), MAX_SET_ITEMS)}")
    mostly = kw.pop("mostly", None)
    for k in sorted(kw):
        parts.append(f"{k}={h.readable(kw[k])}")
    if mostly is not None and mostly != 1:
        try:
            parts.append(f"(mostly >= {float(mostly) * 100:g}%)")
        except (TypeError, ValueError):
            parts.append(f"(mostly {h.readable(mostly)})")
    if not parts:
        return "\u2014"
    return "; ".join(parts)


def _examples_html(examples: Any) -> str:
    if not examples:
        return ""
    items = list(examples) if isinstance(examples, (list, tuple)) else [examples]
    return " ".join(f"<code>{h.escape(h.short(h.readable(x), 80))}</code>" for x in items)


def _expectation_row(r: Mapping[str, Any]) -> str:
    ok = bool(r.get("success"))
    status = "PASS" if ok else "FAIL"
    observed = ""
    if r.get("exception"):
        observed = f'<span class="err">error: {h.escape(h.short(str(r["exception"]), MAX_TEXT))}</span>'
    elif r.get("observed_value") is not None:
        observed = h.escape(h.readable(r.get("observed_value")))
    pct = r.get("unexpected_percent")
    count = r.get("unexpected_count")
    elements = r.get("element_count")
    count_cell = h.number(count)
    if count is not None and elements is not None:
        count_cell = f"{h.number(count)} / {h.number(elements)}"
    col = r.get("column")
    table_level = '<span class="muted">(table)</span>'
    if col is None:
        kw = r.get("kwargs") or {}
        pair = [str(kw[k]) for k in ("column_A", "column_B") if kw.get(k) is not None]
        col = ", ".join(pair) if pair else None
    pct_text = h.number(pct, 2) + "%" if pct is not None and not h.is_nan(h.plain(pct)) else ""
    return (
        f'<tr class="{"pass" if ok else "fail"}">'
        f'<td class="status">{status}</td>'
        f"<td><code>{h.escape(r.get('expectation'))}</code></td>"
        f"<td>{h.escape(col) if col is not None else table_level}</td>"
        f"<td>{h.escape(describe_expected(str(r.get('expectation') or ''), r.get('kwargs')))}</td>"
        f"<td>{observed}</td>"
        f'<td class="num">{h.escape(count_cell)}</td>'
        f'<td class="num">{h.escape(pct_text)}</td>'
        f'<td class="num">{h.escape(h.number(r.get("missing_count")))}</td>'
        f"<td>{_examples_html(r.get('unexpected_examples'))}</td>"
        "</tr>"
    )


def render_validation_html(report: Mapping[str, Any]) -> str:
    """A self-contained HTML5 page for a data-quality report (``ValidationReport.to_dict()``)."""
    ok = bool(report.get("success"))
    suite = report.get("suite_name") or "suite"
    results = list(report.get("results") or [])
    ordered = [r for r in results if not r.get("success")] + [r for r in results if r.get("success")]
    pct = report.get("success_percent")
    banner = (
        f'<div class="banner {"pass" if ok else "fail"}" id="verdict">'
        f'<div class="verdict">{"PASS" if ok else "FAIL"}</div>'
        f"<p>Data quality gate {'passed' if ok else 'failed'} for suite <strong>{h.escape(suite)}</strong>: "
        f"{h.escape(report.get('successful'))} of "
        f"{h.escape(report.get('evaluated'))} expectations met.</p></div>"
    )
    stats = h.stats(
        [
            ("Suite", h.escape(suite)),
            (
                "Dataset",
                f"<code>{h.escape(report.get('dataset_uri'))}</code>"
                if report.get("dataset_uri")
                else "\u2014",
            ),
            (
                "Dataset sha256",
                f"<code>{h.escape(report.get('dataset_sha256'))}</code>"
                if report.get("dataset_sha256")
                else "\u2014",
            ),
            ("Evaluated", h.escape(report.get("evaluated"))),
            ("Successful", h.escape(report.get("successful"))),
            ("Unsuccessful", h.escape(report.get("unsuccessful"))),
            ("Success", h.escape(f"{float(pct):.1f}%") if isinstance(pct, (int, float)) else "\u2014"),
        ]
        + ([("Great Expectations", h.escape(report["gx_version"]))] if report.get("gx_version") else [])
    )
    table = h.table(
        [
            "Status",
            "Expectation",
            "Column",
            "Expected",
            "Observed",
            "Unexpected",
            "Unexpected %",
            "Missing",
            "Examples",
        ],
        [_expectation_row(r) for r in ordered],
    )
    summary = f"<h2>Summary</h2><p>{h.escape(report.get('summary'))}</p>" if report.get("summary") else ""
    body = (
        f"<h1>Data quality report: {h.escape(suite)}</h1>\n{banner}\n{stats}\n{summary}\n"
        f"<h2>Expectations ({len(results)})</h2>\n{table}"
    )
    return h.document(f"Data quality: {suite} \u2014 {'PASS' if ok else 'FAIL'}", body, body_class="report")


def write_validation_report(store, key_prefix: str, report: Mapping[str, Any]) -> str:
    """Write ``<key_prefix>/validation.html`` atomically through ``store``; returns its URI."""
    key = _key(_norm_prefix(key_prefix), "validation.html")
    store.write_bytes(key, render_validation_html(report).encode("utf-8"))
    return store.uri(key)


# --------------------------------------------------------------------------- evaluation report: data prep
def _as_array(values: Any, name: str):
    import numpy as np

    if values is None:
        return None
    if hasattr(values, "to_numpy"):
        arr = values.to_numpy()
    else:
        arr = np.asarray(values)
    if arr.ndim != 1:
        arr = arr.reshape(-1) if arr.ndim == 2 and 1 in arr.shape else arr
    if arr.ndim != 1:
        raise InvalidInputError(f"{name} must be one-dimensional. Got shape {arr.shape} instead.")
    return arr


def _infer_task(verdict: Mapping[str, Any], y, positive_label: Any) -> str:
    """``"classification"`` (binary), ``"multiclass"`` or ``"regression"``: the verdict's ``task``
    when it has one, else guessed from its metric names and the labels."""
    import numpy as np

    task = verdict.get("task")
    if task in ("binary", "classification"):
        return "classification"
    if task in ("multiclass", "regression"):
        return task
    ch = (verdict.get("metrics") or {}).get("challenger") or {}
    names = [verdict.get("compare_metric"), *ch]
    for name in names:
        if name in (None, "rows"):
            continue
        try:
            metric = _metrics.resolve(name)
        except ValueError:
            continue
        return "regression" if _metrics.fits(metric, "classification") is not None else "classification"
    if positive_label is None:
        return "regression"
    if np.issubdtype(y.dtype, np.floating):
        vals = np.unique(y[~np.isnan(y)])
        if len(vals) > 2 or (len(vals) and not np.isin(vals, [0.0, 1.0]).all()):
            return "regression"
    return "classification"


def _higher_is_better(metric: str, verdict: Mapping[str, Any] | None = None) -> bool | None:
    """The metric's direction: from the verdict's ``directions``, else from its scorer; None if unknown."""
    direction = ((verdict or {}).get("directions") or {}).get(metric)
    if direction in ("higher", "lower"):
        return direction == "higher"
    try:
        return _metrics.resolve(metric).higher_is_better
    except ValueError:
        return None


def _thin(*arrays, max_points: int = MAX_CURVE_POINTS):
    """Every array downsampled to at most ``max_points`` evenly spaced indices (first and last kept)."""
    import numpy as np

    n = len(arrays[0])
    if n <= max_points:
        return arrays
    idx = np.unique(np.linspace(0, n - 1, max_points).round().astype(int))
    return tuple(a[idx] for a in arrays)


def _new_figure(width: float = 6.4, height: float = 5.0):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    return buf.getvalue()


def _note(ax, text: str) -> None:
    ax.text(
        0.5,
        0.5,
        text,
        ha="center",
        va="center",
        transform=ax.transAxes,
        fontsize=10,
        color="#c5221f",
        wrap=True,
    )


def _models(challenger, champion) -> list[tuple[str, Any, str]]:
    out = [("challenger", challenger, _CHALLENGER_COLOR)]
    if champion is not None:
        out.append(("champion", champion, _CHAMPION_COLOR))
    return out


# --------------------------------------------------------------------------- classification plots
def _roc_png(y_pos, models, two_classes: bool) -> bytes:
    from sklearn.metrics import auc, roc_curve

    fig = _new_figure()
    ax = fig.add_subplot()
    ax.plot([0, 1], [0, 1], linestyle="--", color="#9aa0a6", linewidth=1, label="chance")
    if two_classes:
        for name, score, color in models:
            fpr, tpr, _ = roc_curve(y_pos, score)
            area = auc(fpr, tpr)
            fpr, tpr = _thin(fpr, tpr)
            ax.plot(fpr, tpr, color=color, linewidth=1.8, label=f"{name} (AUC = {area:.4f})")
    else:
        _note(ax, "ROC undefined: the evaluation data has a single class")
    ax.set(
        xlim=(0, 1),
        ylim=(0, 1.01),
        xlabel="False positive rate",
        ylabel="True positive rate",
        title="ROC curve",
    )
    ax.legend(loc="lower right")
    ax.grid(alpha=0.3)
    return _png(fig)


def _pr_png(y_pos, models, two_classes: bool) -> bytes:
    from sklearn.metrics import average_precision_score, precision_recall_curve

    fig = _new_figure()
    ax = fig.add_subplot()
    base = float(y_pos.mean()) if len(y_pos) else 0.0
    ax.axhline(base, linestyle="--", color="#9aa0a6", linewidth=1, label=f"positive rate ({base:.3f})")
    if two_classes:
        for name, score, color in models:
            precision, recall, _ = precision_recall_curve(y_pos, score)
            ap = average_precision_score(y_pos, score)
            recall, precision = _thin(recall, precision)
            ax.step(
                recall, precision, where="post", color=color, linewidth=1.8, label=f"{name} (AP = {ap:.4f})"
            )
    else:
        _note(ax, "Precision-recall undefined: the evaluation data has a single class")
    ax.set(xlim=(0, 1), ylim=(0, 1.01), xlabel="Recall", ylabel="Precision", title="Precision-recall curve")
    ax.legend(loc="lower left")
    ax.grid(alpha=0.3)
    return _png(fig)


def _confusion_png(y_pos, models, positive_label: Any) -> bytes:
    import numpy as np

    fig = _new_figure(5.0 * len(models), 4.6)
    axes = fig.subplots(1, len(models), squeeze=False)[0]
    labels = ["negative", f"positive ({h.readable(positive_label)})"]
    n = max(len(y_pos), 1)
    for ax, (name, score, _color) in zip(axes, models, strict=True):
        pred = score >= 0.5
        cm = np.array(
            [[np.sum(~y_pos & ~pred), np.sum(~y_pos & pred)], [np.sum(y_pos & ~pred), np.sum(y_pos & pred)]]
        )
        ax.imshow(cm, cmap="Blues", vmin=0)
        top = cm.max() or 1
        for i in range(2):
            for j in range(2):
                ax.text(
                    j,
                    i,
                    f"{cm[i, j]:,}\n({100 * cm[i, j] / n:.1f}%)",
                    ha="center",
                    va="center",
                    color="white" if cm[i, j] > top / 2 else "#1d2330",
                    fontsize=11,
                )
        ax.set_xticks([0, 1], labels)
        ax.set_yticks([0, 1], labels, rotation=90, va="center")
        ax.set(xlabel="Predicted (threshold 0.5)", ylabel="Actual", title=f"{name.capitalize()}")
    return _png(fig)


def _calibration_png(y_pos, models, two_classes: bool) -> bytes:
    import numpy as np
    from sklearn.calibration import calibration_curve

    fig = _new_figure(6.4, 6.0)
    ax, hist = fig.subplots(2, 1, sharex=True, height_ratios=[3, 1])
    ax.plot([0, 1], [0, 1], linestyle="--", color="#9aa0a6", linewidth=1, label="perfectly calibrated")
    probabilities = all(len(s) == 0 or (np.min(s) >= 0 and np.max(s) <= 1) for _, s, _ in models)
    if not probabilities:
        _note(ax, "Scores are not probabilities in [0, 1]; no reliability curve")
    elif not two_classes:
        _note(ax, "Reliability curve undefined: the evaluation data has a single class")
    else:
        for name, score, color in models:
            frac_pos, mean_pred = calibration_curve(y_pos, score, n_bins=10, strategy="uniform")
            ax.plot(mean_pred, frac_pos, marker="o", color=color, linewidth=1.8, label=name)
    ax.set(
        xlim=(0, 1), ylim=(0, 1.01), ylabel="Observed positive rate", title="Calibration (reliability curve)"
    )
    ax.legend(loc="upper left")
    ax.grid(alpha=0.3)
    if probabilities:
        bins = np.linspace(0, 1, 41)
        for name, score, color in models:
            hist.hist(score, bins=bins, histtype="step", color=color, linewidth=1.5, label=name)
    hist.set(xlabel="Predicted probability of the positive class", ylabel="Rows")
    return _png(fig)


# --------------------------------------------------------------------------- multiclass plots
def _class_label(c: Any, limit: int = 24) -> str:
    text = h.readable(c)
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def _confusion_multiclass_png(y, pred, classes, name: str) -> bytes:
    """The N x N confusion matrix of one model: counts (left) and row-normalised recall (right);
    sized and lettered so 10+ classes stay readable (cell numbers up to 15 classes)."""
    import numpy as np
    from sklearn.metrics import confusion_matrix

    k = len(classes)
    cm = confusion_matrix(y, pred, labels=list(classes))
    norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    side = max(4.6, 0.42 * k + 2.4)
    fig = _new_figure(2 * side + 0.8, side + 0.6)
    axes = fig.subplots(1, 2)
    labels = [_class_label(c) for c in classes]
    font = 10 if k <= 6 else 8 if k <= 10 else 6.5
    for ax, matrix, what, fmt in (
        (axes[0], cm, "counts", "{:,}"),
        (axes[1], norm, "share of the true class", "{:.2f}"),
    ):
        im = ax.imshow(matrix, cmap="Blues", vmin=0, vmax=matrix.max() or 1)
        if k <= 15:
            top = matrix.max() or 1
            for i in range(k):
                for j in range(k):
                    ax.text(
                        j,
                        i,
                        fmt.format(matrix[i, j]),
                        ha="center",
                        va="center",
                        fontsize=font,
                        color="white" if matrix[i, j] > top / 2 else "#1d2330",
                    )
        ax.set_xticks(
            range(k), labels, rotation=60 if k > 4 else 0, ha="right" if k > 4 else "center", fontsize=font
        )
        ax.set_yticks(range(k), labels, fontsize=font)
        ax.set(xlabel="Predicted", ylabel="Actual", title=f"{name.capitalize()}: {what}")
        fig.colorbar(im, ax=ax, shrink=0.8)
    return _png(fig)


def _one_vs_rest_png(y, proba, classes, name: str, kind: str) -> bytes:
    """One-vs-rest ROC (``kind="roc"``) or precision-recall curves of one model, a curve per class
    (the ``MAX_CLASS_CURVES`` most frequent), with each class's AUC / AP in the legend."""
    import numpy as np
    from sklearn.metrics import auc, average_precision_score, precision_recall_curve, roc_curve

    fig = _new_figure(7.2, 5.6)
    ax = fig.add_subplot()
    counts = [(int(np.sum(y == c)), j) for j, c in enumerate(classes)]
    shown = [j for n, j in sorted(counts, key=lambda t: (-t[0], t[1]))[:MAX_CLASS_CURVES] if n > 0]
    if kind == "roc":
        ax.plot([0, 1], [0, 1], linestyle="--", color="#9aa0a6", linewidth=1)
    for j in shown:
        yt = np.asarray(y == classes[j])
        if yt.all():
            continue
        if kind == "roc":
            fpr, tpr, _ = roc_curve(yt, proba[:, j])
            area = auc(fpr, tpr)
            fpr, tpr = _thin(fpr, tpr)
            ax.plot(fpr, tpr, linewidth=1.4, label=f"{_class_label(classes[j])} (AUC {area:.3f})")
        else:
            precision, recall, _ = precision_recall_curve(yt, proba[:, j])
            recall, precision = _thin(recall, precision)
            ax.step(
                recall,
                precision,
                where="post",
                linewidth=1.4,
                label=f"{_class_label(classes[j])} (AP {average_precision_score(yt, proba[:, j]):.3f})",
            )
    if kind == "roc":
        ax.set(
            xlim=(0, 1),
            ylim=(0, 1.01),
            xlabel="False positive rate",
            ylabel="True positive rate",
            title=f"{name.capitalize()}: one-vs-rest ROC curves",
        )
    else:
        ax.set(
            xlim=(0, 1),
            ylim=(0, 1.01),
            xlabel="Recall",
            ylabel="Precision",
            title=f"{name.capitalize()}: one-vs-rest precision-recall curves",
        )
    ax.legend(loc="lower right" if kind == "roc" else "lower left", fontsize=7 if len(shown) > 8 else 9)
    ax.grid(alpha=0.3)
    return _png(fig)


def _per_class(y, models_mc, classes) -> list[dict[str, Any]]:
    """Precision, recall, F1 and support per class, for each model."""
    from sklearn.metrics import precision_recall_fscore_support

    rows = [{"class": h.plain(c)} for c in classes]
    for name, pred, _proba in models_mc:
        p, r, f, n = precision_recall_fscore_support(y, pred, labels=list(classes), zero_division=0)
        for i, row in enumerate(rows):
            row["support"] = int(n[i])
            row.update(
                {
                    f"{name}_precision": round(float(p[i]), 6),
                    f"{name}_recall": round(float(r[i]), 6),
                    f"{name}_f1": round(float(f[i]), 6),
                }
            )
    return rows


def _per_class_html(rows: list[dict[str, Any]], has_champion: bool) -> str:
    models = ["challenger"] + (["champion"] if has_champion else [])
    headers = ["class", "support"] + [f"{m} {k}" for m in models for k in ("precision", "recall", "F1")]
    body = []
    for r in rows:
        cells = [f"<td><code>{h.escape(r['class'])}</code></td>", h.number_cell(r["support"])]
        cells += [h.number_cell(r.get(f"{m}_{k}")) for m in models for k in ("precision", "recall", "f1")]
        body.append(f"<tr>{''.join(cells)}</tr>")
    return f'<h2>Per class</h2>\n<div id="per-class">{h.table(headers, body)}</div>\n'


def _multiclass_slice_rows(y, models_mc, classes, slices, metric: str) -> tuple[list[dict[str, Any]], int]:
    """Per-slice accuracy and the gate's multiclass metric, for the ``MAX_SLICES`` largest slices."""
    import warnings

    import numpy as np

    m = _metrics.resolve(metric)
    groups, total = _largest_slices(slices)
    rows = []
    for mask, row in groups:
        row["classes"] = int(len(np.unique(y[mask])))
        for name, pred, proba in models_mc:
            row[f"{name}_accuracy"] = round(float(np.mean(pred[mask] == y[mask])), 6)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                try:
                    v = _metrics.score(
                        m, "multiclass", y[mask], pred[mask], proba[mask], np.asarray(classes, dtype=object)
                    )
                except ValueError:
                    v = float("nan")
            row[f"{name}_{metric}"] = None if v != v else round(v, 6)
        rows.append(row)
    return rows, total


def _multiclass_slice_table(rows, total: int, column: str | None, metric: str, has_champion: bool) -> str:
    models = ["challenger"] + (["champion"] if has_champion else [])
    names = ["accuracy", metric]
    headers = [column or "slice", "rows", "classes"] + [f"{m} {k}" for m in models for k in names]
    body = []
    for r in rows:
        label = (
            f"<code>{h.escape(r['value'])}</code>"
            if r["value"] is not None
            else '<span class="muted">(missing)</span>'
        )
        cells = [f"<td>{label}</td>", h.number_cell(r["rows"]), h.number_cell(r["classes"])]
        cells += [h.number_cell(r.get(f"{m}_{k}")) for m in models for k in names]
        body.append(f"<tr>{''.join(cells)}</tr>")
    shown = f"{len(rows)} largest of {total} slices" if total > len(rows) else f"{total} slices"
    note = f" {metric} is blank where a slice lacks classes it needs."
    return f'<p class="muted">{h.escape(shown)}, by rows.{h.escape(note)}</p>' + h.table(headers, body)


# --------------------------------------------------------------------------- regression plots
def _scatter_sample(n: int):
    import numpy as np

    if n <= MAX_SCATTER_POINTS:
        return np.arange(n)
    return np.sort(np.random.default_rng(0).choice(n, MAX_SCATTER_POINTS, replace=False))


def _residuals_png(y, models) -> bytes:
    fig = _new_figure()
    ax = fig.add_subplot()
    idx = _scatter_sample(len(y))
    for name, pred, color in models:
        ax.scatter(pred[idx], (y - pred)[idx], s=6, alpha=0.35, color=color, label=name, linewidths=0)
    ax.axhline(0, color="#5f6368", linewidth=1)
    note = f" (sample of {len(idx):,} of {len(y):,})" if len(idx) < len(y) else ""
    ax.set(xlabel="Predicted", ylabel="Residual (actual - predicted)", title="Residuals" + note)
    ax.legend(loc="best", markerscale=3)
    ax.grid(alpha=0.3)
    return _png(fig)


def _pred_vs_actual_png(y, models) -> bytes:
    import numpy as np

    fig = _new_figure()
    ax = fig.add_subplot()
    idx = _scatter_sample(len(y))
    for name, pred, color in models:
        ax.scatter(y[idx], pred[idx], s=6, alpha=0.35, color=color, label=name, linewidths=0)
    if len(y):
        lo = float(np.nanmin([np.nanmin(y)] + [np.nanmin(p) for _, p, _ in models]))
        hi = float(np.nanmax([np.nanmax(y)] + [np.nanmax(p) for _, p, _ in models]))
        ax.plot([lo, hi], [lo, hi], linestyle="--", color="#5f6368", linewidth=1, label="perfect")
    note = f" (sample of {len(idx):,} of {len(y):,})" if len(idx) < len(y) else ""
    ax.set(xlabel="Actual", ylabel="Predicted", title="Predicted vs actual" + note)
    ax.legend(loc="best", markerscale=3)
    ax.grid(alpha=0.3)
    return _png(fig)


# --------------------------------------------------------------------------- slices
def _largest_slices(slices) -> tuple[list[tuple[Any, dict[str, Any]]], int]:
    """The ``MAX_SLICES`` largest slices as ``(row mask, {"value", "rows"})``, and how many there are."""
    import numpy as np
    import pandas as pd

    codes, uniques = pd.factorize(pd.Series(slices, dtype=object), sort=False, use_na_sentinel=False)
    counts = np.bincount(codes, minlength=len(uniques))
    order = sorted(range(len(uniques)), key=lambda i: (-counts[i], str(uniques[i])))[:MAX_SLICES]
    out = []
    for i in order:
        value = h.plain(uniques[i])
        out.append((codes == i, {"value": None if pd.isna(value) else value, "rows": int(counts[i])}))
    return out, len(uniques)


def _slice_rows(task: str, y, challenger, champion, slices, y_pos=None) -> tuple[list[dict[str, Any]], int]:
    """Per-slice metrics for the ``MAX_SLICES`` largest slices; returns (rows, number of slices)."""
    import numpy as np
    from sklearn.metrics import mean_absolute_error, mean_squared_error, roc_auc_score

    groups, total = _largest_slices(slices)
    rows = []
    for mask, row in groups:
        if task == "classification":
            yp = y_pos[mask]
            row["positive_rate"] = round(float(yp.mean()), 6)
            both = bool(yp.any() and not yp.all())
            for name, score in (("challenger", challenger), ("champion", champion)):
                if score is None:
                    continue
                s = score[mask]
                row[f"{name}_roc_auc"] = round(float(roc_auc_score(yp, s)), 6) if both else None
                row[f"{name}_accuracy"] = round(float(np.mean((s >= 0.5) == yp)), 6)
        else:
            yt = y[mask]
            row["mean_actual"] = round(float(np.mean(yt)), 6)
            for name, pred in (("challenger", challenger), ("champion", champion)):
                if pred is None:
                    continue
                p = pred[mask]
                row[f"{name}_rmse"] = round(float(np.sqrt(mean_squared_error(yt, p))), 6)
                row[f"{name}_mae"] = round(float(mean_absolute_error(yt, p)), 6)
        rows.append(row)
    return rows, total


def _slice_table(
    task: str, rows: list[dict[str, Any]], total: int, column: str | None, has_champion: bool
) -> str:
    metrics = ["roc_auc", "accuracy"] if task == "classification" else ["rmse", "mae"]
    first = "positive_rate" if task == "classification" else "mean_actual"
    headers = [column or "slice", "rows", "positive rate" if task == "classification" else "mean actual"]
    models = ["challenger"] + (["champion"] if has_champion else [])
    headers += [f"{m} {k}" for m in models for k in metrics]
    body = []
    for r in rows:
        label = (
            f"<code>{h.escape(r['value'])}</code>"
            if r["value"] is not None
            else '<span class="muted">(missing)</span>'
        )
        cells = [f"<td>{label}</td>", h.number_cell(r["rows"]), h.number_cell(r.get(first))]
        cells += [h.number_cell(r.get(f"{m}_{k}")) for m in models for k in metrics]
        body.append(f"<tr>{''.join(cells)}</tr>")
    shown = f"{len(rows)} largest of {total} slices" if total > len(rows) else f"{total} slices"
    note = " ROC AUC is blank for a slice with a single class." if task == "classification" else ""
    return f'<p class="muted">{h.escape(shown)}, by rows.{h.escape(note)}</p>' + h.table(headers, body)


# --------------------------------------------------------------------------- evaluation report: HTML
def _delta_class(metric: str, delta: Any, verdict: Mapping[str, Any] | None = None) -> str:
    d = h.plain(delta)
    if metric == "rows" or not isinstance(d, (int, float)) or h.is_nan(d) or d == 0:
        return ""
    higher = _higher_is_better(metric, verdict)
    if higher is None:
        return ""
    return "better" if (d > 0) == higher else "worse"


def _checks_table(checks: list[Mapping[str, Any]], verdict: Mapping[str, Any] | None = None) -> str:
    rows = []
    for c in checks:
        ok = bool(c.get("passed"))
        metric = str(c.get("metric"))
        ci = ""
        if c.get("ci_low") is not None and c.get("ci_high") is not None:
            ci = (
                f' title="improvement {h.number(c.get("delta"), signed=True)}, interval '
                f'[{h.number(c["ci_low"], signed=True)}, {h.number(c["ci_high"], signed=True)}]"'
            )
        rows.append(
            f'<tr class="{"pass" if ok else "fail"}">'
            f"<td>{h.escape(c.get('kind'))}</td><td><code>{h.escape(metric)}</code></td><td>{h.escape(c.get('op'))}</td>"
            f"{h.number_cell(c.get('threshold'))}{h.number_cell(c.get('challenger'))}{h.number_cell(c.get('champion'))}"
            f"{h.number_cell(c.get('delta'), signed=True, cls=_delta_class(metric, c.get('delta'), verdict))}"
            f'<td class="status"{ci}>{"passed" if ok else "FAILED"}</td></tr>'
        )
    return h.table(["kind", "metric", "op", "threshold", "challenger", "champion", "delta", "passed"], rows)


def _metrics_table(metrics: Mapping[str, Mapping[str, Any]], verdict: Mapping[str, Any] | None = None) -> str:
    ch = dict(metrics.get("challenger") or {})
    cm = metrics.get("champion")
    cm = dict(cm) if cm else None
    names = list(ch) + [k for k in (cm or {}) if k not in ch]
    rows = []
    for name in names:
        a = h.plain(ch.get(name))
        b = h.plain(cm.get(name)) if cm else None
        delta = None
        if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
            delta = a - b if isinstance(a, int) and isinstance(b, int) else round(float(a) - float(b), 6)
        higher = None if name == "rows" else _higher_is_better(name, verdict)
        hint = "" if higher is None else f' title="{"higher" if higher else "lower"} is better"'
        rows.append(
            f"<tr><td{hint}><code>{h.escape(name)}</code></td>"
            f"{h.number_cell(b) if cm is not None else '<td></td>'}"
            f"{h.number_cell(a)}"
            f"{h.number_cell(delta, signed=True, cls=_delta_class(name, delta, verdict))}</tr>"
        )
    return h.table(["metric", "champion", "challenger", "delta (challenger - champion)"], rows)


def _comparison_html(verdict: Mapping[str, Any]) -> str:
    """The champion comparison: improvement, its confidence interval and the promotion rule."""
    c = verdict.get("comparison")
    if not c:
        return ""
    method = {
        "delong": "DeLong's method (paired ROC AUC difference)",
        "paired_bootstrap": f"paired bootstrap, {c.get('resamples')} resamples, seed {c.get('seed')}",
    }.get(c.get("method"), str(c.get("method")))
    rule = verdict.get("promote_if") or "better"
    need = h.number(float(verdict.get("min_improvement") or 0.0))
    rule_text = (
        f"the improvement must exceed {need}"
        if rule == "better"
        else f"the lower end of the interval must exceed {need}"
    )
    info = [
        ("Metric", f"<code>{h.escape(c.get('metric'))}</code>"),
        ("Improvement (challenger over champion)", h.escape(h.number(c.get("improvement"), signed=True))),
        (
            f"{float(c.get('confidence') or 0.95):.0%} interval",
            h.escape(
                f"[{h.number(c.get('ci_low'), signed=True)}, {h.number(c.get('ci_high'), signed=True)}]"
            ),
        ),
        ("Method", h.escape(method)),
        ("Promotion rule", f"<code>{h.escape(rule)}</code>: {h.escape(rule_text)}"),
    ]
    return f'<h2>Challenger vs champion</h2>\n<div id="comparison">{h.stats(info)}</div>\n'


_CAPTIONS = {
    "confusion_champion.png": "Champion: confusion matrix",
    "roc_champion.png": "Champion: one-vs-rest ROC curves",
    "pr_champion.png": "Champion: one-vs-rest precision-recall curves",
    "roc.png": "ROC curve",
    "pr.png": "Precision-recall curve",
    "confusion.png": "Confusion matrix at threshold 0.5",
    "calibration.png": "Calibration (reliability) and score distribution",
    "residuals.png": "Residuals vs predicted",
    "predicted_vs_actual.png": "Predicted vs actual",
}


def _render_evaluation_html(
    verdict: Mapping[str, Any],
    *,
    title: str,
    task: str,
    rows: int,
    images: list[str],
    slice_html: str,
    slice_column: str | None,
    class_html: str = "",
) -> str:
    ok = bool(verdict.get("passed"))
    decision = verdict.get("decision") or ("promote" if ok else "reject")
    banner = (
        f'<div class="banner {"pass" if ok else "fail"}" id="verdict">'
        f'<div class="verdict">{"PASSED" if ok else "FAILED"} \u2014 {h.escape(str(decision).upper())}</div>'
        f"<p>{h.escape(verdict.get('reason'))}</p></div>"
    )
    ds = verdict.get("eval_dataset") or {}
    champion_version = verdict.get("champion_version")
    info = [
        ("Model", f"<code>{h.escape(verdict.get('model'))}</code>"),
        ("Task", h.escape(task if task != "classification" else "binary classification")),
        (
            "Champion",
            h.escape(f"v{champion_version}") if champion_version is not None else "none (first version)",
        ),
        ("Compare metric", f"<code>{h.escape(verdict.get('compare_metric'))}</code>"),
        ("Promotion rule", f"<code>{h.escape(verdict.get('promote_if') or 'better')}</code>"),
        ("Bootstrap policy", h.escape(verdict.get("bootstrap"))),
        ("Evaluation rows", h.escape(f"{rows:,}")),
    ]
    for k in ("uri", "sha256", "rows"):
        if ds.get(k) is not None:
            info.append((f"Evaluation dataset {k}", f"<code>{h.escape(ds[k])}</code>"))
    figures = "".join(
        f'<figure><img src="{h.escape(name)}" alt="{h.escape(_CAPTIONS.get(name, name))}" loading="lazy">'
        f"<figcaption>{h.escape(_CAPTIONS.get(name, name))}</figcaption></figure>"
        for name in images
    )
    checks = list(verdict.get("checks") or [])
    checks_html = (
        _checks_table(checks, verdict) if checks else '<p class="muted">No checks were configured.</p>'
    )
    body = (
        f"<h1>{h.escape(title)}</h1>\n{banner}\n{h.stats(info)}\n"
        f"<h2>Checks</h2>\n{checks_html}\n"
        f"{_comparison_html(verdict)}"
        f"<h2>Metrics</h2>\n{_metrics_table(verdict.get('metrics') or {}, verdict)}\n"
        f"{class_html}"
        f'<h2>Plots</h2>\n<div class="plots">{figures}</div>\n'
    )
    if slice_html:
        body += f"<h2>By {h.escape(slice_column or 'slice')}</h2>\n{slice_html}\n"
    if verdict.get("summary"):
        body += f'<h2>Summary</h2>\n<p class="muted">{h.escape(verdict["summary"])}</p>\n'
    return h.document(title, body, body_class="report")


def _plain_text():
    """Labels are data (class values, slice names): matplotlib must not read ``$...$`` in them as math."""
    import matplotlib

    return matplotlib.rc_context({"text.parse_math": False, "text.usetex": False})


def _plots(task: str, y, models, positive_label: Any) -> tuple[dict[str, bytes], Any]:
    import numpy as np

    pngs: dict[str, bytes] = {}
    y_pos = None
    if task == "classification":
        y_pos = np.asarray(y == positive_label, dtype=bool)
        if not y_pos.any() and positive_label is not None and y.dtype == object:
            y_pos = np.asarray([str(v) == str(positive_label) for v in y], dtype=bool)
        two = bool(y_pos.any() and not y_pos.all())
        pngs["roc.png"] = _roc_png(y_pos, models, two)
        pngs["pr.png"] = _pr_png(y_pos, models, two)
        pngs["confusion.png"] = _confusion_png(y_pos, models, positive_label)
        pngs["calibration.png"] = _calibration_png(y_pos, models, two)
    else:
        pngs["residuals.png"] = _residuals_png(y, models)
        pngs["predicted_vs_actual.png"] = _pred_vs_actual_png(y, models)
    return pngs, y_pos


def write_evaluation_report(
    store,
    key_prefix: str,
    *,
    verdict: Mapping[str, Any],
    y_true,
    challenger_score=None,
    champion_score=None,
    slice_values=None,
    slice_column: str | None = None,
    positive_label: Any = 1,
    title: str | None = None,
    challenger: Any = None,
    champion: Any = None,
) -> dict[str, Any]:
    """Write the model-gate report under ``key_prefix``: PNG plots, then ``evaluation.html`` (last).

    ``verdict`` is a ``Verdict.to_dict()``. The models' outputs come either as ``challenger`` /
    ``champion`` (:class:`~mlops_provider.core.modeling.Predictions`) or, for a binary classifier or
    a regressor, as ``challenger_score`` / ``champion_score`` (P(``positive_label``) per row of
    ``y_true``, or the predictions). A multiclass report has N x N confusion matrices (counts and
    normalised), one-vs-rest ROC and precision-recall curves, a per-class table and per-slice
    accuracy and compare metric. Rows whose label or a score is missing are left out. Returns
    ``{"html_uri", "images": {name: uri}, "slices": [...], "per_class": [...]}``.
    """
    import numpy as np
    import pandas as pd

    prefix = _norm_prefix(key_prefix)
    if challenger is not None and challenger.proba is not None and len(challenger.classes) > 2:
        return _write_multiclass_report(
            store,
            prefix,
            verdict=verdict,
            y_true=y_true,
            challenger=challenger,
            champion=champion,
            slice_values=slice_values,
            slice_column=slice_column,
            title=title,
        )
    if challenger is not None:
        challenger_score = challenger.score
        champion_score = champion.score if champion is not None else None
    y = _as_array(y_true, "y_true")
    ch = _as_array(challenger_score, "challenger_score")
    cm = _as_array(champion_score, "champion_score")
    sl = _as_array(slice_values, "slice_values")
    for name, arr in (("challenger_score", ch), ("champion_score", cm), ("slice_values", sl)):
        if arr is not None and len(arr) != len(y):
            raise InvalidInputError(
                f"{name} has {len(arr)} values but y_true has {len(y)}; they must describe the same rows."
            )
    ch = ch.astype("float64")
    cm = cm.astype("float64") if cm is not None else None
    task = _infer_task(verdict, y, positive_label)
    keep = ~pd.isna(y) & np.isfinite(ch)
    if cm is not None:
        keep &= np.isfinite(cm)
    if not keep.all():
        y, ch = y[keep], ch[keep]
        cm = cm[keep] if cm is not None else None
        sl = sl[keep] if sl is not None else None
    models = _models(ch, cm)

    if task != "classification":
        y = y.astype("float64")
    with _plain_text():
        pngs, y_pos = _plots(task, y, models, positive_label)

    slices: list[dict[str, Any]] = []
    slice_html = ""
    if sl is not None:
        slices, total = _slice_rows(task, y, ch, cm, sl, y_pos)
        slice_html = _slice_table(task, slices, total, slice_column, cm is not None)
    return _publish(store, prefix, verdict, title, task, len(y), pngs, slice_html, slice_column, slices)


def _write_multiclass_report(
    store, prefix, *, verdict, y_true, challenger, champion, slice_values, slice_column, title
) -> dict[str, Any]:
    import numpy as np
    import pandas as pd

    from mlops_provider.core.evaluation import Encoded, _aligned, as_labels

    y = np.asarray(y_true, dtype=object)
    classes = list(challenger.classes)
    kind = np.asarray(classes).dtype.kind
    lookup = {str(c): c for c in classes}
    models_mc = [("challenger", as_labels(challenger.pred, kind), np.asarray(challenger.proba, dtype=float))]
    if champion is not None:
        enc = Encoded("multiclass", None, champion.pred, champion.proba, champion.classes)
        pred, proba = _aligned(enc, Encoded("multiclass", None, None, None, classes))
        models_mc.append(("champion", as_labels(pred, kind), np.asarray(proba, dtype=float)))
    keep = ~pd.isna(y)
    sl = None if slice_values is None else np.asarray(slice_values, dtype=object)
    if sl is not None and len(sl) != len(y):
        raise InvalidInputError(
            f"slice_values has {len(sl)} values but y_true has {len(y)}; they must describe the same rows."
        )
    y = as_labels([lookup.get(str(v), v) for v in y[keep]], kind)
    models_mc = [(n, p[keep], q[keep]) for n, p, q in models_mc]
    sl = sl[keep] if sl is not None else None
    pngs: dict[str, bytes] = {}
    with _plain_text():
        for name, pred, proba in models_mc:
            suffix = "" if name == "challenger" else "_champion"
            pngs[f"confusion{suffix}.png"] = _confusion_multiclass_png(y, pred, classes, name)
            pngs[f"roc{suffix}.png"] = _one_vs_rest_png(y, proba, classes, name, "roc")
            pngs[f"pr{suffix}.png"] = _one_vs_rest_png(y, proba, classes, name, "pr")
    per_class = _per_class(y, models_mc, classes)
    slices: list[dict[str, Any]] = []
    slice_html = ""
    if sl is not None:
        metric = verdict.get("compare_metric") or "log_loss"
        slices, total = _multiclass_slice_rows(y, models_mc, classes, sl, metric)
        slice_html = _multiclass_slice_table(slices, total, slice_column, metric, champion is not None)
    out = _publish(
        store,
        prefix,
        verdict,
        title,
        "multiclass",
        len(y),
        pngs,
        slice_html,
        slice_column,
        slices,
        class_html=_per_class_html(per_class, champion is not None),
    )
    out["per_class"] = per_class
    return out


def _publish(
    store, prefix, verdict, title, task, rows, pngs, slice_html, slice_column, slices, class_html=""
):
    images = {}
    for name, data in pngs.items():
        key = _key(prefix, name)
        store.write_bytes(key, data)
        images[name.removesuffix(".png")] = store.uri(key)
    page = _render_evaluation_html(
        verdict,
        title=title or f"Model evaluation: {verdict.get('model') or 'model'}",
        task=task,
        rows=rows,
        images=list(pngs),
        slice_html=slice_html,
        slice_column=slice_column,
        class_html=class_html,
    )
    html_key = _key(prefix, "evaluation.html")
    store.write_bytes(html_key, page.encode("utf-8"))
    return {"html_uri": store.uri(html_key), "images": images, "slices": slices}
