"""Model cards: one Markdown page per registered version, built only from what the registry recorded
(metadata, verdict, lineage, the alias log), stored as ``model_card.md`` next to the version.

The card says what the model is for (``intended_use``), what it was trained and judged on (the
snapshots' URIs, sha256 and rows, the run's data interval), how it measured (every metric of the
evaluation, the compare metric's improvement over the champion with its confidence interval, the
per-slice metrics when the evaluation recorded them), which gates it passed, who promoted it, and
its known limitations (the configured ones, then what follows from the data: the evaluation window,
the classes seen, the rows).

:func:`card_html` renders the Markdown subset the cards use (headings, paragraphs, lists, tables,
code) to HTML with **every** character of the text escaped first: a card never carries HTML of its
own, whatever a field holds. Standard library only.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping
from typing import Any

from mlops_provider.core.html import escape


# --------------------------------------------------------------------------- text helpers
def _cell(value: Any) -> str:
    """A value as one Markdown table cell: no newline, pipes escaped."""
    text = "" if value is None else str(value)
    return " ".join(text.split()).replace("|", "\\|") or "-"


def _num(value: Any, digits: int = 4) -> str:
    if isinstance(value, bool) or value is None:
        return "-" if value is None else str(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return "NaN" if math.isnan(value) else f"{value:.{digits}f}"
    return str(value)


def _code(value: Any) -> str:
    """Inline code (backticks inside become quotes: the renderer has no escape for them)."""
    return "`" + " ".join(str(value).split()).replace("`", "'") + "`"


def _table(headers: list[str], rows: Iterable[Iterable[Any]]) -> list[str]:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return lines


def default_intended_use(name: str, spec: Mapping[str, Any] | None) -> str:
    """What the model is for when the template does not say: derived from its name and label."""
    spec = spec or {}
    label, task = spec.get("label") or "the label", spec.get("task")
    classes = spec.get("classes") or []
    if task == "classification" and len(classes) == 2 and spec.get("positive_label") is not None:
        what = f"the probability that {label!s} is {spec['positive_label']!s}"
    elif task == "classification":
        what = f"the class of {label!s} among {len(classes)} classes"
    else:
        what = f"the value of {label!s}"
    return (
        f"{name} predicts {what} for rows like those it was trained on, for batch scoring within the "
        "pipeline that trained it. Not validated for other populations or time periods."
    )


# --------------------------------------------------------------------------- the card
def build_card(
    mv: Mapping[str, Any], *, events: Iterable[Mapping[str, Any]] = (), promotion: str = ""
) -> str:
    """The Markdown card of a version (``ModelVersion.to_dict()``); ``events`` are its alias-log
    entries (who moved an alias to it, when, why), ``promotion`` why it was (not) promoted."""
    name, version = mv.get("model"), mv.get("version")
    lin = mv.get("lineage") or {}
    spec = mv.get("spec") or {}
    verdict = mv.get("verdict") or {}
    about = lin.get("model_card") or {}
    out = [f"# Model card: {name} v{version}", ""]
    out += [
        f"Registered {mv.get('created_at') or '-'} by run {_code(lin.get('run_id') or '-')} of "
        f"{_code(lin.get('dag_id') or '-')}; model file sha256 {_code(mv.get('model_sha256') or '-')}.",
        "",
    ]
    out += ["## Intended use", "", str(about.get("intended_use") or default_intended_use(name, spec)), ""]
    out += _model_section(mv, spec)
    out += _data_section(lin, verdict)
    out += _metrics_section(verdict, mv.get("metrics") or {})
    out += _slices_section(verdict)
    out += _gates_section(verdict)
    out += _promotion_section(events, promotion)
    out += _check_section(lin.get("registration_check"))
    out += _limitations_section(about.get("limitations") or [], lin, verdict, spec)
    return "\n".join(out).rstrip() + "\n"


def _model_section(mv, spec) -> list[str]:
    out = ["## Model", ""]
    out.append(f"- Estimator: {_code(mv.get('estimator') or '-')}")
    task = spec.get("task")
    kind = (
        "regression"
        if task != "classification"
        else ("multiclass" if len(spec.get("classes") or []) > 2 else "binary")
    )
    out.append(f"- Task: {kind}; label {_code(spec.get('label'))}")
    if task == "classification":
        out.append("- Classes: " + ", ".join(_code(c) for c in spec.get("classes") or []))
        if spec.get("positive_label") is not None:
            out.append(f"- Positive class: {_code(spec['positive_label'])}")
    out.append("- Numeric features: " + (", ".join(_code(c) for c in spec.get("numeric") or []) or "none"))
    out.append(
        "- Categorical features: " + (", ".join(_code(c) for c in spec.get("categorical") or []) or "none")
    )
    params = mv.get("params") or {}
    if params:
        out.append("- Parameters: " + _code(json.dumps(params, sort_keys=True, default=str)))
    return out + [""]


def _data_section(lin, verdict) -> list[str]:
    rows = []
    for role, ds in (
        ("Training", lin.get("train_dataset")),
        ("Evaluation", lin.get("eval_dataset") or verdict.get("eval_dataset")),
    ):
        ds = ds or {}
        rows.append([role, _code(ds.get("uri") or "-"), _code(ds.get("sha256") or "-"), _num(ds.get("rows"))])
    out = ["## Data", ""]
    start, end = lin.get("data_interval_start"), lin.get("data_interval_end")
    if start or end:
        out += [f"Data interval of the run: {start or '-'} to {end or '-'}.", ""]
    return out + _table(["Role", "Snapshot", "sha256", "Rows"], rows) + [""]


def _metrics_section(verdict, metrics) -> list[str]:
    challenger = (verdict.get("metrics") or {}).get("challenger") or metrics
    champion = (verdict.get("metrics") or {}).get("champion") or {}
    if not challenger:
        return ["## Metrics", "", "No evaluation was recorded for this version.", ""]
    cmp = verdict.get("comparison") or {}
    out = ["## Metrics", "", "On the evaluation snapshot:", ""]
    headers = ["Metric", "Value"] + (["Champion then", "Improvement", "Interval"] if champion else [])
    rows = []
    for metric, value in challenger.items():
        row = [metric, _num(value)]
        if champion:
            row.append(_num(champion.get(metric)))
            if cmp.get("metric") == metric:
                level = f"{cmp.get('confidence', 0):.0%}"
                row += [
                    _num(cmp.get("improvement")),
                    f"[{_num(cmp.get('ci_low'))}, {_num(cmp.get('ci_high'))}] ({level})",
                ]
            else:
                row += ["", ""]
        rows.append(row)
    out += _table(headers, rows) + [""]
    if cmp:
        out += [
            f"The interval is the {cmp.get('method')} {float(cmp.get('confidence') or 0):.0%} confidence "
            f"interval of the improvement on {_code(cmp.get('metric'))} over the "
            "champion (positive = better).",
            "",
        ]
    return out


def _slices_section(verdict) -> list[str]:
    slices = verdict.get("slices")
    if not isinstance(slices, list) or not slices or not all(isinstance(s, Mapping) for s in slices):
        return []
    headers: list[str] = []
    for s in slices:
        headers += [k for k in s if k not in headers]
    rows = [[_num(s.get(h)) if isinstance(s.get(h), float) else s.get(h) for h in headers] for s in slices]
    return ["## Slices", ""] + _table(headers, rows) + [""]


def _gates_section(verdict) -> list[str]:
    if not verdict:
        return ["## Gates", "", "Registered without a model-gate verdict.", ""]
    out = [
        "## Gates",
        "",
        f"Gate {'passed' if verdict.get('passed') else 'FAILED'}: {verdict.get('reason') or '-'}",
        "",
    ]
    checks = verdict.get("checks") or []
    if checks:
        rows = [
            [
                c.get("kind"),
                c.get("metric"),
                f"{c.get('op')} {_num(c.get('threshold'))}",
                _num(c.get("challenger")),
                _num(c.get("champion")),
                "passed" if c.get("passed") else "FAILED",
            ]
            for c in checks
            if isinstance(c, Mapping)
        ]
        out += _table(["Check", "Metric", "Needs", "Value", "Champion", "Result"], rows) + [""]
    return out


def _promotion_section(events, promotion: str) -> list[str]:
    events = list(events)
    out = ["## Promotion", ""]
    if events:
        rows = [
            [e.get("alias"), e.get("action"), e.get("actor"), e.get("updated_at"), e.get("reason")]
            for e in events
        ]
        out += _table(["Alias", "Action", "By", "When", "Reason"], rows) + [""]
    else:
        out += [f"Not promoted{': ' + promotion if promotion else ''}.", ""]
    return out


def _check_section(check) -> list[str]:
    if not check:
        return []
    if not check.get("compared"):
        return [
            "## Registration check",
            "",
            f"Loaded in a fresh process; predictions not compared ({check.get('why')}).",
            "",
        ]
    return [
        "## Registration check",
        "",
        "Loaded through the safe loader in a fresh process, the registered file predicted the judged "
        f"model's labels and values on {check.get('rows_checked')} sampled evaluation rows: "
        f"{check.get('rows_differing')} differing, largest difference {check.get('max_diff')!r} "
        f"(tolerance {check.get('tolerance')!r}), "
        f"{check.get('seconds')} s.",
        "",
    ]


def _limitations_section(configured, lin, verdict, spec) -> list[str]:
    items = [str(x) for x in configured]
    ev = lin.get("eval_dataset") or verdict.get("eval_dataset") or {}
    tr = lin.get("train_dataset") or {}
    start, end = lin.get("data_interval_start"), lin.get("data_interval_end")
    window = f" (run interval {start} to {end})" if start or end else ""
    if ev.get("rows") is not None:
        items.append(
            f"Measured on {ev['rows']} evaluation rows only{window}; performance on other periods or "
            "populations is not measured."
        )
    if tr.get("rows") is not None:
        items.append(f"Trained on {tr['rows']} rows.")
    if spec.get("task") == "classification" and spec.get("classes"):
        items.append(
            "Predicts only the classes seen in training: "
            + ", ".join(_code(c) for c in spec["classes"])
            + "."
        )
    if not items:
        return []
    return ["## Known limitations", ""] + [f"- {x}" for x in items] + [""]


# --------------------------------------------------------------------------- rendering
_INLINE_CODE = re.compile(r"`([^`]*)`")


def _inline(text: str) -> str:
    """Escaped text; ``code`` spans become <code> (their content escaped too)."""
    parts = _INLINE_CODE.split(text)
    return "".join(f"<code>{escape(p)}</code>" if i % 2 else escape(p) for i, p in enumerate(parts))


def _split_row(line: str) -> list[str]:
    s = line.strip()
    s = s[1:] if s.startswith("|") else s
    s = s[:-1] if s.endswith("|") and not s.endswith("\\|") else s
    return [c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", s)]


def card_html(markdown: str) -> str:
    """HTML of a card's Markdown: headings, paragraphs, ``-`` lists, pipe tables, inline code. All
    text is escaped; no HTML in the Markdown survives as markup."""
    html: list[str] = []
    lines = (markdown or "").splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if not line.strip():
            i += 1
        elif m := re.match(r"(#{1,4}) (.*)", line):
            level = min(len(m.group(1)) + 1, 5)  # the page has its own <h1>
            html.append(f"<h{level}>{_inline(m.group(2))}</h{level}>")
            i += 1
        elif line.startswith("- "):
            items = []
            while i < len(lines) and lines[i].startswith("- "):
                items.append(f"<li>{_inline(lines[i][2:])}</li>")
                i += 1
            html.append("<ul>" + "".join(items) + "</ul>")
        elif line.startswith("|"):
            rows = []
            while i < len(lines) and lines[i].startswith("|"):
                rows.append(lines[i])
                i += 1
            head = _split_row(rows[0])
            body = rows[2:] if len(rows) > 1 and set(rows[1]) <= set("|-: ") else rows[1:]
            thead = "".join(f"<th>{_inline(c)}</th>" for c in head)
            trs = "".join(
                "<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in _split_row(r)) + "</tr>" for r in body
            )
            html.append(
                f'<table class="card-table"><thead><tr>{thead}</tr></thead><tbody>{trs}</tbody></table>'
            )
        else:
            para = []
            while i < len(lines) and lines[i].strip() and not re.match(r"(#{1,4} |- |\|)", lines[i]):
                para.append(lines[i].strip())
                i += 1
            html.append(f"<p>{_inline(' '.join(para))}</p>")
    return "\n".join(html)
