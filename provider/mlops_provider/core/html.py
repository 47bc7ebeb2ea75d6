"""The HTML kit: escaping, number formats, tables, definition lists, the page frame and the CSS
shared by the evaluation/validation reports (``core.reports``), the registry pages
(``plugins.pages``) and the alert e-mails (``notifications.render``), plus the number formats of
the CLI. Standard library only.

Conventions: every function that returns HTML escapes what it is given as text; arguments named
``*_html`` (and table rows) are HTML already.
"""

from __future__ import annotations

import datetime as dt
import html as _html
import json
import math
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote

ELLIPSIS = "\u2026"


# --------------------------------------------------------------------------- text
def escape(value: Any) -> str:
    """HTML-escape anything, quotes included (None -> empty string)."""
    return "" if value is None else _html.escape(str(value), quote=True)


def url_segment(value: Any) -> str:
    """One URL path segment (every reserved character percent-encoded)."""
    return quote(str(value), safe="")


def plain(value: Any) -> Any:
    """numpy scalars -> Python scalars; anything else unchanged."""
    return value.item() if hasattr(value, "item") and not isinstance(value, (str, bytes)) else value


def is_nan(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)


def short(text: Any, limit: int = 160) -> str:
    """``text`` cut to ``limit`` characters, the last one an ellipsis when cut (None -> '')."""
    s = "" if text is None else str(text)
    return s if len(s) <= limit else s[: limit - 1] + ELLIPSIS


def pretty_json(value: Any) -> str:
    try:
        return json.dumps(value, indent=2, sort_keys=True, default=str)
    except (TypeError, ValueError):
        return repr(value)


def readable(value: Any, limit: int = 400) -> str:
    """Any observed/expected value as short readable text (not escaped): ``null``, ``NaN``, floats
    with 6 significant digits, containers as sorted JSON."""
    value = plain(value)
    if value is None:
        return "null"
    if isinstance(value, float):
        return "NaN" if math.isnan(value) else f"{value:.6g}"
    if isinstance(value, (int, bool)):
        return str(value)
    if isinstance(value, str):
        return value
    try:
        return short(json.dumps(value, default=str, sort_keys=True), limit)
    except (TypeError, ValueError):
        return short(repr(value), limit)


def readable_set(values: Iterable[Any], max_items: int = 20) -> str:
    """``{a, b, ... (+n more)}`` of the first ``max_items`` values."""
    items = list(values)
    shown = ", ".join(readable(x) for x in items[:max_items])
    more = f", {ELLIPSIS} (+{len(items) - max_items} more)" if len(items) > max_items else ""
    return "{" + shown + more + "}"


# --------------------------------------------------------------------------- numbers
def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def number(value: Any, digits: int = 4, signed: bool = False, nan: str = "") -> str:
    """A number for a table cell: ints as they are, floats with ``digits`` decimals, ``+`` when
    ``signed``; ``''`` for None and ``nan`` for NaN; anything else as ``str``."""
    value = plain(value)
    if value is None:
        return ""
    if not _is_number(value):
        return str(value)
    if isinstance(value, int):
        return f"{value:+d}" if signed else str(value)
    if math.isnan(value):
        return nan
    if math.isinf(value):
        return str(value)
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def aligned(value: float, digits: int = 4) -> str:
    """A float for a text table column: ``digits`` fixed decimals in [1e-3, 1e6) (and for 0), the
    general format outside, so tiny and huge values stay readable (``0.8600``, ``1.2e-05``)."""
    if value == 0 or 1e-3 <= abs(value) < 1e6:
        return f"{value:.{digits}f}"
    return f"{value:.{digits}g}"


def compact(value: Any, signed: bool = False, missing: str = "n/a") -> str:
    """A number for a sentence: at most 4 decimals without trailing zeros (``0.85``, ``-0.0123``),
    2 significant digits below 1e-4 (``3.2e-05``); ``missing`` for None."""
    value = plain(value)
    if value is None:
        return missing
    if not _is_number(value):
        return str(value)
    if isinstance(value, int):
        return f"{value:+d}" if signed else str(value)
    if math.isnan(value) or math.isinf(value):
        return str(value)
    if value != 0 and abs(value) < 1e-4:
        return f"{value:+.2g}" if signed else f"{value:.2g}"
    text = (f"{value:+.4f}" if signed else f"{value:.4f}").rstrip("0")
    return text + "0" if text.endswith(".") else text


def percent(p: Any) -> str:
    """A percentage (0-100) for a sentence: ``12.50%``, ``0.25%``, ``<0.001%``; ``n/a`` if not a number."""
    if not _is_number(p) or math.isnan(p):
        return "n/a"
    if p == 0:
        return "0%"
    if p >= 1:
        return f"{p:.2f}%"
    if p >= 0.001:
        return f"{p:.3g}%"
    return "<0.001%"


def human_size(n: Any) -> str:
    """Bytes as ``512 B``, ``1.5 KiB``, ``3.2 MiB`` or ``2.0 GiB``; '' if not an int."""
    if not isinstance(n, int):
        return ""
    size = float(n)
    for unit in ("B", "KiB", "MiB"):
        if size < 1024:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"


def timestamp(value: Any) -> str:
    """An ISO timestamp as ``YYYY-MM-DD HH:MM:SS UTC`` in a <time> element (the exact value on hover)."""
    if not value:
        return ""
    text = str(value)
    try:
        t = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
        if t.tzinfo is not None:
            t = t.astimezone(dt.timezone.utc)
        shown = t.strftime("%Y-%m-%d %H:%M:%S") + (" UTC" if t.tzinfo is not None else "")
    except ValueError:
        shown = text
    return f'<time datetime="{escape(text)}" title="{escape(text)}">{escape(shown)}</time>'


# --------------------------------------------------------------------------- blocks
def number_cell(value: Any, digits: int = 4, signed: bool = False, cls: str = "") -> str:
    """A right-aligned number cell; a float's exact value is in the tooltip."""
    text = number(value, digits, signed)
    pv = plain(value)
    title = f' title="{escape(repr(pv))}"' if isinstance(pv, float) and text else ""
    klass = f"num {cls}".strip()
    return f'<td class="{klass}"{title}>{escape(text)}</td>'


def table(
    headers: list[str], rows: list[str], empty: str = "(none)", *, caption: str | None = None, cls: str = ""
) -> str:
    """A table of ``rows`` (``<tr>`` HTML) under escaped ``headers``; one muted ``empty`` row if none."""
    cap = f'<caption class="muted">{escape(caption)}</caption>' if caption else ""
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join(rows) or f'<tr><td colspan="{len(headers)}" class="muted">{escape(empty)}</td></tr>'
    klass = f' class="{escape(cls)}"' if cls else ""
    return f"<table{klass}>{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def definitions(items: Iterable[tuple[str, str]], cls: str = "kv", skip_empty: bool = True) -> str:
    """A definition list of (escaped label, value HTML); empty values are left out if ``skip_empty``."""
    rows = "".join(
        f"<dt>{escape(k)}</dt><dd>{v}</dd>" for k, v in items if not (skip_empty and v in (None, ""))
    )
    return f'<dl class="{escape(cls)}">{rows}</dl>'


def stats(items: Iterable[tuple[str, str]]) -> str:
    """The report's statistics block: a boxed definition list that keeps empty values."""
    return definitions(items, cls="stats", skip_empty=False)


# --------------------------------------------------------------------------- page frame
CSS = """
:root{--fg:#1d2330;--muted:#5f6b7a;--line:#e3e7ed;--bg:#f5f7fa;--card:#fff;--brand:#017cee;
--ok:#1e8e3e;--ok-bg:#e6f4ea;--bad:#c5221f;--bad-bg:#fdecea;--info-bg:#e8f1fd;--warn-bg:#fff4e0}
*{box-sizing:border-box}
body{margin:0;font-family:-apple-system,BlinkMacSystemFont,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;
color:var(--fg);background:var(--bg);font-size:14px;line-height:1.45}
body.report{padding:1.5rem 2rem}
a{color:var(--brand);text-decoration:none}a:hover{text-decoration:underline}
header.top{display:flex;align-items:center;gap:1rem;padding:.7rem 1.5rem;background:#0b1f33;color:#fff}
header.top a{color:#fff}header.top .brand{font-weight:700;font-size:1.05rem;letter-spacing:.01em}
header.top .crumbs{flex:1;color:#b7c4d3}header.top .crumbs a{color:#dbe6f2}
header.top .user{color:#b7c4d3;font-size:.85rem}
main{padding:1.2rem 1.5rem 2rem;max-width:1400px}
h1{font-size:1.45rem;margin:.2rem 0 .9rem}h2{font-size:1.08rem;margin:1.6rem 0 .6rem}
h3{font-size:.95rem;margin:1rem 0 .4rem;color:var(--muted)}
.card{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:1rem 1.2rem;\
margin:.8rem 0}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(330px,1fr));gap:1rem}
table{border-collapse:collapse;width:100%;background:var(--card);border:1px solid var(--line);\
border-radius:6px}
th,td{padding:.45rem .65rem;border-bottom:1px solid var(--line);text-align:left;vertical-align:top}
th{background:#eef2f7;font-weight:600;font-size:.82rem;color:#3c4757;white-space:nowrap}
tr:last-child td{border-bottom:none}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
dl.kv,dl.stats{display:grid;grid-template-columns:max-content 1fr;gap:.3rem 1.2rem;margin:0}
dl.stats{background:var(--card);padding:1rem 1.25rem;border-radius:6px;border:1px solid var(--line)}
dl.kv dt,dl.stats dt{font-weight:600;color:var(--muted)}dl.kv dd,dl.stats dd{margin:0;word-break:break-word}
code,pre{font-family:SFMono-Regular,Consolas,Menlo,monospace;font-size:.82rem}
code{background:#f0f3f7;padding:0 .25em;border-radius:3px;word-break:break-all}
pre{background:#f0f3f7;padding:.6rem .8rem;border-radius:6px;overflow:auto;max-height:22rem;margin:.3rem 0;\
white-space:pre-wrap}
.badge{display:inline-block;padding:.05rem .5rem;border-radius:999px;font-size:.78rem;font-weight:600;
background:#e8ecf1;color:#3c4757;margin-right:.25rem;white-space:nowrap}
.badge.ok{background:var(--ok-bg);color:var(--ok)}.badge.bad{background:var(--bad-bg);color:var(--bad)}
.badge.champion{background:#fff1c2;color:#7a5300}.badge.alias{background:var(--info-bg);color:#0b4f9c}
.muted{color:var(--muted)}.small{font-size:.82rem}.err{color:var(--bad)}
.better{color:var(--ok)}.worse{color:var(--bad)}
.reason{color:var(--muted);font-size:.82rem;font-weight:400;max-width:34rem}
td.when,td.move{white-space:nowrap}
.flash{padding:.7rem 1rem;border-radius:6px;margin:.2rem 0 1rem;border:1px solid}
.flash.ok{background:var(--ok-bg);border-color:#b7dfc3}.flash.bad{background:var(--bad-bg);border-color:#f3c2bf}
.banner{padding:.8rem 1rem;border-radius:6px;color:#fff;margin:.4rem 0 .8rem}
.banner.ok,.banner.pass{background:var(--ok)}.banner.bad,.banner.fail{background:var(--bad)}
.banner .big{font-size:1.2rem;font-weight:700}
.banner .verdict{font-size:1.6rem;font-weight:700;letter-spacing:.03em}.banner p{margin:.35rem 0 0}
form.inline{display:flex;flex-wrap:wrap;gap:.5rem;align-items:flex-end;margin:0}
form.inline label{display:flex;flex-direction:column;font-size:.78rem;color:var(--muted);gap:.15rem}
input[type=text],select{font:inherit;padding:.38rem .5rem;border:1px solid #c6ceda;border-radius:5px;\
background:#fff;min-width:8rem}
input[type=text]{min-width:22rem}
button{font:inherit;font-weight:600;padding:.42rem .95rem;border-radius:5px;border:1px solid var(--brand);
background:var(--brand);color:#fff;cursor:pointer}
button.secondary{background:#fff;color:var(--brand)}
tr.passed td.status,tr.pass td.status{color:var(--ok);font-weight:700}
tr.failed td,tr.fail td{background:#fff7f6}\
tr.failed td.status,tr.fail td.status{color:var(--bad);font-weight:700}
tr.current td{background:#fffbea}
.empty{padding:2rem;text-align:center;color:var(--muted)}
.plots{display:grid;grid-template-columns:repeat(auto-fit,minmax(420px,1fr));gap:1rem}
figure{margin:0;background:var(--card);border:1px solid var(--line);border-radius:6px;padding:.5rem}
figure img{width:100%;height:auto;display:block}figcaption{font-size:.85rem;color:var(--muted);padding:.3rem}
footer{padding:0 1.5rem 1.5rem;color:var(--muted);font-size:.78rem}
nav.back{display:flex;flex-wrap:wrap;gap:.4rem;align-items:center;font-size:.88rem;margin:0 0 .6rem}
nav.back span{color:var(--muted)}
"""


def back_links(links) -> str:
    """The bar a report opens with: ``(label, url)`` pairs (pairs without a URL left out)."""
    items = [f'<a href="{escape(url)}">{escape(label)}</a>' for label, url in links or () if url]
    if not items:
        return ""
    dot = " <span>\u00b7</span> "
    return f'<nav class="back" id="report-links">{dot.join(items)}</nav>\n'


def document(title: str, body_html: str, *, head_html: str = "", body_class: str = "") -> str:
    """A complete, self-contained HTML5 page with the kit's stylesheet."""
    klass = f' class="{escape(body_class)}"' if body_class else ""
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"{head_html}<title>{escape(title)}</title>\n<style>{CSS}</style>\n</head>\n<body{klass}>\n"
        f"{body_html}\n</body>\n</html>\n"
    )
