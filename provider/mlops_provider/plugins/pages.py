"""Server-rendered HTML of the model-registry plugin (no template engine; one static script follows
Airflow's theme and opens Airflow's pages in Airflow when the registry is shown inside its frame).

Pure functions from plain dicts (``ModelVersion.to_dict()``, alias records, ``AliasEvent.to_dict()``)
to HTML strings. Every value that comes from the registry, a form or the request goes through
:func:`e` (``html.escape``); URLs are built with :func:`urllib.parse.quote` and escaped again
where they land in an attribute.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from mlops_provider.core.html import (
    definitions,
    document,
    pretty_json,
    short,
    table,
    timestamp,
)
from mlops_provider.core.html import escape as e
from mlops_provider.core.html import number as fmt_num
from mlops_provider.core.html import url_segment as q
from mlops_provider.core.names import CHAMPION
from mlops_provider.plugins import charts

PREFERRED_METRICS = (
    "roc_auc",
    "average_precision",
    "log_loss",
    "brier",
    "accuracy",
    "balanced_accuracy",
    "f1",
    "precision",
    "recall",
    "rmse",
    "mae",
    "r2",
)


def key_metrics(
    metric_dicts: Iterable[Mapping[str, Any]], first: str | None = None, limit: int = 3
) -> list[str]:
    """The few metrics worth a column: the gate's compare metric first, then well-known ones."""
    present: set[str] = set()
    for m in metric_dicts:
        present.update(
            k for k, v in (m or {}).items() if isinstance(v, (int, float)) and not isinstance(v, bool)
        )
    present.discard("rows")
    keys = [first] if first and first in present else []
    keys += [k for k in PREFERRED_METRICS if k in present and k not in keys]
    keys += sorted(k for k in present if k not in keys)
    return keys[:limit]


def gate_badge(verdict: Mapping[str, Any] | None) -> str:
    if not verdict:
        return '<span class="badge">no gate</span>'
    if verdict.get("passed"):
        return '<span class="badge ok">gate passed</span>'
    return '<span class="badge bad">gate failed</span>'


def alias_badges(aliases: Iterable[str]) -> str:
    return "".join(
        f'<span class="badge {"champion" if a == CHAMPION else "alias"}">{e(a)}</span>'
        for a in sorted(aliases)
    )


# --------------------------------------------------------------------------- page frame
@dataclass
class Ctx:
    """What every page needs to build links: where the plugin and the Airflow UI are mounted."""

    prefix: str  # the plugin's mount path, e.g. "/mlops" (or "/airflow/mlops" behind a base_url)
    ui_root: str  # the Airflow UI root path, e.g. "" or "/airflow"
    user: str
    artifact_url: Callable[[Any], str | None]  # URI or key -> URL of /artifacts/..., None if not servable
    root: str = ""

    def model_url(self, name: str) -> str:
        return f"{self.prefix}/models/{q(name)}"

    def version_url(self, name: str, version: Any) -> str:
        return f"{self.prefix}/models/{q(name)}/versions/{q(version)}"

    def run_url(self, dag_id: str, run_id: str) -> str:
        return f"{self.ui_root}/dags/{q(dag_id)}/runs/{q(run_id)}"

    def dag_url(self, dag_id: str) -> str:
        return f"{self.ui_root}/dags/{q(dag_id)}"


def page(
    ctx: Ctx, title: str, body: str, crumbs: list[tuple[str, str | None]] | None = None, flash: str = ""
) -> str:
    trail = " / ".join(
        f'<a href="{e(href)}">{e(label)}</a>' if href else e(label) for label, href in (crumbs or [])
    )
    user = f'<span class="user">signed in as {e(ctx.user)}</span>' if ctx.user else ""
    footer = f"<footer>Artifact root: <code>{e(ctx.root)}</code></footer>" if ctx.root else ""
    header = (
        f'<header class="top"><a class="brand" href="{e(ctx.prefix)}/">Model registry</a>'
        f'<span class="crumbs">{trail}</span>{user}'
        f'<a class="to-airflow" href="{e(ctx.ui_root)}/">Airflow \u2197</a></header>'
    )
    return document(
        f"{title} \u00b7 Model registry",
        f"{header}\n<main>\n{flash}{body}\n</main>\n{footer}",
        head_html=(
            '<meta name="referrer" content="same-origin">\n'
            f'<script src="{e(ctx.prefix)}/static/registry.js"></script>\n'
            f"<style>{THEME_CSS}</style>\n"
        ),
    )


#: Inside Airflow's frame (``html.framed``) Airflow shows the navigation, the user and the way back,
#: so the page keeps only its breadcrumbs; ``data-theme="dark"`` follows Airflow's dark mode.
THEME_CSS = """
html.framed header.top{background:transparent;color:var(--fg);padding:.6rem 1.5rem 0}
html.framed header.top .brand,html.framed header.top .user,html.framed header.top .to-airflow{display:none}
html.framed header.top .crumbs,html.framed header.top .crumbs a{color:var(--muted)}
html.framed header.top .crumbs a{color:var(--brand)}
html[data-theme=dark]{color-scheme:dark;--fg:#e4e7ec;--muted:#9aa4b2;--line:#303846;--bg:#0f1115;
--card:#181c23;--brand:#5aa9ff;--ok-bg:#12301d;--bad-bg:#3a1514;--info-bg:#13263f;--warn-bg:#3a2a10}
html[data-theme=dark] body{background:var(--bg);color:var(--fg)}
html[data-theme=dark] th{background:#202632;color:#c9d1dc}
html[data-theme=dark] code,html[data-theme=dark] pre{background:#202632;color:var(--fg)}
html[data-theme=dark] tr.failed td,html[data-theme=dark] tr.fail td{background:#2a1716}
html[data-theme=dark] tr.current td{background:#2b2712}
html[data-theme=dark] .badge{background:#2a3140;color:#d5dbe4}
html[data-theme=dark] .badge.champion{background:#4a3b0b;color:#ffd866}
html[data-theme=dark] .badge.alias{background:#13263f;color:#8cc4ff}
html[data-theme=dark] input[type=text],html[data-theme=dark] select{background:#11151b;color:var(--fg);
border-color:#3a4352}
html[data-theme=dark] button.secondary{background:transparent}
.metric-chart{max-width:100%;height:auto;display:block}
.metric-chart text{fill:var(--fg)}.metric-chart .window{fill:var(--muted)}
.metric-chart .grid-line{stroke:var(--line)}
"""


def open_page(ctx: Ctx, path: str) -> str:
    """Opens ``path`` (a page of Airflow's UI) in the whole window; a link when scripts cannot run."""
    body = (
        f'<h1>Opening Airflow</h1><p><a id="open-in-airflow" href="{e(path)}">{e(path)}</a></p>'
        '<p class="muted small">If nothing happens, follow the link.</p>'
    )
    return page(ctx, "Opening Airflow", body)


def flash_html(kind: str, text: str) -> str:
    return (
        f'<div class="flash {"ok" if kind == "ok" else "bad"}" role="status">{e(text)}</div>' if text else ""
    )


def error_page(ctx: Ctx, status: int, title: str, detail: str, extra_html: str = "") -> str:
    body = f'<h1>{e(status)} \u00b7 {e(title)}</h1><div class="card"><p>{e(detail)}</p>{extra_html}</div>'
    return page(ctx, title, body)


# --------------------------------------------------------------------------- models
def index_page(ctx: Ctx, models: list[dict[str, Any]]) -> str:
    """``models``: [{name, versions: [version dicts], aliases: {alias: record}, history: [events]}]."""
    if not models:
        body = (
            '<h1>Models</h1><div class="card empty">No model is registered yet under this artifact root. '
            "A retraining DAG's <code>RegisterModelOperator</code> adds versions here.</div>"
        )
        return page(ctx, "Models", body, [("Models", None)])
    rows = []
    for m in models:
        name, versions = m["name"], m["versions"]
        by_number = {v["version"]: v for v in versions}
        champ_no = (m["aliases"].get(CHAMPION) or {}).get("version")
        champ = by_number.get(champ_no)
        latest = versions[-1] if versions else None
        champ_cell = (
            f'<a href="{e(ctx.version_url(name, champ_no))}">'
            f'<span class="badge champion">v{e(champ_no)}</span></a>'
            if champ_no is not None
            else '<span class="muted">none yet</span>'
        )
        latest_cell = (
            f'<a href="{e(ctx.version_url(name, latest["version"]))}">v{e(latest["version"])}</a> '
            f"{gate_badge(latest.get('verdict'))}"
            f'<div class="small muted">{timestamp(latest.get("created_at"))}</div>'
            if latest
            else ""
        )
        metrics_cell = ""
        if champ:
            cm = (champ.get("verdict") or {}).get("compare_metric")
            keys = key_metrics([champ.get("metrics") or {}], cm, limit=4)
            metrics_cell = " ".join(
                f'<span class="badge" title="{e(k)}">{e(k)} {e(fmt_num(champ["metrics"].get(k)))}</span>'
                for k in keys
            )
        champ_events = [ev for ev in m["history"] if ev.get("alias") == CHAMPION]
        last = champ_events[-1] if champ_events else None
        last_cell = (
            f"{e(last.get('action'))} v{e(last.get('version'))} by <b>{e(last.get('actor'))}</b>"
            f'<div class="small muted">{timestamp(last.get("updated_at"))}</div>'
            f'<div class="reason">{e(short(last.get("reason"), 120))}</div>'
            if last
            else '<span class="muted">never</span>'
        )
        rows.append(
            f'<tr><td><a href="{e(ctx.model_url(name))}"><b>{e(name)}</b></a></td><td>{champ_cell}</td>'
            f'<td class="num">{len(versions)}</td><td>{latest_cell}</td>'
            f"<td>{metrics_cell}</td><td>{last_cell}</td></tr>"
        )
    body = "<h1>Models</h1>" + table(
        ["Model", "Champion", "Versions", "Latest version", "Champion metrics", "Last champion change"],
        rows,
        cls="models",
    )
    return page(ctx, "Models", body, [("Models", None)])


def _version_options(versions: list[dict[str, Any]], selected: Any = None, skip: Any = None) -> str:
    out = []
    for v in reversed(versions):
        if v["version"] == skip:
            continue
        verdict = v.get("verdict")
        gate = "no gate" if not verdict else ("gate passed" if verdict.get("passed") else "gate failed")
        sel = " selected" if v["version"] == selected else ""
        out.append(f'<option value="{e(v["version"])}"{sel}>v{e(v["version"])} \u2014 {e(gate)}</option>')
    return "".join(out)


def promote_form(
    ctx: Ctx, name: str, versions: list[dict[str, Any]], champion: Any, fixed_version: Any = None
) -> str:
    if fixed_version is not None:
        pick = f'<input type="hidden" name="version" value="{e(fixed_version)}">'
        label = f"Promote v{e(fixed_version)} to champion"
    else:
        candidates = [v for v in versions if v["version"] != champion]
        if not candidates:
            return '<p class="muted small">No other version to promote.</p>'
        default = candidates[-1]["version"]
        pick = (
            f'<label>Version<select name="version" required>{_version_options(versions, default, champion)}'
            "</select></label>"
        )
        label = "Promote to champion"
    return (
        f'<form class="inline" method="post" action="{e(ctx.model_url(name))}/promote">{pick}'
        '<label>Reason (required)<input type="text" name="reason" required maxlength="1000" '
        'placeholder="why this version should serve"></label>'
        f'<button type="submit" name="action" value="promote">{label}</button></form>'
    )


def rollback_form(ctx: Ctx, name: str, versions: list[dict[str, Any]], champion: Any) -> str:
    if champion is None:
        return '<p class="muted small">There is no champion to roll back.</p>'
    options = '<option value="">previous champion</option>' + _version_options(versions, None, champion)
    return (
        f'<form class="inline" method="post" action="{e(ctx.model_url(name))}/rollback">'
        f'<label>Roll back to<select name="version">{options}</select></label>'
        '<label>Reason (required)<input type="text" name="reason" required maxlength="1000" '
        'placeholder="what went wrong with the current champion"></label>'
        '<button type="submit" class="secondary" name="action" value="rollback">Roll back</button></form>'
    )


def history_table(events: list[dict[str, Any]]) -> str:
    rows = []
    for ev in reversed(events):
        prev = ev.get("previous_version")
        move = (
            f"v{e(prev)} \u2192 v{e(ev.get('version'))}"
            if prev is not None
            else f"\u2192 v{e(ev.get('version'))}"
        )
        rows.append(
            f'<tr><td class="when">{timestamp(ev.get("updated_at"))}</td>'
            f"<td>{alias_badges([ev.get('alias') or ''])}</td>"
            f'<td>{e(ev.get("action"))}</td><td class="move">{move}</td>'
            f'<td class="actor"><b>{e(ev.get("actor"))}</b></td>'
            f'<td class="why">{e(ev.get("reason"))}</td></tr>'
        )
    return table(
        ["When", "Alias", "Action", "Move", "Who", "Why"], rows, "No alias was ever set.", cls="history"
    )


def model_page(
    ctx: Ctx,
    name: str,
    versions: list[dict[str, Any]],
    aliases: dict[str, dict[str, Any]],
    history: list[dict[str, Any]],
    flash: str = "",
    estimates: list[dict[str, Any]] | None = None,
) -> str:
    champion = (aliases.get(CHAMPION) or {}).get("version")
    by_version: dict[Any, list[str]] = {}
    for alias, rec in aliases.items():
        by_version.setdefault(rec.get("version"), []).append(alias)
    compare = next(
        ((v.get("verdict") or {}).get("compare_metric") for v in reversed(versions) if v.get("verdict")), None
    )
    metric_keys = key_metrics([v.get("metrics") or {} for v in versions], compare, limit=3)
    chart_metric = compare if compare in metric_keys else (metric_keys[0] if metric_keys else None)
    rows = []
    for v in reversed(versions):
        verdict = v.get("verdict") or None
        status = "passed" if verdict and verdict.get("passed") else ("failed" if verdict else "")
        reason = f'<div class="reason">{e(short(verdict.get("reason"), 200))}</div>' if verdict else ""
        cells = "".join(
            f'<td class="num">{e(fmt_num((v.get("metrics") or {}).get(k)))}</td>' for k in metric_keys
        )
        cls = " ".join(c for c in (status, "current" if v["version"] == champion else "") if c)
        window = charts.window_label(*charts.evaluation_window(v))
        rows_judged = charts.eval_rows(v)
        judged = f'<span class="window">{e(window)}</span>' + (
            f'<div class="small muted">{e(fmt_num(rows_judged))} rows</div>'
            if rows_judged is not None
            else ""
        )
        rows.append(
            f'<tr class="{cls}" data-version="{e(v["version"])}">'
            f'<td><a href="{e(ctx.version_url(name, v["version"]))}"><b>v{e(v["version"])}</b></a></td>'
            f"<td>{timestamp(v.get('created_at'))}</td><td><code>{e(v.get('estimator'))}</code></td>"
            f'<td class="evaluated">{judged}</td>{cells}'
            f'<td class="vs-champion">{charts.comparison_cell(v, chart_metric)}</td>'
            f'<td class="status">{gate_badge(verdict)}{reason}</td>'
            f"<td>{alias_badges(by_version.get(v['version'], []))}</td></tr>"
        )
    champ_txt = (
        f'<a href="{e(ctx.version_url(name, champion))}">'
        f'<span class="badge champion">champion v{e(champion)}</span></a>'
        if champion is not None
        else '<span class="badge">no champion yet</span>'
    )
    actions = (
        '<div class="grid">'
        f'<div class="card"><h3>Promote</h3>{promote_form(ctx, name, versions, champion)}</div>'
        f'<div class="card"><h3>Roll back</h3>{rollback_form(ctx, name, versions, champion)}</div>'
        "</div>"
    )
    body = (
        f"<h1>{e(name)} {champ_txt}</h1>{actions}"
        f"<h2>Versions ({len(versions)})</h2>"
        + _chart_section(versions, chart_metric, champion)
        + table(
            [
                "Version",
                "Created",
                "Estimator",
                "Evaluated on",
                *metric_keys,
                f"vs champion on the same window ({chart_metric})" if chart_metric else "vs champion",
                "Gate",
                "Aliases",
            ],
            rows,
            "No version is registered.",
            cls="versions",
        )
        + estimates_section(ctx, name, estimates or [])
        + "<h2>Alias history</h2>"
        + history_table(history)
    )
    return page(ctx, name, body, [("Models", f"{ctx.prefix}/"), (name, None)], flash)


def _chart_section(versions: list[dict[str, Any]], metric: str | None, champion: Any) -> str:
    svg = charts.metric_chart(versions, metric, champion)
    if not svg:
        return ""
    return (
        f'<div class="card chart">{svg}<p class="small muted">Each version is measured on its own '
        "evaluation window, so values from different windows are not comparable with each other; "
        "the promotion decision compares the challenger with the champion of the day on the same "
        "window (hollow point, and the interval of the improvement).</p></div>"
    )


def _window_label(entry: Mapping[str, Any]) -> str:
    window = entry.get("window")
    if isinstance(window, Mapping):
        return f"{str(window.get('start'))[:10]} \u2192 {str(window.get('end'))[:10]}"
    return short(str(entry.get("window_sha256") or "")[:12], 12)


def estimates_section(ctx: Ctx, name: str, entries: list[dict[str, Any]]) -> str:
    """Performance estimated before labels (CBPE) next to the realised value once labels arrived,
    newest window first (``drift/<model>/estimates/history``); nothing without estimates."""
    if not entries:
        return ""
    rows, errors = [], []
    for ent in reversed(entries):
        metric = ent.get("metric")
        est = ((ent.get("estimated") or {}).get(metric)) or {}
        realised = (ent.get("realised") or {}).get(metric)
        error = (ent.get("error") or {}).get(metric)
        if isinstance(error, (int, float)):
            errors.append(abs(error))
        interval = (
            f'<div class="muted">[{e(fmt_num(est.get("lower")))}, {e(fmt_num(est.get("upper")))}]</div>'
            if est.get("lower") is not None
            else ""
        )
        version = ent.get("champion_version")
        rows.append(
            f"<tr><td>{e(_window_label(ent))}</td>"
            f'<td><a href="{e(ctx.version_url(name, version))}">v{e(version)}</a></td>'
            f"<td><code>{e(metric)}</code></td>"
            f'<td class="num">{e(fmt_num(ent.get("reference")))}</td>'
            f'<td class="num">{e(fmt_num(ent.get("estimate")))}{interval}</td>'
            f'<td class="num">{e(fmt_num(realised)) if realised is not None else "not yet"}</td>'
            f'<td class="num">{e(fmt_num(error, signed=True))}</td>'
            f"<td>{'retrain requested' if ent.get('retrain') else ''}</td>"
            f"<td>{_link_uri(ctx, ent.get('report_uri'), 'report')}</td></tr>"
        )
    summary = (
        f'<p class="muted">Mean |realised \u2212 estimated| over {len(errors)} window(s) with labels: '
        f"{e(fmt_num(sum(errors) / len(errors)))}</p>"
        if errors
        else '<p class="muted">No window has its labels yet.</p>'
    )
    return (
        "<h2>Estimated vs realised performance</h2>"
        + summary
        + table(
            ["Window", "Version", "Metric", "Reference", "Estimated (95%)", "Realised", "Error", "", ""],
            rows,
            cls="estimates",
        )
    )


# --------------------------------------------------------------------------- one version
def _link_uri(ctx: Ctx, uri: Any, label: str | None = None) -> str:
    """A link to an artifact served by the plugin, or the bare URI when it is outside the root."""
    if not uri:
        return ""
    url = ctx.artifact_url(uri)
    text = e(label if label is not None else uri)
    if url:
        return f'<a href="{e(url)}">{text}</a>'
    return f"<code>{e(uri)}</code>"


def _dataset_links(ctx: Ctx, uri: Any) -> str:
    """A snapshot is a folder (the artifact server serves files): link its manifest and its data;
    a URI naming a file links the file."""
    if not isinstance(uri, str) or not uri:
        return ""
    last = uri.rstrip("/").rsplit("/", 1)[-1]
    if "." in last:
        return _link_uri(ctx, uri, uri)
    base = uri.rstrip("/")
    links = [
        _link_uri(ctx, f"{base}/manifest.json", "manifest"),
        _link_uri(ctx, f"{base}/data.parquet", "data"),
    ]
    if not all(link.startswith("<a ") for link in links):
        return f"<code>{e(uri)}</code>"
    return f"<code>{e(uri)}</code> ({links[0]}, {links[1]} (Parquet))"


def dataset_card(ctx: Ctx, role: str, ds: Mapping[str, Any] | None) -> str:
    if not ds:
        return f'<div class="card"><h3>{e(role)}</h3><p class="muted">not recorded</p></div>'
    page_url = dataset_page_url(ctx, ds.get("uri"))
    items = [
        ("Snapshot", f'<a class="dataset-page" href="{e(page_url)}">snapshot page</a>' if page_url else ""),
        ("URI", _dataset_links(ctx, ds.get("uri"))),
        ("sha256", f'<code class="sha">{e(ds.get("sha256"))}</code>' if ds.get("sha256") else ""),
        ("Rows", e(fmt_num(ds.get("rows")))),
        ("Source", e(ds.get("source"))),
    ]
    query = f'<h3>Query</h3><pre class="query">{e(ds["query"])}</pre>' if ds.get("query") else ""
    return f'<div class="card dataset"><h3>{e(role)}</h3>{definitions(items)}{query}</div>'


def checks_table(verdict: Mapping[str, Any]) -> str:
    rows = []
    for c in verdict.get("checks") or []:
        ok = bool(c.get("passed"))
        ci = ""
        if c.get("ci_low") is not None and c.get("ci_high") is not None:
            ci = f"[{fmt_num(c['ci_low'], signed=True)}, {fmt_num(c['ci_high'], signed=True)}]"
        rows.append(
            f'<tr class="{"passed" if ok else "failed"}"><td>{e(c.get("kind"))}</td>'
            f"<td><code>{e(c.get('metric'))}</code></td>"
            f'<td class="num">{e(c.get("op"))} {e(fmt_num(c.get("threshold")))}</td>'
            f'<td class="num">{e(fmt_num(c.get("champion")))}</td>'
            f'<td class="num">{e(fmt_num(c.get("challenger")))}</td>'
            f'<td class="num">{e(fmt_num(c.get("delta"), signed=True))}</td><td class="num">{e(ci)}</td>'
            f'<td class="status">{"passed" if ok else "FAILED"}</td></tr>'
        )
    rule = verdict.get("promote_if")
    note = (
        (
            f'<p class="muted">Promotion rule: <code>{e(rule)}</code>; '
            "the interval is the 95% confidence interval of "
            "the challenger's improvement over the champion.</p>"
        )
        if rule
        else ""
    )
    return (
        table(
            ["Check", "Metric", "Threshold", "Champion", "Challenger", "Delta", "Improvement CI", "Result"],
            rows,
            "The gate ran no check.",
            cls="checks",
        )
        + note
    )


def slice_gates_section(verdict: Mapping[str, Any]) -> str:
    """The slice gates' per-slice tables (value, rows, challenger, champion, status), failing
    slices named first in the checks above."""
    from mlops_provider.core.slices import check_label

    out = []
    failed = {
        (c["slice"].get("column"), repr(c["slice"].get("value")))
        for c in verdict.get("checks") or []
        if c.get("kind") == "slice" and not c.get("passed") and c.get("slice")
    }
    for t in verdict.get("slices") or []:
        rows = []
        for r in t.get("slices") or []:
            bad = (t.get("column"), repr(r.get("value"))) in failed
            rows.append(
                f'<tr class="{"failed" if bad else ""}"><td>{e(r.get("value"))}</td>'
                f'<td class="num">{e(fmt_num(r.get("rows")))}</td>'
                f'<td class="num">{e(fmt_num(r.get("challenger")))}</td>'
                f'<td class="num">{e(fmt_num(r.get("champion")))}</td><td>{e(r.get("status"))}</td></tr>'
            )
        rules = ", ".join(
            f"{k} {t[k]}" for k in ("min", "max", "max_gap", "min_ratio") if t.get(k) is not None
        )
        out.append(
            f"<h3>Slice gate: {e(t.get('label'))}</h3>"
            f'<p class="muted">{e(rules)}; slices under {e(t.get("min_rows"))} rows are not gated.</p>'
            + table([str(t.get("column")), "Rows", "Challenger", "Champion", "Status"], rows, "No slices.")
        )
    failing = [
        check_label(c)
        for c in verdict.get("checks") or []
        if c.get("kind") == "slice" and not c.get("passed")
    ]
    head = f'<p class="bad">Failing slices: {e("; ".join(failing))}</p>' if failing else ""
    return head + "".join(out)


def metrics_table(verdict: Mapping[str, Any] | None, metrics: Mapping[str, Any]) -> str:
    both = (verdict or {}).get("metrics") or {}
    challenger = both.get("challenger") or metrics or {}
    champion = both.get("champion") or {}
    keys = [k for k in PREFERRED_METRICS if k in challenger] + sorted(
        k for k in challenger if k not in PREFERRED_METRICS
    )
    rows = []
    for k in keys:
        ch, cm = challenger.get(k), champion.get(k)
        delta = (
            ch - cm if isinstance(ch, (int, float)) and isinstance(cm, (int, float)) and k != "rows" else None
        )
        rows.append(
            f'<tr><td><code>{e(k)}</code></td><td class="num">{e(fmt_num(ch))}</td>'
            f'<td class="num">{e(fmt_num(cm))}</td>'
            f'<td class="num">{e(fmt_num(delta, signed=True) if delta is not None else "")}</td></tr>'
        )
    return table(
        ["Metric", "This version", "Champion at evaluation", "Delta"],
        rows,
        "No metric recorded.",
        cls="metrics",
    )


def reports_section(
    ctx: Ctx, verdict: Mapping[str, Any] | None, run_files: list[dict[str, Any]], run_folder: str | None
) -> str:
    items = []
    verdict = verdict or {}
    if verdict.get("report_html_uri"):
        items.append(
            f"<li>Evaluation report: {_link_uri(ctx, verdict['report_html_uri'], 'evaluation (HTML)')}</li>"
        )
    if verdict.get("verdict_uri"):
        items.append(f"<li>Verdict: {_link_uri(ctx, verdict['verdict_uri'], 'verdict (JSON)')}</li>")
    top = (
        f'<ul class="reports">{"".join(items)}</ul>'
        if items
        else '<p class="muted">The verdict names no report.</p>'
    )
    rows = []
    for f in run_files:
        url = ctx.artifact_url(f["key"])
        label = f["name"]
        kind = {
            "validation.html": "data-quality report",
            "validation.json": "data-quality result",
            "evaluation.html": "evaluation report",
            "verdict.json": "model-gate verdict",
        }.get(f["name"], "")
        link = f'<a href="{e(url)}">{e(label)}</a>' if url else e(label)
        rows.append(
            f"<tr><td>{e(f['task'])}</td><td>{link}</td><td>{e(kind)}</td>"
            f'<td class="num">{e(f.get("size_h"))}</td></tr>'
        )
    if run_folder is None:
        run = '<p class="muted">The lineage names no DAG run, so there is no run folder to list.</p>'
    else:
        run = f"<h3>Reports of the run (<code>{e(run_folder)}</code>)</h3>" + table(
            ["Task", "File", "What", "Size"], rows, "No report file in the run folder.", cls="run-files"
        )
    return f'<h2>Reports</h2><div class="card">{top}{run}</div>'


def model_card_section(card: str | None) -> str:
    """The version's model card (its Markdown rendered with every character escaped)."""
    from mlops_provider.core.model_card import card_html

    if not card:
        return '<h2 id="model-card">Model card</h2><p class="muted">This version has no model card.</p>'
    return f'<h2 id="model-card">Model card</h2><div class="card model-card">{card_html(card)}</div>'


def version_page(
    ctx: Ctx,
    mv: dict[str, Any],
    aliases_here: list[str],
    champion: Any,
    run_files: list[dict[str, Any]],
    run_folder: str | None,
    versions: list[dict[str, Any]],
    flash: str = "",
    card: str | None = None,
) -> str:
    name, number = mv["model"], mv["version"]
    verdict = mv.get("verdict") or None
    lin = mv.get("lineage") or {}
    summary = definitions(
        [
            ("Created", timestamp(mv.get("created_at"))),
            ("Estimator", f"<code>{e(mv.get('estimator'))}</code>" if mv.get("estimator") else ""),
            ("Aliases", alias_badges(aliases_here) or '<span class="muted">none</span>'),
            ("Model file", _link_uri(ctx, mv.get("model_uri"), mv.get("model_uri"))),
            ("Model sha256", f"<code>{e(mv.get('model_sha256'))}</code>"),
            ("Run key", f"<code>{e(mv.get('run_key'))}</code>" if mv.get("run_key") else ""),
        ]
    )
    if verdict:
        ok = bool(verdict.get("passed"))
        gate = (
            f'<div class="banner {"ok" if ok else "bad"}">'
            f'<span class="big">Gate {"passed" if ok else "FAILED"}</span> '
            f"\u00b7 decision: {e(verdict.get('decision'))}<div>{e(verdict.get('reason'))}</div></div>"
            + definitions(
                [
                    (
                        "Compared on",
                        f"<code>{e(verdict.get('compare_metric'))}</code>"
                        if verdict.get("compare_metric")
                        else "",
                    ),
                    (
                        "Champion then",
                        f"v{e(verdict['champion_version'])}"
                        if verdict.get("champion_version") is not None
                        else "none",
                    ),
                    ("Bootstrap policy", e(verdict.get("bootstrap"))),
                ]
            )
            + "<h3>Checks</h3>"
            + checks_table(verdict)
            + slice_gates_section(verdict)
        )
    else:
        gate = '<p class="muted">This version was registered without a model-gate verdict.</p>'
    # lineage: the run
    dag_id, run_id = lin.get("dag_id"), lin.get("run_id")
    run_link = (
        f'<a class="airflow-run" href="{e(ctx.run_url(dag_id, run_id))}">{e(run_id)}</a>'
        if dag_id and run_id
        else e(run_id)
    )
    run_items = definitions(
        [
            ("DAG", f'<a href="{e(ctx.dag_url(dag_id))}">{e(dag_id)}</a>' if dag_id else ""),
            ("Run", run_link),
            ("Task", e(lin.get("task_id"))),
            ("Try", e(lin.get("try_number"))),
            (
                "Data interval",
                f"{e(lin.get('data_interval_start'))} \u2192 {e(lin.get('data_interval_end'))}"
                if lin.get("data_interval_start") or lin.get("data_interval_end")
                else "",
            ),
            ("Seed", e(lin.get("seed"))),
            ("Bundle version", e(lin.get("bundle_version"))),
            ("Train rows", e(fmt_num(lin.get("train_rows")))),
            ("Train seconds", e(fmt_num(lin.get("train_seconds"), 2))),
        ]
    )
    code = lin.get("code") or {}
    code_items = (
        definitions(
            [
                ("File", f"<code>{e(code.get('file'))}</code>" if code.get("file") else ""),
                (
                    "File sha256",
                    f"<code>{e(code.get('file_sha256'))}</code>" if code.get("file_sha256") else "",
                ),
                ("Git commit", f"<code>{e(code.get('git_commit'))}</code>" if code.get("git_commit") else ""),
                (
                    "Uncommitted changes",
                    "yes" if code.get("git_dirty") else ("no" if "git_dirty" in code else ""),
                ),
            ]
        )
        or '<p class="muted">not recorded</p>'
    )
    packages = lin.get("packages") or {}
    pkg_rows = [f"<tr><td>{e(k)}</td><td><code>{e(v)}</code></td></tr>" for k, v in sorted(packages.items())]
    pkg_table = table(["Package", "Version"], pkg_rows, "not recorded", cls="packages")
    known = {
        "train_dataset",
        "eval_dataset",
        "dag_id",
        "run_id",
        "task_id",
        "try_number",
        "data_interval_start",
        "data_interval_end",
        "seed",
        "packages",
        "code",
        "bundle_version",
        "train_rows",
        "train_seconds",
        "model_sha256",
    }
    rest = {k: v for k, v in lin.items() if k not in known}
    more = f"<h3>More lineage</h3><pre>{e(pretty_json(rest))}</pre>" if rest else ""
    eval_ds = lin.get("eval_dataset") or (verdict or {}).get("eval_dataset")
    lineage = (
        '<h2>Lineage</h2><div class="grid">'
        + dataset_card(ctx, "Training data", lin.get("train_dataset"))
        + dataset_card(ctx, "Evaluation data", eval_ds)
        + "</div>"
        + '<div class="grid">'
        + f'<div class="card"><h3>Airflow run</h3>{run_items or "<p class=muted>not recorded</p>"}</div>'
        + f'<div class="card"><h3>Code</h3>{code_items}</div>'
        + f'<div class="card"><h3>Packages</h3>{pkg_table}</div>'
        + "</div>"
        + more
    )
    params = mv.get("params") or {}
    spec = mv.get("spec") or {}
    extra = ""
    if params or spec or mv.get("tags"):
        extra = (
            '<h2>Parameters and features</h2><div class="grid">'
            + (
                f'<div class="card"><h3>Parameters</h3><pre>{e(pretty_json(params))}</pre></div>'
                if params
                else ""
            )
            + (
                f'<div class="card"><h3>Feature spec</h3><pre>{e(pretty_json(spec))}</pre></div>'
                if spec
                else ""
            )
            + (
                f'<div class="card"><h3>Tags</h3><pre>{e(pretty_json(mv.get("tags")))}</pre></div>'
                if mv.get("tags")
                else ""
            )
            + "</div>"
        )
    promote = ""
    if number != champion:
        form = promote_form(ctx, name, versions, champion, fixed_version=number)
        promote = f'<div class="card"><h3>Promote</h3>{form}</div>'
    body = (
        f"<h1>{e(name)} v{e(number)} {alias_badges(aliases_here)}{gate_badge(verdict)}</h1>"
        f'<div class="card">{summary}</div>{promote}'
        f"<h2>Model gate</h2>{gate}"
        f"<h2>Metrics</h2>{metrics_table(verdict, mv.get('metrics') or {})}"
        + reports_section(ctx, verdict, run_files, run_folder)
        + lineage
        + extra
        + model_card_section(card)
    )
    crumbs = [("Models", f"{ctx.prefix}/"), (name, ctx.model_url(name)), (f"v{number}", None)]
    return page(ctx, f"{name} v{number}", body, crumbs, flash)


# --------------------------------------------------------------------------- one snapshot
def dataset_page_url(ctx: Ctx, uri: Any) -> str | None:
    """The snapshot page of a snapshot folder URI (``datasets/<name>/<sha256>``), or None."""
    if not isinstance(uri, str) or not uri:
        return None
    sha = uri.rstrip("/").rsplit("/", 1)[-1]
    if len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha):
        return None  # not a snapshot folder (a file, or a URI outside the layout)
    url = ctx.artifact_url(f"{uri.rstrip('/')}/manifest.json")
    marker = f"{ctx.prefix}/artifacts/datasets/"
    if not url or not url.startswith(marker) or not url.endswith("/manifest.json"):
        return None
    return f"{ctx.prefix}/datasets/{url[len(marker) : -len('/manifest.json')]}"


MAX_SOURCE_OBJECTS = 50


def _source_object_row(o: Any) -> str:
    if not isinstance(o, Mapping):
        return f"<tr><td><code>{e(o)}</code></td><td></td><td></td></tr>"
    version = o.get("etag") or o.get("sha256") or o.get("version") or o.get("mtime") or ""
    return (
        f"<tr><td><code>{e(o.get('uri') or o.get('path'))}</code></td>"
        f'<td class="num">{e(fmt_num(o.get("size")))}</td><td><code>{e(short(version, 40))}</code></td></tr>'
    )


def dataset_page(ctx: Ctx, manifest: Mapping[str, Any], used_by: list[dict[str, Any]]) -> str:
    """A snapshot: what it is (manifest: rows, sha256, size, source, query/objects, the run that
    extracted it), its schema, the versions trained or judged on it, and downloads."""
    uri = str(manifest.get("uri") or "")
    name, sha = manifest.get("name"), manifest.get("sha256")
    extra = manifest.get("extra") or {}
    dag_id, run_id = extra.get("dag_id"), extra.get("run_id")
    start, end = extra.get("data_interval_start"), extra.get("data_interval_end")
    window = charts.window_label(
        None if start in (None, "None") else start, None if end in (None, "None") else end
    )
    summary = definitions(
        [
            ("URI", f"<code>{e(uri)}</code>"),
            ("sha256", f'<code class="sha">{e(sha)}</code>'),
            ("Rows", e(fmt_num(manifest.get("rows")))),
            ("Columns", e(len(manifest.get("columns") or []))),
            ("Size", e(fmt_num(manifest.get("size_bytes"))) + " bytes" if manifest.get("size_bytes") else ""),
            ("Created", timestamp(manifest.get("created_at"))),
            ("Source", e(manifest.get("source"))),
            ("Source kind", e(extra.get("source_kind"))),
            ("Window", e(window) if window != "-" else ""),
            (
                "Extracted by",
                f'<a href="{e(ctx.run_url(dag_id, run_id))}">{e(dag_id)} / {e(run_id)}</a>'
                if dag_id and run_id
                else "",
            ),
        ]
    )
    downloads = " \u00b7 ".join(
        link
        for link in (
            _link_uri(ctx, f"{uri.rstrip('/')}/manifest.json", "manifest.json"),
            _link_uri(ctx, f"{uri.rstrip('/')}/data.parquet", "data.parquet (Parquet)"),
        )
        if link.startswith("<a ")
    )
    schema = table(
        ["Column", "Type"],
        [
            f"<tr><td><code>{e(c.get('name'))}</code></td><td>{e(c.get('type'))}</td></tr>"
            for c in manifest.get("columns") or []
        ],
        "no columns recorded",
        cls="schema",
    )
    query = f'<h2>Query</h2><pre class="query">{e(manifest["query"])}</pre>' if manifest.get("query") else ""
    objects = extra.get("source_objects") or []
    objects_html = ""
    if objects:
        shown = objects[:MAX_SOURCE_OBJECTS]
        rows_html = [_source_object_row(o) for o in shown]
        more = (
            f'<p class="muted">and {len(objects) - len(shown)} more</p>' if len(objects) > len(shown) else ""
        )
        objects_html = (
            "<h2>Source objects</h2>"
            + table(["Object", "Bytes", "Version"], rows_html, "", cls="objects")
            + more
        )
    used_rows = [
        f'<tr><td><a href="{e(ctx.model_url(u["model"]))}">{e(u["model"])}</a></td>'
        f'<td><a href="{e(ctx.version_url(u["model"], u["version"]))}">v{e(u["version"])}</a></td>'
        f"<td>{e(u['role'])}</td></tr>"
        for u in used_by
    ]
    body = (
        f"<h1>Snapshot {e(name)} <code>{e(short(sha, 12))}</code></h1>"
        f'<div class="card">{summary}<p>{downloads or ""}</p></div>'
        "<h2>Versions trained or judged on it</h2>"
        + table(
            ["Model", "Version", "Used for"],
            used_rows,
            "No registered version you may read used it.",
            cls="used-by",
        )
        + "<h2>Schema</h2>"
        + schema
        + query
        + objects_html
    )
    crumbs = [("Models", f"{ctx.prefix}/"), (f"snapshot {name} {short(sha, 12)}", None)]
    return page(ctx, f"Snapshot {name} {short(sha, 12)}", body, crumbs)
