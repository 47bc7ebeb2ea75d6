"""The model page's comparison aids, server-rendered (no JavaScript): each version's evaluation
window, its comparison with the champion of the day on that same window, and the metric over
versions as an inline SVG chart.

A version's metric was measured on its own evaluation window; two versions' values are comparable
only when the windows are the same. The chart therefore shows, per version, its own value (filled)
and, when it was judged against a champion, the champion's value on the *same* window (hollow),
with the confidence interval of the improvement the promotion rule used.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from mlops_provider.core.html import escape as e
from mlops_provider.core.html import number as fmt_num

# chart geometry (px); text never under 12 px
WIDTH, HEIGHT = 860, 300
LEFT, RIGHT, TOP, BOTTOM = 64, 16, 34, 64
FONT = 12
CHALLENGER, CHAMPION, FAILED = "#1f77b4", "#e8710a", "#c5221f"


# --------------------------------------------------------------------------- windows
def _date(value: Any) -> dt.datetime | None:
    if not value:
        return None
    try:
        t = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return t


def evaluation_window(mv: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """``[start, end)`` of the data a version was judged on: the evaluation snapshot's own interval
    when the verdict recorded it, else the data interval of the run that registered the version."""
    verdict = mv.get("verdict") or {}
    ds = verdict.get("eval_dataset") or (mv.get("lineage") or {}).get("eval_dataset") or {}
    window = ds.get("window") if isinstance(ds, Mapping) else None
    if isinstance(window, (list, tuple)) and len(window) == 2 and any(window):
        return (str(window[0]) if window[0] else None, str(window[1]) if window[1] else None)
    lin = mv.get("lineage") or {}
    start, end = lin.get("data_interval_start"), lin.get("data_interval_end")
    if start in (None, "None") and end in (None, "None"):
        return None, None
    return (None if start in (None, "None") else str(start), None if end in (None, "None") else str(end))


def window_label(start: str | None, end: str | None) -> str:
    """``Jun 2013`` for exactly one calendar month, ``2013-06-01 → 2013-06-15`` for whole days,
    the timestamps otherwise; ``-`` when unknown."""
    a, b = _date(start), _date(end)
    if a is None and b is None:
        return "-"
    if a is not None and b is not None:
        midnight = all(t.time() == dt.time(0) for t in (a, b))
        if midnight and a.day == 1 and b.day == 1 and (b.year * 12 + b.month) - (a.year * 12 + a.month) == 1:
            return a.strftime("%b %Y")
        if midnight:
            return f"{a:%Y-%m-%d} \u2192 {b:%Y-%m-%d}"
    return f"{start or '?'} \u2192 {end or '?'}"


def eval_rows(mv: Mapping[str, Any]) -> Any:
    verdict = mv.get("verdict") or {}
    ds = verdict.get("eval_dataset") or (mv.get("lineage") or {}).get("eval_dataset") or {}
    return ds.get("rows") if isinstance(ds, Mapping) else None


# --------------------------------------------------------------------------- comparison
def comparison(mv: Mapping[str, Any], metric: str | None) -> dict[str, Any] | None:
    """The version's judgement against the champion of the day on the same window: ``champion_version``,
    both values, the improvement (positive = better) and its interval in the metric's own units
    (``lo``/``hi`` around the challenger's value), or None when it was not compared on ``metric``."""
    verdict = mv.get("verdict") or {}
    champ_version = verdict.get("champion_version")
    if champ_version is None or not metric:
        return None
    metrics = verdict.get("metrics") or {}
    ch = (metrics.get("challenger") or {}).get(metric)
    cm = (metrics.get("champion") or {}).get(metric)
    comp = verdict.get("comparison") or {}
    if comp.get("metric") == metric:
        ch = comp.get("challenger", ch)
        cm = comp.get("champion", cm)
    if not _finite(ch) or not _finite(cm):
        return None
    higher = (verdict.get("directions") or {}).get(metric, "higher") != "lower"
    out: dict[str, Any] = {
        "champion_version": champ_version,
        "challenger": float(ch),
        "champion": float(cm),
        "improvement": float(ch) - float(cm) if higher else float(cm) - float(ch),
        "higher_is_better": higher,
    }
    if comp.get("metric") == metric and _finite(comp.get("ci_low")) and _finite(comp.get("ci_high")):
        lo, hi = float(comp["ci_low"]), float(comp["ci_high"])
        out.update(ci_low=lo, ci_high=hi, confidence=comp.get("confidence"), method=comp.get("method"))
        # the interval of the improvement, mapped onto the challenger's value
        out["lo"], out["hi"] = (
            (float(cm) + lo, float(cm) + hi) if higher else (float(cm) - hi, float(cm) - lo)
        )
    return out


def _finite(v: Any) -> bool:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return False
    return f == f and f not in (float("inf"), float("-inf"))


def comparison_cell(mv: Mapping[str, Any], metric: str | None) -> str:
    """``v2 0.7101 → 0.7123 (+0.0022, 95% CI [-0.0010, +0.0054])`` for the versions table."""
    c = comparison(mv, metric)
    if c is None:
        verdict = mv.get("verdict") or {}
        return '<span class="muted">first version</span>' if verdict else ""
    text = (
        f"v{e(c['champion_version'])} {e(fmt_num(c['champion']))} \u2192 {e(fmt_num(c['challenger']))} "
        f'<span class="{"better" if c["improvement"] > 0 else "worse"}">'
        f"({e(fmt_num(c['improvement'], signed=True))}"
    )
    if "ci_low" in c:
        conf = c.get("confidence")
        pct = f"{round(float(conf) * 100)}% " if _finite(conf) else ""
        text += (
            f", {e(pct)}CI [{e(fmt_num(c['ci_low'], signed=True))}, {e(fmt_num(c['ci_high'], signed=True))}]"
        )
    return text + ")</span>"


# --------------------------------------------------------------------------- the chart
def metric_chart(versions: list[Mapping[str, Any]], metric: str | None, champion: Any = None) -> str:
    """An inline SVG: ``metric`` per version (in version order) on its own evaluation window, the
    champion of the day on the same window beside it, and the improvement's interval; empty when
    no version has the metric."""
    points = []
    for mv in versions:
        value = (mv.get("metrics") or {}).get(metric) if metric else None
        if not _finite(value):
            continue
        points.append((mv, float(value), comparison(mv, metric)))
    if not points:
        return ""
    values = [v for _, v, _ in points]
    for _, _, c in points:
        if c:
            values += [c["champion"]] + [c[k] for k in ("lo", "hi") if k in c]
    lo, hi = min(values), max(values)
    pad = (hi - lo) * 0.12 or max(abs(hi) * 0.02, 0.01)
    lo, hi = lo - pad, hi + pad
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    step = plot_w / max(len(points), 1)

    def y(v: float) -> float:
        return TOP + plot_h * (1 - (v - lo) / (hi - lo))

    parts = [
        f'<svg class="metric-chart" id="metric-chart" role="img" xmlns="http://www.w3.org/2000/svg" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" font-size="{FONT}" '
        f'aria-label="{e(metric)} per version on each version\u2019s own evaluation window">',
        f'<text x="{LEFT}" y="18" class="chart-title" font-weight="600">{e(metric)} per version, each '
        "on its own evaluation window; bars: interval of the improvement over the champion</text>",
    ]
    for i in range(5):  # y grid and ticks
        v = lo + (hi - lo) * i / 4
        yy = y(v)
        parts.append(
            f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{yy:.1f}" y2="{yy:.1f}" class="grid-line"/>'
            f'<text x="{LEFT - 6}" y="{yy + 4:.1f}" text-anchor="end">{e(fmt_num(v, 3))}</text>'
        )
    own = []
    for i, (mv, value, c) in enumerate(points):
        x = LEFT + step * (i + 0.5)
        start, end = evaluation_window(mv)
        label = window_label(start, end)
        verdict = mv.get("verdict") or {}
        failed = bool(verdict) and not verdict.get("passed")
        tip = f"v{mv.get('version')} on {label}"
        rows = eval_rows(mv)
        if rows is not None:
            tip += f" ({fmt_num(rows)} rows)"
        tip += f": {metric} {fmt_num(value)}"
        if c:
            tip += f"; champion v{c['champion_version']} on the same window {fmt_num(c['champion'])}"
            tip += f"; improvement {fmt_num(c['improvement'], signed=True)}"
            if "ci_low" in c:
                tip += f" [{fmt_num(c['ci_low'], signed=True)}, {fmt_num(c['ci_high'], signed=True)}]"
            cx = x - 14
            parts.append(
                f'<g class="champion-point" data-v="{e(mv.get("version"))}">'
                f"<title>{e(tip)}</title>"
                f'<line x1="{cx:.1f}" x2="{x:.1f}" y1="{y(c["champion"]):.1f}" y2="{y(value):.1f}" '
                f'stroke="{CHAMPION}" stroke-dasharray="3 2"/>'
                f'<circle cx="{cx:.1f}" cy="{y(c["champion"]):.1f}" r="5" fill="none" stroke="{CHAMPION}" '
                f'stroke-width="2"/></g>'
            )
            if "lo" in c:
                parts.append(
                    f'<line class="ci" x1="{x:.1f}" x2="{x:.1f}" y1="{y(c["lo"]):.1f}" y2="{y(c["hi"]):.1f}" '
                    f'stroke="{CHALLENGER}" stroke-width="2"/>'
                    f'<line x1="{x - 5:.1f}" x2="{x + 5:.1f}" y1="{y(c["lo"]):.1f}" y2="{y(c["lo"]):.1f}" '
                    f'stroke="{CHALLENGER}"/>'
                    f'<line x1="{x - 5:.1f}" x2="{x + 5:.1f}" y1="{y(c["hi"]):.1f}" y2="{y(c["hi"]):.1f}" '
                    f'stroke="{CHALLENGER}"/>'
                )
        color = FAILED if failed else CHALLENGER
        ring = ' stroke="#f2b600" stroke-width="3"' if mv.get("version") == champion else ""
        own.append((x, y(value)))
        parts.append(
            f'<g class="version-point" data-v="{e(mv.get("version"))}" data-window="{e(label)}">'
            f"<title>{e(tip)}</title>"
            f'<circle cx="{x:.1f}" cy="{y(value):.1f}" r="6" fill="{color}"{ring}/></g>'
            f'<text x="{x:.1f}" y="{HEIGHT - BOTTOM + 18}" text-anchor="middle" font-weight="600">'
            f"v{e(mv.get('version'))}</text>"
            f'<text x="{x:.1f}" y="{HEIGHT - BOTTOM + 34}" text-anchor="middle" class="window">'
            f"{e(label)}</text>"
        )
    legend_y = HEIGHT - 10
    parts.append(
        f'<g class="legend"><circle cx="{LEFT + 6}" cy="{legend_y - 4}" r="6" fill="{CHALLENGER}"/>'
        f'<text x="{LEFT + 18}" y="{legend_y}">version, own window</text>'
        f'<circle cx="{LEFT + 186}" cy="{legend_y - 4}" r="5" fill="none" stroke="{CHAMPION}" '
        'stroke-width="2"/>'
        f'<text x="{LEFT + 198}" y="{legend_y}">champion of the day, same window</text>'
        f'<circle cx="{LEFT + 440}" cy="{legend_y - 4}" r="6" fill="{FAILED}"/>'
        f'<text x="{LEFT + 452}" y="{legend_y}">gate failed</text>'
        f'<circle cx="{LEFT + 560}" cy="{legend_y - 4}" r="6" fill="{CHALLENGER}" stroke="#f2b600" '
        f'stroke-width="3"/><text x="{LEFT + 574}" y="{legend_y}">champion now</text></g>'
    )
    parts.append("</svg>")
    return "".join(parts)
