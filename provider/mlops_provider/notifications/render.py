"""One alert for the quality gates of a DAG run: a message model (:class:`GateAlert`: subject, the
JSON payload) built from the gate results, and its views: plain text, HTML (the shared HTML kit) and
Slack blocks. Every number says by how much; every gate links to its report and task log."""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from mlops_provider.core.errors import InvalidParameterError
from mlops_provider.core.html import compact, escape, percent
from mlops_provider.urls import absolute_base_url, dag_run_url, task_url
from mlops_provider.urls import model_version_url as _model_version_url

log = logging.getLogger(__name__)

SUBJECT_MAX = 250


MAX_LISTED_VALUES = 20


# status of one gate, worst first; "problems" are the ones that trigger notify_on="problems"
STATUS_ORDER = ("failed", "error", "skipped", "warned", "not_run", "passed")


PROBLEM_STATUSES = frozenset({"failed", "error", "skipped", "warned"})


STATUS_NOTE = {
    "failed": "the gate failed and stopped the run",
    "error": "the gate task failed without producing a gate result",
    "skipped": "the gate failed; downstream tasks were skipped (on_fail='skip')",
    "warned": "the gate failed; the run continued (on_fail='warn')",
    "not_run": "the gate task did not run",
    "passed": "the gate passed",
}


def airflow_base_url() -> str:
    """``[api] base_url`` of the Airflow deployment (no trailing slash), or the local default."""
    return absolute_base_url()


def model_version_url(base_url: str, model: str, version: Any) -> str | None:
    return _model_version_url(model, version, base_url)


class _NoFileSystem:
    """Stand-in filesystem: the linker only needs the store's addressing, never its I/O."""


class ArtifactLinker:
    """``{base_url}/mlops/artifacts/{key}`` for a URI under the artifact root; the raw URI otherwise."""

    def __init__(self, base_url: str, artifact_root: str | None = None):
        self.base_url = base_url.rstrip("/")
        self.store = None
        try:
            from mlops_provider.core.storage import ArtifactStore
            from mlops_provider.hooks.artifacts import resolve_root

            self.store = ArtifactStore(resolve_root(artifact_root), fs=_NoFileSystem())
        except Exception as err:  # links are a convenience: never fail an alert over them
            log.warning("Artifact links disabled: could not resolve the artifact root: %s", err)

    def __call__(self, uri: Any) -> str | None:
        if not isinstance(uri, str) or not uri:
            return None
        if self.store is None or "://" not in uri:
            return uri
        from mlops_provider.urls import artifact_url

        return artifact_url(self.store, uri, self.base_url) or uri


@dataclass
class GateAlert:
    """A rendered alert: ``payload`` is the JSON body of webhooks (and SNS with ``message_format='json'``)."""

    subject: str
    text: str
    html: str
    payload: dict[str, Any]

    @property
    def status(self) -> str:
        return self.payload["status"]

    @property
    def has_problems(self) -> bool:
        return any(_is_problem(g) for g in self.payload["gates"])


def _is_problem(g: dict[str, Any]) -> bool:
    """A failed, skipped or warned gate, or one that did not run because another task failed."""
    return g["status"] in PROBLEM_STATUSES or (g["status"] == "not_run" and bool(g.get("cause")))


def render_gate_alert(
    results: Sequence[dict[str, Any]],
    *,
    dag_id: str,
    run_id: str,
    task_links: dict[str, str] | None = None,
    base_url: str | None = None,
    artifact_root: str | None = None,
) -> GateAlert:
    """Render one alert for the gate results of one DAG run.

    :param results: gate results as pushed to XCom (``ValidationReport.to_dict()``, the
        ``EvaluateModelOperator`` verdict). Each may carry ``task_id`` and ``task_state`` (the gate
        task's final state: ``failed`` / ``skipped`` / ``success``, which tells a failed gate from one that
        was skipped or only warned). A dict with a ``task_id`` and no ``gate`` stands for a gate task
        that left no result (it errored, or did not run).
    :param task_links: ``task_id -> URL`` of the task's log page (defaults to the Airflow 3 UI URL).
    :param base_url: the Airflow UI base URL (default ``[api] base_url``).
    :param artifact_root: for artifact links (default: the resolved artifact root).
    """
    if isinstance(results, dict):
        results = [results]
    if not isinstance(results, (list, tuple)) or not results:
        raise InvalidParameterError(
            f"render_gate_alert needs a non-empty list of gate results. Got {results!r}."
        )
    base_url = (base_url or airflow_base_url()).rstrip("/")
    links = ArtifactLinker(base_url, artifact_root)
    task_links = dict(task_links or {})
    gates = []
    for i, result in enumerate(results):
        if not isinstance(result, dict):
            raise InvalidParameterError(
                f"Gate result #{i} must be a dict. Got {type(result).__name__}: {result!r}."
            )
        task_id = result.get("task_id")
        log_link = task_links.get(task_id) if task_id else None
        if task_id and not log_link:
            log_link = task_url(base_url, dag_id, run_id, task_id, result.get("map_index"))
        gate = result.get("gate")
        if gate == "data":
            entry = _data_entry(result, links, base_url)
        elif gate == "model":
            entry = _model_entry(result, links, base_url)
        elif gate is None and task_id:
            entry = _missing_entry(result)
        else:
            raise InvalidParameterError(
                f"Gate result #{i} has 'gate' {gate!r}; expected 'data' (ValidateDataOperator) or 'model' "
                f"(EvaluateModelOperator). Keys: {sorted(result)}."
            )
        entry["task_id"] = task_id
        entry["task_state"] = result.get("task_state")
        entry["links"]["task_log"] = log_link
        entry["links"] = {k: v for k, v in entry["links"].items() if v}
        gates.append(entry)
    status = min((g["status"] for g in gates), key=STATUS_ORDER.index)
    kinds = {g["gate"] for g in gates if g["gate"]}
    payload = {
        "source": "mlops_provider",
        "kind": "quality_gate_alert",
        "gate": kinds.pop() if len(kinds) == 1 else ("mixed" if kinds else None),
        "status": status,
        "subject": "",
        "dag_id": dag_id,
        "run_id": run_id,
        "gates": gates,
        "links": {"dag_run": dag_run_url(base_url, dag_id, run_id)},
    }
    payload["subject"] = _subject(payload)
    payload = _jsonable(payload)
    return GateAlert(
        subject=payload["subject"], text=_text(payload), html=_html_body(payload), payload=payload
    )


def _gate_status(passed: bool, task_state: str | None) -> str:
    if passed:
        return "passed"
    state = str(task_state).lower().rsplit(".", 1)[-1] if task_state is not None else None
    return {"skipped": "skipped", "success": "warned"}.get(state, "failed")


def _dataset_name(uri: Any) -> str | None:
    m = re.search(r"/datasets/([^/]+)/[0-9a-f]{16,}", uri) if isinstance(uri, str) else None
    return m.group(1) if m else None


def _data_entry(r: dict[str, Any], links: ArtifactLinker, base_url: str) -> dict[str, Any]:
    results = r.get("results") or []
    failures = r.get("failures")
    if failures is None:
        failures = [x for x in results if not x.get("success")]
    suite = r.get("suite_name")
    name = (
        _dataset_name(r.get("dataset_uri"))
        or (suite if suite and suite != "suite" else None)
        or r.get("task_id")
    )
    evaluated = r.get("evaluated", len(results))
    unsuccessful = r.get("unsuccessful", len(failures))
    return {
        "gate": "data",
        "status": _gate_status(bool(r.get("success")), r.get("task_state")),
        "name": name,
        "suite": suite,
        "dataset": {
            "name": _dataset_name(r.get("dataset_uri")),
            "uri": r.get("dataset_uri"),
            "sha256": r.get("dataset_sha256"),
        },
        "evaluated": evaluated,
        "successful": r.get("successful", evaluated - unsuccessful if isinstance(evaluated, int) else None),
        "unsuccessful": unsuccessful,
        "success_percent": r.get("success_percent"),
        "failures": [_failure(f) for f in failures],
        "summary": r.get("summary"),
        "report_uri": r.get("report_uri"),
        "report_html_uri": r.get("report_html_uri"),
        "links": {
            "report": links(r.get("report_html_uri")) or links(r.get("report_uri")),
            "report_json": links(r.get("report_uri")) if r.get("report_html_uri") else None,
        },
    }


def _failure(f: dict[str, Any]) -> dict[str, Any]:
    kwargs = dict(f.get("kwargs") or {})
    column = f.get("column") or kwargs.get("column")
    expected = {k: v for k, v in kwargs.items() if k not in ("column", "batch_id")}
    examples: list[Any] = []
    for v in f.get("unexpected_examples") or []:
        if v not in examples:
            examples.append(v)
    return {
        "expectation": f.get("expectation"),
        "column": column,
        "expected": expected,
        "observed_value": f.get("observed_value"),
        "element_count": f.get("element_count"),
        "unexpected_count": f.get("unexpected_count"),
        "unexpected_percent": f.get("unexpected_percent"),
        "missing_count": f.get("missing_count"),
        "examples": examples,
        "exception": f.get("exception"),
    }


def _model_entry(r: dict[str, Any], links: ArtifactLinker, base_url: str) -> dict[str, Any]:
    challenger = r.get("challenger") if isinstance(r.get("challenger"), dict) else {}
    model = r.get("model")
    ch_version = r.get("challenger_version", challenger.get("version"))
    champ_version = r.get("champion_version")
    train = challenger.get("dataset") if isinstance(challenger.get("dataset"), dict) else {}
    evald = r.get("eval_dataset") or {}
    checks = [dict(c) for c in r.get("checks") or []]
    model_links = {
        "report": links(r.get("report_html_uri")) or links(r.get("verdict_uri")),
        "verdict": links(r.get("verdict_uri")),
        "champion_model": model_version_url(base_url, model, champ_version)
        if model and champ_version is not None
        else None,
        "challenger_model": model_version_url(base_url, model, ch_version)
        if model and ch_version is not None
        else None,
        "challenger_artifact": links(challenger.get("model_uri")),
    }
    return {
        "gate": "model",
        "status": _gate_status(bool(r.get("passed")), r.get("task_state")),
        "name": model,
        "model": model,
        "decision": r.get("decision"),
        "reason": r.get("reason"),
        "compare_metric": r.get("compare_metric"),
        "promote_if": r.get("promote_if"),
        "comparison": r.get("comparison"),
        "alias": r.get("alias"),
        "champion_version": champ_version,
        "challenger_version": ch_version,
        "challenger_model": {"uri": challenger.get("model_uri"), "sha256": challenger.get("model_sha256")},
        "eval_dataset": {"uri": evald.get("uri"), "sha256": evald.get("sha256"), "rows": evald.get("rows")},
        "train_dataset": {"uri": train.get("uri"), "sha256": train.get("sha256"), "rows": train.get("rows")},
        "checks": checks,
        "failed_checks": [c for c in checks if not c.get("passed")],
        "metrics": r.get("metrics") or {},
        "summary": r.get("summary"),
        "verdict_uri": r.get("verdict_uri"),
        "report_html_uri": r.get("report_html_uri"),
        "links": model_links,
    }


def _missing_entry(r: dict[str, Any]) -> dict[str, Any]:
    """A gate task without a result: it failed itself (``error``, with its error when recorded), or
    it did not run (``not_run``, naming the task that failed before it and that task's error)."""
    state = r.get("task_state")
    state = str(state).lower().rsplit(".", 1)[-1] if state is not None else None
    cause = r.get("cause") if isinstance(r.get("cause"), dict) else None
    parts = ((cause or {}).get("error"), (cause or {}).get("message"))
    error = ": ".join(str(x) for x in parts if x)
    if state == "failed":
        summary = f"failed without a gate result: {error}" if error else "failed without a gate result"
        status = "error"
    elif cause:
        summary = f"not run because {cause.get('task_id')} failed" + (f": {error}" if error else "")
        status = "not_run"
    else:
        summary = f"no gate result in XCom (task state: {state or 'unknown'})"
        status = "not_run"
    name = r.get("task_id")
    return {"gate": None, "status": status, "name": name, "summary": summary, "cause": cause, "links": {}}


def _value(v: Any) -> str:
    if isinstance(v, (list, tuple, set)):
        items = list(v)
        shown = ", ".join(_value(x) for x in items[:MAX_LISTED_VALUES])
        more = f", ... ({len(items)} values)" if len(items) > MAX_LISTED_VALUES else ""
        return f"[{shown}{more}]"
    if isinstance(v, float):
        return compact(v)
    return json.dumps(v, default=str)


def _expected(expected: dict[str, Any]) -> str:
    return ", ".join(f"{k}={_value(v)}" for k, v in expected.items()) or "(no arguments)"


_FAILED_OP = {">=": "<", "<=": ">", ">": "<=", "<": ">="}


def _check_phrase(c: dict[str, Any], champion_version: Any = None) -> str:
    if c.get("kind") == "slice":
        from mlops_provider.core.slices import describe

        return describe(c)
    op = c.get("op") if c.get("passed") else _FAILED_OP.get(c.get("op"), "vs")
    metric, ch, delta = c.get("metric"), compact(c.get("challenger")), compact(c.get("delta"), signed=True)
    if c.get("kind") == "champion":
        who = f"champion v{champion_version}" if champion_version is not None else "champion"
        ci = ""
        if c.get("ci_low") is not None and c.get("ci_high") is not None:
            ci = (
                f", improvement 95% interval "
                f"[{compact(c['ci_low'], signed=True)}, {compact(c['ci_high'], signed=True)}]"
            )
        return (
            f"{metric} {ch} vs {who} {compact(c.get('champion'))} "
            f"(delta {delta}, needs {c.get('op')} {compact(c.get('threshold'))}{ci})"
        )
    return f"{metric} {ch} {op} {compact(c.get('threshold'))} (delta {delta})"


def _metric_label(c: dict[str, Any]) -> str:
    """The check's metric; for a slice check also the slice (column, value, rows)."""
    from mlops_provider.core.slices import check_label

    return check_label(c)


def _gate_headline(g: dict[str, Any]) -> str:
    """The part of a subject after ``<gate> gate <STATUS>: ``."""
    if g["gate"] == "data":
        if g["unsuccessful"]:
            return f"{g['name']} — {g['unsuccessful']} of {g['evaluated']} expectations failed"
        return f"{g['name']} — all {g['evaluated']} expectations met"
    if g["gate"] == "model":
        failed = g["failed_checks"]
        if failed:
            n = len(failed) - 1
            more = f", {n} more check{'s' if n > 1 else ''} failed" if n else ""
            return f"{g['name']} — {_check_phrase(failed[0], g['champion_version'])}{more}"
        champ = [c for c in g["checks"] if c.get("kind") == "champion"]
        if champ and g["status"] == "passed":
            return f"{g['name']} — {_check_phrase(champ[0], g['champion_version'])}"
        return f"{g['name']} — {g['reason']}"
    return f"{g['name']} — {g['summary']}"


def _subject(p: dict[str, Any]) -> str:
    """One line, whatever the model names and reasons hold (a newline would break an email header)."""
    text = re.sub(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]", " ", _subject_text(p))
    return _clip(" ".join(text.split()), SUBJECT_MAX)


def _subject_text(p: dict[str, Any]) -> str:
    gates = p["gates"]
    problems = [g for g in gates if _is_problem(g)]
    focus = problems if problems else gates
    if len(focus) == 1:
        g = focus[0]
        kind = f"{g['gate']} gate" if g["gate"] else f"gate task {g['task_id']}"
        return f"[MLOps] {kind} {_label(g['status'])}: {_gate_headline(g)}"
    listed = ", ".join(f"{g['task_id'] or g['name']} ({_kind(g)})" for g in focus)
    return f"[MLOps] {len(focus)} quality gates {_label(p['status'])} in {p['dag_id']}: {listed}"


def _kind(g: dict[str, Any]) -> str:
    return g["gate"] or ("not run" if g["status"] == "not_run" else "no result")


def _label(status: str) -> str:
    return status.replace("_", " ").upper()


def _text(p: dict[str, Any]) -> str:
    lines = [
        p["subject"],
        "",
        f"DAG: {p['dag_id']}",
        f"Run: {p['run_id']}",
        f"Run page: {p['links']['dag_run']}",
    ]
    for g in p["gates"]:
        lines.append("")
        title = f"{g['gate']} gate" if g["gate"] else "gate task"
        lines.append(f"== {title.capitalize()} {_label(g['status'])}: {g['task_id'] or g['name']} ==")
        lines.append(f"Status: {_label(g['status'])} — {STATUS_NOTE[g['status']]}")
        if g["gate"] == "data":
            ds = g["dataset"]
            lines.append(f"Suite: {g['suite']}")
            lines.append(f"Dataset snapshot: {ds['uri'] or 'n/a'}")
            lines.append(f"Dataset sha256: {ds['sha256'] or 'n/a'}")
            lines.append(
                f"Expectations: {g['unsuccessful']} of {g['evaluated']} failed, {g['successful']} met"
            )
            for n, f in enumerate(g["failures"], 1):
                where = f" on column {f['column']}" if f["column"] else ""
                lines.append(f"  {n}. {f['expectation']}{where}")
                lines.append(f"     expected: {_expected(f['expected'])}")
                if f["exception"]:
                    lines.append(f"     could not be evaluated: {f['exception']}")
                if f["observed_value"] is not None:
                    lines.append(f"     observed: {_value(f['observed_value'])}")
                if f["unexpected_count"] is not None:
                    lines.append(
                        f"     unexpected: {f['unexpected_count']} of {compact(f['element_count'])} rows "
                        f"({percent(f['unexpected_percent'])})"
                    )
                if f["examples"]:
                    lines.append(f"     examples: {', '.join(_value(v) for v in f['examples'])}")
        elif g["gate"] == "model":
            lines.append(f"Model: {g['model']}")
            lines.append(f"Decision: {g['decision']} — {g['reason']}")
            lines.append(f"Challenger version: {_version(g['challenger_version'], 'not registered yet')}")
            lines.append(
                f"Champion version: {_version(g['champion_version'], 'none')} "
                f"(alias {g['alias'] or 'champion'})"
            )
            if g["challenger_model"]["uri"]:
                lines.append(
                    f"Challenger model: {g['challenger_model']['uri']} "
                    f"(sha256 {g['challenger_model']['sha256']})"
                )
            ev, tr = g["eval_dataset"], g["train_dataset"]
            lines.append(f"Evaluation snapshot: {ev['uri'] or 'n/a'} ({compact(ev['rows'])} rows)")
            lines.append(f"Evaluation sha256: {ev['sha256'] or 'n/a'}")
            if tr["uri"]:
                lines.append(f"Training snapshot: {tr['uri']} (sha256 {tr['sha256']})")
            lines.append("Checks:")
            for c in g["checks"]:
                lines.append(
                    f"  - {_metric_label(c)} [{c.get('kind')}]: "
                    f"needs {c.get('op')} {compact(c.get('threshold'))}; "
                    f"challenger {compact(c.get('challenger'))}, champion {compact(c.get('champion'))}, "
                    f"delta {compact(c.get('delta'), signed=True)} "
                    f"-> {'passed' if c.get('passed') else 'FAILED'}"
                )
            if not g["checks"]:
                lines.append("  (no checks)")
        else:
            lines.append(g["summary"])
        for label, url in g["links"].items():
            lines.append(f"{_LINK_LABELS.get(label, label)}: {url}")
    return "\n".join(lines) + "\n"


def _version(v: Any, missing: str) -> str:
    return f"v{v}" if v is not None else missing


_LINK_LABELS = {
    "report": "Report",
    "report_json": "Report (JSON)",
    "verdict": "Verdict (JSON)",
    "champion_model": "Champion model",
    "challenger_model": "Challenger model",
    "challenger_artifact": "Challenger model file",
    "task_log": "Task log",
}


_STATUS_COLOR = {
    "failed": "#b42318",
    "error": "#b42318",
    "skipped": "#b54708",
    "warned": "#b54708",
    "not_run": "#667085",
    "passed": "#067647",
}


def _html_body(p: dict[str, Any]) -> str:
    e = escape
    td = 'style="border:1px solid #d0d5dd;padding:4px 8px;vertical-align:top"'
    th = 'style="border:1px solid #d0d5dd;padding:4px 8px;background:#f2f4f7;text-align:left"'
    table = 'style="border-collapse:collapse;font-size:13px;margin:6px 0"'

    def link(url: str, label: str) -> str:
        if url.startswith(("http://", "https://")):
            return f'<a href="{e(url)}">{e(label)}</a>'
        return f"{e(label)}: <code>{e(url)}</code>"

    def row(*cells: str, header: bool = False) -> str:
        tag = "th" if header else "td"
        attrs = th if header else td
        return "<tr>" + "".join(f"<{tag} {attrs}>{c}</{tag}>" for c in cells) + "</tr>"

    out = [
        '<html><body style="font-family:Arial,Helvetica,sans-serif;font-size:14px;color:#101828">',
        f'<h2 style="margin:0 0 8px 0">{e(p["subject"])}</h2>',
        f"<p>DAG <b>{e(p['dag_id'])}</b>, run <code>{e(p['run_id'])}</code> — "
        f"{link(p['links']['dag_run'], 'open the run')}</p>",
    ]
    for g in p["gates"]:
        color = _STATUS_COLOR[g["status"]]
        title = f"{g['gate']} gate" if g["gate"] else "gate task"
        out.append(
            f'<h3 style="margin:16px 0 4px 0">{e(title.capitalize())} '
            f'<span style="color:{color}">{e(_label(g["status"]))}</span>: '
            f"{e(str(g['task_id'] or g['name']))}</h3>"
        )
        out.append(f'<p style="margin:0 0 6px 0">{e(STATUS_NOTE[g["status"]])}</p>')
        if g["gate"] == "data":
            ds = g["dataset"]
            out.append(f"<table {table}>")
            out.append(row("Suite", e(str(g["suite"]))))
            out.append(row("Dataset snapshot", f"<code>{e(str(ds['uri'] or 'n/a'))}</code>"))
            out.append(row("sha256", f"<code>{e(str(ds['sha256'] or 'n/a'))}</code>"))
            out.append(
                row(
                    "Expectations",
                    e(f"{g['unsuccessful']} of {g['evaluated']} failed, {g['successful']} met"),
                )
            )
            out.append("</table>")
            if g["failures"]:
                out.append(f"<table {table}>")
                out.append(
                    row(
                        "Expectation",
                        "Column",
                        "Expected",
                        "Observed",
                        "Unexpected",
                        "%",
                        "Examples",
                        header=True,
                    )
                )
                for f in g["failures"]:
                    observed = e(_value(f["observed_value"])) if f["observed_value"] is not None else ""
                    if f["exception"]:
                        observed = (observed + "<br>" if observed else "") + e(
                            f"could not be evaluated: {f['exception']}"
                        )
                    unexpected = (
                        e(f"{f['unexpected_count']} of {compact(f['element_count'])}")
                        if f["unexpected_count"] is not None
                        else ""
                    )
                    out.append(
                        row(
                            e(str(f["expectation"])),
                            e(str(f["column"] or "")),
                            e(_expected(f["expected"])),
                            observed,
                            unexpected,
                            e(percent(f["unexpected_percent"])) if f["unexpected_count"] is not None else "",
                            e(", ".join(_value(v) for v in f["examples"])),
                        )
                    )
                out.append("</table>")
        elif g["gate"] == "model":
            ev, tr, cm = g["eval_dataset"], g["train_dataset"], g["challenger_model"]
            out.append(f"<table {table}>")
            out.append(row("Model", e(str(g["model"]))))
            out.append(row("Decision", e(f"{g['decision']} — {g['reason']}")))
            out.append(row("Challenger version", e(_version(g["challenger_version"], "not registered yet"))))
            out.append(
                row(
                    "Champion version",
                    e(f"{_version(g['champion_version'], 'none')} (alias {g['alias'] or 'champion'})"),
                )
            )
            if cm["uri"]:
                out.append(
                    row(
                        "Challenger model",
                        f"<code>{e(cm['uri'])}</code><br>sha256 <code>{e(str(cm['sha256']))}</code>",
                    )
                )
            out.append(
                row(
                    "Evaluation snapshot",
                    f"<code>{e(str(ev['uri'] or 'n/a'))}</code> ({e(compact(ev['rows']))} rows)"
                    f"<br>sha256 <code>{e(str(ev['sha256'] or 'n/a'))}</code>",
                )
            )
            if tr["uri"]:
                out.append(
                    row(
                        "Training snapshot",
                        f"<code>{e(tr['uri'])}</code><br>sha256 <code>{e(str(tr['sha256']))}</code>",
                    )
                )
            out.append("</table>")
            out.append(f"<table {table}>")
            out.append(
                row("Metric", "Check", "Threshold", "Champion", "Challenger", "Delta", "Result", header=True)
            )
            for c in g["checks"]:
                ok = c.get("passed")
                res = (
                    f'<span style="color:{_STATUS_COLOR["passed" if ok else "failed"]}">'
                    f"{'passed' if ok else 'FAILED'}</span>"
                )
                out.append(
                    row(
                        e(_metric_label(c)),
                        e(str(c.get("kind"))),
                        e(f"{c.get('op')} {compact(c.get('threshold'))}"),
                        e(compact(c.get("champion"))),
                        e(compact(c.get("challenger"))),
                        e(compact(c.get("delta"), signed=True)),
                        res,
                    )
                )
            out.append("</table>")
        else:
            out.append(f"<p>{e(g['summary'])}</p>")
        if g["links"]:
            out.append(
                "<p>" + " · ".join(link(u, _LINK_LABELS.get(k, k)) for k, u in g["links"].items()) + "</p>"
            )
    out.append("</body></html>")
    return "\n".join(out)


def _jsonable(v: Any) -> Any:
    """Plain JSON types only: NaN/inf become null, unknown objects their str()."""
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple, set)):
        return [_jsonable(x) for x in v]
    if isinstance(v, float):
        return None if math.isnan(v) or math.isinf(v) else v
    if v is None or isinstance(v, (str, int, bool)):
        return v
    if hasattr(v, "item"):  # numpy scalars
        try:
            return _jsonable(v.item())
        except Exception:
            pass
    return str(v)


def slack_message(alert: GateAlert) -> dict[str, Any]:
    """Block Kit message (with ``text`` as the notification fallback) for an incoming webhook."""
    p = alert.payload

    def esc(s: Any) -> str:
        return str(s).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")

    def link(url: str, label: str) -> str:
        return (
            f"<{url}|{esc(label)}>"
            if url.startswith(("http://", "https://"))
            else f"{esc(label)}: `{esc(url)}`"
        )

    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": _clip(alert.subject, 150), "emoji": False}},
        {
            "type": "context",
            "elements": [
                {
                    "type": "mrkdwn",
                    "text": _clip(
                        f"DAG *{esc(p['dag_id'])}* · run `{esc(p['run_id'])}` · "
                        f"{link(p['links']['dag_run'], 'open the run')}",
                        3000,
                    ),
                }
            ],
        },
    ]
    for g in p["gates"]:
        title = f"{g['gate']} gate" if g["gate"] else "gate task"
        lines = [
            f"*{esc(title.capitalize())} {_label(g['status'])}: {esc(g['task_id'] or g['name'])}* — "
            f"{esc(STATUS_NOTE[g['status']])}"
        ]
        if g["gate"] == "data":
            ds = g["dataset"]
            lines.append(
                f"{g['unsuccessful']} of {g['evaluated']} expectations failed · snapshot `{esc(ds['uri'])}` "
                f"(sha256 `{esc(str(ds['sha256'])[:12])}…`)"
            )
            for f in g["failures"]:
                col = f" `{esc(f['column'])}`" if f["column"] else ""
                detail = (
                    f"{f['unexpected_count']} of {compact(f['element_count'])} rows "
                    f"({percent(f['unexpected_percent'])})"
                    if f["unexpected_count"] is not None
                    else f"observed {esc(_value(f['observed_value']))}"
                )
                ex = f"; e.g. {esc(', '.join(_value(v) for v in f['examples'][:5]))}" if f["examples"] else ""
                lines.append(
                    f"• {esc(f['expectation'])}{col}: expected {esc(_expected(f['expected']))}; {detail}{ex}"
                )
        elif g["gate"] == "model":
            lines.append(f"Model *{esc(g['model'])}*: {esc(g['decision'])} — {esc(g['reason'])}")
            lines.append(
                f"Challenger {esc(_version(g['challenger_version'], 'not registered yet'))} · champion "
                f"{esc(_version(g['champion_version'], 'none'))} · "
                f"eval snapshot `{esc(g['eval_dataset']['uri'])}`"
            )
            for c in g["checks"]:
                lines.append(
                    f"• {'✅' if c.get('passed') else '❌'} {esc(_metric_label(c))} [{esc(c.get('kind'))}]: "
                    f"needs {esc(c.get('op'))} {compact(c.get('threshold'))}; "
                    f"challenger {compact(c.get('challenger'))}, "
                    f"champion {compact(c.get('champion'))}, delta {compact(c.get('delta'), signed=True)}"
                )
        else:
            lines.append(esc(g["summary"]))
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": _clip("\n".join(lines), 3000)}})
        if g["links"]:
            blocks.append(
                {
                    "type": "context",
                    "elements": [
                        {
                            "type": "mrkdwn",
                            "text": _clip(
                                " · ".join(link(u, _LINK_LABELS.get(k, k)) for k, u in g["links"].items()),
                                3000,
                            ),
                        }
                    ],
                }
            )
    return {"text": _clip(alert.subject, 3000), "blocks": blocks[:50]}


def _clip(s: str, n: int) -> str:
    return s if len(s) <= n else s[: n - 1] + "…"
