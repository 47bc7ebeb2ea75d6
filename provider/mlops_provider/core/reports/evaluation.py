"""The model gate's report: from a ``Verdict.to_dict()`` and the scores of the challenger (and
champion) on the evaluation data, the checks, the metric comparison with its interval, the plots
(:mod:`.plots`), per-class and per-slice tables, as one self-contained HTML page with its PNGs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mlops_provider.core import html as h
from mlops_provider.core import metrics as _metrics
from mlops_provider.core.errors import InvalidInputError
from mlops_provider.core.reports.plots import (
    calibration_png,
    confusion_multiclass_pngs,
    confusion_pngs,
    one_vs_rest_png,
    plotted_models,
    pr_png,
    pred_vs_actual_png,
    residuals_png,
    roc_png,
)

MAX_SLICES = 30


def _norm_prefix(key_prefix: str) -> str:
    return str(key_prefix or "").strip("/")


def _key(prefix: str, name: str) -> str:
    return f"{prefix}/{name}" if prefix else name


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
    from mlops_provider.core.slices import check_label

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
            f"<td>{h.escape(c.get('kind'))}</td><td><code>{h.escape(check_label(c))}</code></td><td>{h.escape(c.get('op'))}</td>"
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
    "confusion_champion.png": "Champion: confusion matrix (counts)",
    "confusion_champion_normalized.png": "Champion: confusion matrix, share of each actual class",
    "roc_champion.png": "Champion: one-vs-rest ROC curves",
    "pr_champion.png": "Champion: one-vs-rest precision-recall curves",
    "roc.png": "ROC curve",
    "pr.png": "Precision-recall curve",
    "confusion.png": "Challenger: confusion matrix (counts)",
    "confusion_normalized.png": "Challenger: confusion matrix, share of each actual class",
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
    links=(),
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
        f'<figure><a href="{h.escape(name)}" target="_blank" rel="noopener" title="Open full size">'
        f'<img src="{h.escape(name)}" alt="{h.escape(_CAPTIONS.get(name, name))}" loading="lazy"></a>'
        f"<figcaption>{h.escape(_CAPTIONS.get(name, name))} (click to enlarge)</figcaption></figure>"
        for name in images
    )
    checks = list(verdict.get("checks") or [])
    checks_html = (
        _checks_table(checks, verdict) if checks else '<p class="muted">No checks were configured.</p>'
    )
    body = (
        f"{h.back_links(links)}<h1>{h.escape(title)}</h1>\n{banner}\n{h.stats(info)}\n"
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
        pngs["roc.png"] = roc_png(y_pos, models, two)
        pngs["pr.png"] = pr_png(y_pos, models, two)
        pngs.update(confusion_pngs(y_pos, models, positive_label))
        pngs["calibration.png"] = calibration_png(y_pos, models, two)
    else:
        pngs["residuals.png"] = residuals_png(y, models)
        pngs["predicted_vs_actual.png"] = pred_vs_actual_png(y, models)
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
    links=(),
) -> dict[str, Any]:
    """Write the model-gate report under ``key_prefix``: PNG plots, then ``evaluation.html`` (last).

    ``verdict`` is a ``Verdict.to_dict()``. The models' outputs come either as ``challenger`` /
    ``champion`` (:class:`~mlops_provider.core.modeling.Predictions`) or, for a binary classifier or
    a regressor, as ``challenger_score`` / ``champion_score`` (P(``positive_label``) per row of
    ``y_true``, or the predictions). A multiclass report has N x N confusion matrices (counts and
    normalised), one-vs-rest ROC and precision-recall curves, a per-class table and per-slice
    accuracy and compare metric. Rows whose label or a score is missing are left out. Returns
    ``{"html_uri", "images": {name: uri}, "slices": [...], "per_class": [...]}``. ``links``:
    ``(label, url)`` pairs the page opens with (its run, model, snapshot, the registry).
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
            links=links,
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
    models = plotted_models(ch, cm)

    if task != "classification":
        y = y.astype("float64")
    with _plain_text():
        pngs, y_pos = _plots(task, y, models, positive_label)

    slices: list[dict[str, Any]] = []
    slice_html = ""
    if sl is not None:
        slices, total = _slice_rows(task, y, ch, cm, sl, y_pos)
        slice_html = _slice_table(task, slices, total, slice_column, cm is not None)
    return _publish(
        store, prefix, verdict, title, task, len(y), pngs, slice_html, slice_column, slices, links=links
    )


def _write_multiclass_report(
    store, prefix, *, verdict, y_true, challenger, champion, slice_values, slice_column, title, links=()
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
            matrices = confusion_multiclass_pngs(y, pred, classes, name)
            pngs[f"confusion{suffix}.png"] = matrices["counts"]
            pngs[f"confusion{suffix}_normalized.png"] = matrices["normalized"]
            pngs[f"roc{suffix}.png"] = one_vs_rest_png(y, proba, classes, name, "roc")
            pngs[f"pr{suffix}.png"] = one_vs_rest_png(y, proba, classes, name, "pr")
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
        links=links,
    )
    out["per_class"] = per_class
    return out


def _publish(
    store, prefix, verdict, title, task, rows, pngs, slice_html, slice_column, slices, class_html="", links=()
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
        links=links,
    )
    html_key = _key(prefix, "evaluation.html")
    store.write_bytes(html_key, page.encode("utf-8"))
    return {"html_uri": store.uri(html_key), "images": images, "slices": slices}
