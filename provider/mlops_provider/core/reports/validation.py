"""The data-quality gate's report: from a ``ValidationReport.to_dict()``, a PASS/FAIL banner, the
statistics, and one row per expectation (failed ones first and highlighted) with what was
expected, what was observed, how many rows were unexpected and examples of them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mlops_provider.core import html as h

MAX_SET_ITEMS = 20
MAX_TEXT = 400


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


def render_validation_html(report: Mapping[str, Any], links=()) -> str:
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
        f"{h.back_links(links)}<h1>Data quality report: {h.escape(suite)}</h1>\n"
        f"{banner}\n{stats}\n{summary}\n"
        f"<h2>Expectations ({len(results)})</h2>\n{table}"
    )
    return h.document(f"Data quality: {suite} \u2014 {'PASS' if ok else 'FAIL'}", body, body_class="report")


def write_validation_report(store, key_prefix: str, report: Mapping[str, Any], links=()) -> str:
    """Write ``<key_prefix>/validation.html`` atomically through ``store``; returns its URI. ``links``:
    ``(label, url)`` pairs the page opens with (its run, snapshot, the registry)."""
    key = _key(_norm_prefix(key_prefix), "validation.html")
    store.write_bytes(key, render_validation_html(report, links).encode("utf-8"))
    return store.uri(key)
