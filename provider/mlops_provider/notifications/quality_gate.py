"""Quality-gate alerts: say exactly what failed, by how much, and where to look.

One renderer turns gate results (the XCom of :class:`~mlops_provider.operators.validate.ValidateDataOperator`
and :class:`~mlops_provider.operators.evaluate.EvaluateModelOperator`) into a :class:`GateAlert`
(subject, plain text, HTML and a structured JSON payload), and channels deliver it through the
Airflow providers' own hooks:

* ``{"type": "email", "to": [...], "cc": [...], "conn_id": "smtp_default"}``: ``SmtpHook`` (smtp provider);
* ``{"type": "slack", "conn_id": "slack_default"}``: ``SlackWebhookHook`` (slack provider);
* ``{"type": "sns", "target_arn": "arn:aws:sns:...", "aws_conn_id": "aws_default"}``: ``SnsHook`` (amazon provider);
* ``{"type": "webhook", "conn_id": "alerts_webhook", "endpoint": "/hook"}``: the payload POSTed as JSON
  through ``HttpHook`` (http provider), or plain ``urllib`` to the connection's host without it.

Use :class:`GateAlertOperator` as a task after the gates (``trigger_rule="all_done"``), or
:class:`QualityGateNotifier` as an ``on_failure_callback`` / ``on_success_callback``. A failed gate
pushes its result to XCom before raising, so both read it from failed (and skipped) tasks too.
"""

from __future__ import annotations

import dataclasses
import html as _html
import json
import logging
import math
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from airflow.sdk.bases.notifier import BaseNotifier
from airflow.sdk.exceptions import AirflowException

from mlops_provider.core.errors import InvalidParameterError
from mlops_provider.operators._base import MlopsBaseOperator

if TYPE_CHECKING:
    from airflow.sdk import Context

log = logging.getLogger(__name__)

NOTIFY_ON = ("problems", "always")
CHANNEL_TYPES = ("email", "slack", "sns", "webhook", "log")
SUBJECT_MAX = 250
SNS_SUBJECT_MAX = 99  # SNS: "less than 100 characters", no line breaks
SNS_MESSAGE_MAX = 250_000  # SNS caps a message at 256 KiB
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

# channel type -> (required keys, optional keys with defaults)
_CHANNEL_SCHEMA: dict[str, tuple[tuple[str, ...], dict[str, Any]]] = {
    "email": (("to",), {"conn_id": "smtp_default", "cc": None, "bcc": None, "from_email": None}),
    "slack": ((), {"conn_id": "slack_default"}),
    "sns": (("target_arn",), {"aws_conn_id": "aws_default", "region_name": None, "message_format": "text"}),
    "webhook": (("conn_id",), {"endpoint": "", "headers": None, "timeout": 30}),
    "log": ((), {}),  # the task log only: the templates' default until a real channel is configured
}
_COMMON_KEYS = ("type", "name")


# ---------------------------------------------------------------------------------------------- errors
class GateAlertDeliveryError(AirflowException):
    """One or more channels could not deliver the alert (the others were still tried)."""

    def __init__(self, message: str, failures: dict[str, str], delivered: list[str]):
        super().__init__(message)
        self.failures = failures
        self.delivered = delivered


# ---------------------------------------------------------------------------------------------- channels
@dataclass
class EmailChannel:
    to: list[str] | str
    conn_id: str = "smtp_default"
    cc: list[str] | str | None = None
    bcc: list[str] | str | None = None
    from_email: str | None = None
    type: str = field(default="email", init=False)


@dataclass
class SlackChannel:
    conn_id: str = "slack_default"
    type: str = field(default="slack", init=False)


@dataclass
class SnsChannel:
    target_arn: str
    aws_conn_id: str = "aws_default"
    region_name: str | None = None
    message_format: str = "text"  # "text" (human readable) or "json" (the payload)
    type: str = field(default="sns", init=False)


@dataclass
class WebhookChannel:
    conn_id: str
    endpoint: str = ""
    headers: dict[str, str] | None = None
    timeout: float = 30
    type: str = field(default="webhook", init=False)


def normalize_channels(channels: Any, owner: str = "GateAlertOperator") -> list[dict[str, Any]]:
    """Validate channel configs (dicts, channel dataclasses, or JSON text of a list) -> list of dicts.

    Every error names the channel (by position and type) and the bad key.
    """
    if isinstance(channels, str):
        try:
            channels = json.loads(channels)
        except ValueError as err:
            raise InvalidParameterError(
                f"The 'channels' parameter of {owner} must be a list of channel configs (or JSON text of one): "
                f"{err}. Got {channels!r}."
            ) from err
    if isinstance(channels, dict) or dataclasses.is_dataclass(channels):
        channels = [channels]
    if not isinstance(channels, (list, tuple)) or not channels:
        raise InvalidParameterError(
            f"The 'channels' parameter of {owner} must be a non-empty list of channel configs such as "
            f"{{'type': 'email', 'to': ['ml-team@example.com']}}. Got {channels!r} instead."
        )
    return [_normalize_channel(c, i, owner) for i, c in enumerate(channels)]


def _normalize_channel(raw: Any, i: int, owner: str) -> dict[str, Any]:
    if dataclasses.is_dataclass(raw) and not isinstance(raw, type):
        raw = dataclasses.asdict(raw)
    where = f"Alert channel #{i} of {owner}"
    if not isinstance(raw, dict):
        raise InvalidParameterError(f"{where} must be a dict with a 'type' key. Got {raw!r} instead.")
    ctype = raw.get("type")
    if ctype not in _CHANNEL_SCHEMA:
        raise InvalidParameterError(
            f"{where} has 'type' {ctype!r}; it must be one of {list(CHANNEL_TYPES)}."
        )
    where = f"Alert channel #{i} ({ctype}) of {owner}"
    required, optional = _CHANNEL_SCHEMA[ctype]
    allowed = set(required) | set(optional) | set(_COMMON_KEYS)
    unknown = sorted(set(raw) - allowed)
    if unknown:
        raise InvalidParameterError(
            f"{where} has unknown key {unknown[0]!r}; allowed keys: {sorted(allowed)}."
        )
    for key in required:
        if raw.get(key) in (None, "", []):
            raise InvalidParameterError(f"{where} is missing the required key {key!r}.")
    cfg = {**optional, **{k: v for k, v in raw.items() if v is not None or k not in optional}}
    cfg["type"] = ctype
    for key in ("conn_id", "aws_conn_id", "target_arn", "region_name", "from_email", "name"):
        if cfg.get(key) is not None and (not isinstance(cfg[key], str) or not cfg[key].strip()):
            raise InvalidParameterError(f"{where}: key {key!r} must be a non-empty string. Got {cfg[key]!r}.")
    if ctype == "email":
        for key in ("to", "cc", "bcc"):
            if cfg.get(key) is not None:
                cfg[key] = _address_list(cfg[key], key, where)
        if not cfg["to"]:
            raise InvalidParameterError(f"{where} is missing the required key 'to'.")
    elif ctype == "sns":
        if cfg["message_format"] not in ("text", "json"):
            raise InvalidParameterError(
                f"{where}: key 'message_format' must be 'text' or 'json'. Got {cfg['message_format']!r}."
            )
        if not cfg["target_arn"].startswith("arn:"):
            raise InvalidParameterError(f"{where}: key 'target_arn' must be an ARN. Got {cfg['target_arn']!r}.")
    elif ctype == "webhook":
        if not isinstance(cfg["endpoint"], str):
            raise InvalidParameterError(f"{where}: key 'endpoint' must be a string. Got {cfg['endpoint']!r}.")
        headers = cfg["headers"]
        if headers is not None and (
            not isinstance(headers, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in headers.items())
        ):
            raise InvalidParameterError(f"{where}: key 'headers' must be a dict of strings. Got {headers!r}.")
        timeout = cfg["timeout"]
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
            raise InvalidParameterError(f"{where}: key 'timeout' must be a number > 0. Got {timeout!r}.")
    return cfg


def _address_list(value: Any, key: str, where: str) -> list[str]:
    if isinstance(value, str):
        value = re.split(r"[,;]", value)
    if not isinstance(value, (list, tuple)) or not all(isinstance(a, str) for a in value):
        raise InvalidParameterError(
            f"{where}: key {key!r} must be an email address or a list of them. Got {value!r} instead."
        )
    out = [a.strip() for a in value if a.strip()]
    bad = [a for a in out if "@" not in a]
    if bad:
        raise InvalidParameterError(f"{where}: key {key!r} holds {bad[0]!r}, which is not an email address.")
    return out


def channel_label(cfg: dict[str, Any], i: int) -> str:
    target = cfg.get("name") or {
        "email": lambda: ",".join(cfg["to"]),
        "slack": lambda: cfg["conn_id"],
        "sns": lambda: cfg["target_arn"],
        "webhook": lambda: cfg["conn_id"],  # never the endpoint: it may carry a token
        "log": lambda: "task log",
    }[cfg["type"]]()
    return f"#{i} {cfg['type']} ({target})"


def check_notify_on(value: Any, owner: str) -> str:
    if value not in NOTIFY_ON:
        raise InvalidParameterError(
            f"The 'notify_on' parameter of {owner} must be one of {list(NOTIFY_ON)}. Got {value!r} instead."
        )
    return value


# ---------------------------------------------------------------------------------------------- links
def airflow_base_url() -> str:
    """``[api] base_url`` of the Airflow deployment (no trailing slash), or the local default."""
    from mlops_provider.links.report import absolute_base_url

    return absolute_base_url()


def task_url(base_url: str, dag_id: str, run_id: str, task_id: str, map_index: int | None = None) -> str:
    """The Airflow 3 UI page of a task instance (its logs), as ``RuntimeTaskInstance.log_url`` builds it."""
    url = f"{base_url.rstrip('/')}/dags/{dag_id}/runs/{quote(run_id)}/tasks/{task_id}"
    return url + (f"/mapped/{map_index}" if map_index is not None and map_index >= 0 else "")


def dag_run_url(base_url: str, dag_id: str, run_id: str) -> str:
    return f"{base_url.rstrip('/')}/dags/{dag_id}/runs/{quote(run_id)}"


def model_version_url(base_url: str, model: str, version: Any) -> str | None:
    from mlops_provider.links.report import model_version_url as url

    return url(model, version, base_url)


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
        from mlops_provider.links.report import artifact_url

        return artifact_url(self.store, uri, self.base_url) or uri


# ---------------------------------------------------------------------------------------------- rendering
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
        return any(g["status"] in PROBLEM_STATUSES for g in self.payload["gates"])


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
        raise InvalidParameterError(f"render_gate_alert needs a non-empty list of gate results. Got {results!r}.")
    base_url = (base_url or airflow_base_url()).rstrip("/")
    links = ArtifactLinker(base_url, artifact_root)
    task_links = dict(task_links or {})
    gates = []
    for i, result in enumerate(results):
        if not isinstance(result, dict):
            raise InvalidParameterError(f"Gate result #{i} must be a dict. Got {type(result).__name__}: {result!r}.")
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
    return GateAlert(subject=payload["subject"], text=_text(payload), html=_html_body(payload), payload=payload)


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
    name = _dataset_name(r.get("dataset_uri")) or (suite if suite and suite != "suite" else None) or r.get("task_id")
    evaluated = r.get("evaluated", len(results))
    unsuccessful = r.get("unsuccessful", len(failures))
    return {
        "gate": "data",
        "status": _gate_status(bool(r.get("success")), r.get("task_state")),
        "name": name,
        "suite": suite,
        "dataset": {"name": _dataset_name(r.get("dataset_uri")), "uri": r.get("dataset_uri"),
                    "sha256": r.get("dataset_sha256")},
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
        "champion_model": model_version_url(base_url, model, champ_version) if model and champ_version is not None else None,
        "challenger_model": model_version_url(base_url, model, ch_version) if model and ch_version is not None else None,
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
    state = r.get("task_state")
    state = str(state).lower().rsplit(".", 1)[-1] if state is not None else None
    status = "error" if state in ("failed", "upstream_failed") else "not_run"
    return {
        "gate": None,
        "status": status,
        "name": r.get("task_id"),
        "summary": f"no gate result in XCom (task state: {state or 'unknown'})",
        "links": {},
    }


# ------------------------------------------------------------------- formatting
def _num(x: Any, signed: bool = False) -> str:
    if x is None:
        return "n/a"
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return str(x)
    if isinstance(x, int):
        return f"{x:+d}" if signed else str(x)
    if math.isnan(x) or math.isinf(x):
        return str(x)
    if x != 0 and abs(x) < 1e-4:
        return f"{x:+.2g}" if signed else f"{x:.2g}"
    s = f"{x:+.4f}" if signed else f"{x:.4f}"
    s = s.rstrip("0")
    return s + "0" if s.endswith(".") else s


def _pct(p: Any) -> str:
    if not isinstance(p, (int, float)) or isinstance(p, bool) or math.isnan(p):
        return "n/a"
    if p == 0:
        return "0%"
    if p >= 1:
        return f"{p:.2f}%"
    if p >= 0.001:
        return f"{p:.3g}%"
    return "<0.001%"


def _value(v: Any) -> str:
    if isinstance(v, (list, tuple, set)):
        items = list(v)
        shown = ", ".join(_value(x) for x in items[:MAX_LISTED_VALUES])
        more = f", ... ({len(items)} values)" if len(items) > MAX_LISTED_VALUES else ""
        return f"[{shown}{more}]"
    if isinstance(v, float):
        return _num(v)
    return json.dumps(v, default=str)


def _expected(expected: dict[str, Any]) -> str:
    return ", ".join(f"{k}={_value(v)}" for k, v in expected.items()) or "(no arguments)"


_FAILED_OP = {">=": "<", "<=": ">", ">": "<=", "<": ">="}


def _check_phrase(c: dict[str, Any], champion_version: Any = None) -> str:
    op = c.get("op") if c.get("passed") else _FAILED_OP.get(c.get("op"), "vs")
    metric, ch, delta = c.get("metric"), _num(c.get("challenger")), _num(c.get("delta"), signed=True)
    if c.get("kind") == "champion":
        who = f"champion v{champion_version}" if champion_version is not None else "champion"
        ci = ""
        if c.get("ci_low") is not None and c.get("ci_high") is not None:
            ci = f", improvement 95% interval [{_num(c['ci_low'], signed=True)}, {_num(c['ci_high'], signed=True)}]"
        return (f"{metric} {ch} vs {who} {_num(c.get('champion'))} "
                f"(delta {delta}, needs {c.get('op')} {_num(c.get('threshold'))}{ci})")
    return f"{metric} {ch} {op} {_num(c.get('threshold'))} (delta {delta})"


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
    problems = [g for g in gates if g["status"] in PROBLEM_STATUSES]
    focus = problems if problems else gates
    if len(focus) == 1:
        g = focus[0]
        kind = f"{g['gate']} gate" if g["gate"] else f"gate task {g['task_id']}"
        return f"[MLOps] {kind} {g['status'].upper()}: {_gate_headline(g)}"
    listed = ", ".join(f"{g['task_id'] or g['name']} ({g['gate'] or 'no result'})" for g in focus)
    return f"[MLOps] {len(focus)} quality gates {p['status'].upper()} in {p['dag_id']}: {listed}"


def _text(p: dict[str, Any]) -> str:
    lines = [p["subject"], "", f"DAG: {p['dag_id']}", f"Run: {p['run_id']}", f"Run page: {p['links']['dag_run']}"]
    for g in p["gates"]:
        lines.append("")
        title = f"{g['gate']} gate" if g["gate"] else "gate task"
        lines.append(f"== {title.capitalize()} {g['status'].upper()}: {g['task_id'] or g['name']} ==")
        lines.append(f"Status: {g['status'].upper()} — {STATUS_NOTE[g['status']]}")
        if g["gate"] == "data":
            ds = g["dataset"]
            lines.append(f"Suite: {g['suite']}")
            lines.append(f"Dataset snapshot: {ds['uri'] or 'n/a'}")
            lines.append(f"Dataset sha256: {ds['sha256'] or 'n/a'}")
            lines.append(f"Expectations: {g['unsuccessful']} of {g['evaluated']} failed, {g['successful']} met")
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
                        f"     unexpected: {f['unexpected_count']} of {_num(f['element_count'])} rows "
                        f"({_pct(f['unexpected_percent'])})"
                    )
                if f["examples"]:
                    lines.append(f"     examples: {', '.join(_value(v) for v in f['examples'])}")
        elif g["gate"] == "model":
            lines.append(f"Model: {g['model']}")
            lines.append(f"Decision: {g['decision']} — {g['reason']}")
            lines.append(f"Challenger version: {_version(g['challenger_version'], 'not registered yet')}")
            lines.append(f"Champion version: {_version(g['champion_version'], 'none')} (alias {g['alias'] or 'champion'})")
            if g["challenger_model"]["uri"]:
                lines.append(f"Challenger model: {g['challenger_model']['uri']} (sha256 {g['challenger_model']['sha256']})")
            ev, tr = g["eval_dataset"], g["train_dataset"]
            lines.append(f"Evaluation snapshot: {ev['uri'] or 'n/a'} ({_num(ev['rows'])} rows)")
            lines.append(f"Evaluation sha256: {ev['sha256'] or 'n/a'}")
            if tr["uri"]:
                lines.append(f"Training snapshot: {tr['uri']} (sha256 {tr['sha256']})")
            lines.append("Checks:")
            for c in g["checks"]:
                lines.append(
                    f"  - {c.get('metric')} [{c.get('kind')}]: needs {c.get('op')} {_num(c.get('threshold'))}; "
                    f"challenger {_num(c.get('challenger'))}, champion {_num(c.get('champion'))}, "
                    f"delta {_num(c.get('delta'), signed=True)} -> {'passed' if c.get('passed') else 'FAILED'}"
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
_STATUS_COLOR = {"failed": "#b42318", "error": "#b42318", "skipped": "#b54708", "warned": "#b54708",
                 "not_run": "#667085", "passed": "#067647"}


def _html_body(p: dict[str, Any]) -> str:
    e = _html.escape
    td = 'style="border:1px solid #d0d5dd;padding:4px 8px;vertical-align:top"'
    th = 'style="border:1px solid #d0d5dd;padding:4px 8px;background:#f2f4f7;text-align:left"'
    table = 'style="border-collapse:collapse;font-size:13px;margin:6px 0"'

    def link(url: str, label: str) -> str:
        if url.startswith(("http://", "https://")):
            return f'<a href="{e(url, quote=True)}">{e(label)}</a>'
        return f"{e(label)}: <code>{e(url)}</code>"

    def row(*cells: str, header: bool = False) -> str:
        tag = "th" if header else "td"
        attrs = th if header else td
        return "<tr>" + "".join(f"<{tag} {attrs}>{c}</{tag}>" for c in cells) + "</tr>"

    out = [
        '<html><body style="font-family:Arial,Helvetica,sans-serif;font-size:14px;color:#101828">',
        f"<h2 style=\"margin:0 0 8px 0\">{e(p['subject'])}</h2>",
        f"<p>DAG <b>{e(p['dag_id'])}</b>, run <code>{e(p['run_id'])}</code> — {link(p['links']['dag_run'], 'open the run')}</p>",
    ]
    for g in p["gates"]:
        color = _STATUS_COLOR[g["status"]]
        title = f"{g['gate']} gate" if g["gate"] else "gate task"
        out.append(
            f"<h3 style=\"margin:16px 0 4px 0\">{e(title.capitalize())} "
            f"<span style=\"color:{color}\">{e(g['status'].upper())}</span>: {e(str(g['task_id'] or g['name']))}</h3>"
        )
        out.append(f"<p style=\"margin:0 0 6px 0\">{e(STATUS_NOTE[g['status']])}</p>")
        if g["gate"] == "data":
            ds = g["dataset"]
            out.append(f"<table {table}>")
            out.append(row("Suite", e(str(g["suite"]))))
            out.append(row("Dataset snapshot", f"<code>{e(str(ds['uri'] or 'n/a'))}</code>"))
            out.append(row("sha256", f"<code>{e(str(ds['sha256'] or 'n/a'))}</code>"))
            out.append(row("Expectations", e(f"{g['unsuccessful']} of {g['evaluated']} failed, {g['successful']} met")))
            out.append("</table>")
            if g["failures"]:
                out.append(f"<table {table}>")
                out.append(row("Expectation", "Column", "Expected", "Observed", "Unexpected", "%", "Examples", header=True))
                for f in g["failures"]:
                    observed = e(_value(f["observed_value"])) if f["observed_value"] is not None else ""
                    if f["exception"]:
                        observed = (observed + "<br>" if observed else "") + e(f"could not be evaluated: {f['exception']}")
                    unexpected = (
                        e(f"{f['unexpected_count']} of {_num(f['element_count'])}") if f["unexpected_count"] is not None else ""
                    )
                    out.append(row(
                        e(str(f["expectation"])), e(str(f["column"] or "")), e(_expected(f["expected"])), observed,
                        unexpected, e(_pct(f["unexpected_percent"])) if f["unexpected_count"] is not None else "",
                        e(", ".join(_value(v) for v in f["examples"])),
                    ))
                out.append("</table>")
        elif g["gate"] == "model":
            ev, tr, cm = g["eval_dataset"], g["train_dataset"], g["challenger_model"]
            out.append(f"<table {table}>")
            out.append(row("Model", e(str(g["model"]))))
            out.append(row("Decision", e(f"{g['decision']} — {g['reason']}")))
            out.append(row("Challenger version", e(_version(g["challenger_version"], "not registered yet"))))
            out.append(row("Champion version", e(f"{_version(g['champion_version'], 'none')} (alias {g['alias'] or 'champion'})")))
            if cm["uri"]:
                out.append(row("Challenger model", f"<code>{e(cm['uri'])}</code><br>sha256 <code>{e(str(cm['sha256']))}</code>"))
            out.append(row("Evaluation snapshot", f"<code>{e(str(ev['uri'] or 'n/a'))}</code> ({e(_num(ev['rows']))} rows)"
                           f"<br>sha256 <code>{e(str(ev['sha256'] or 'n/a'))}</code>"))
            if tr["uri"]:
                out.append(row("Training snapshot", f"<code>{e(tr['uri'])}</code><br>sha256 <code>{e(str(tr['sha256']))}</code>"))
            out.append("</table>")
            out.append(f"<table {table}>")
            out.append(row("Metric", "Check", "Threshold", "Champion", "Challenger", "Delta", "Result", header=True))
            for c in g["checks"]:
                ok = c.get("passed")
                res = f'<span style="color:{_STATUS_COLOR["passed" if ok else "failed"]}">{"passed" if ok else "FAILED"}</span>'
                out.append(row(
                    e(str(c.get("metric"))), e(str(c.get("kind"))), e(f"{c.get('op')} {_num(c.get('threshold'))}"),
                    e(_num(c.get("champion"))), e(_num(c.get("challenger"))), e(_num(c.get("delta"), signed=True)), res,
                ))
            out.append("</table>")
        else:
            out.append(f"<p>{e(g['summary'])}</p>")
        if g["links"]:
            out.append("<p>" + " · ".join(link(u, _LINK_LABELS.get(k, k)) for k, u in g["links"].items()) + "</p>")
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
        return f"<{url}|{esc(label)}>" if url.startswith(("http://", "https://")) else f"{esc(label)}: `{esc(url)}`"

    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": _clip(alert.subject, 150), "emoji": False}},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": _clip(
            f"DAG *{esc(p['dag_id'])}* · run `{esc(p['run_id'])}` · {link(p['links']['dag_run'], 'open the run')}", 3000)}]},
    ]
    for g in p["gates"]:
        title = f"{g['gate']} gate" if g["gate"] else "gate task"
        lines = [f"*{esc(title.capitalize())} {g['status'].upper()}: {esc(g['task_id'] or g['name'])}* — {esc(STATUS_NOTE[g['status']])}"]
        if g["gate"] == "data":
            ds = g["dataset"]
            lines.append(f"{g['unsuccessful']} of {g['evaluated']} expectations failed · snapshot `{esc(ds['uri'])}` "
                         f"(sha256 `{esc(str(ds['sha256'])[:12])}…`)")
            for f in g["failures"]:
                col = f" `{esc(f['column'])}`" if f["column"] else ""
                detail = (f"{f['unexpected_count']} of {_num(f['element_count'])} rows ({_pct(f['unexpected_percent'])})"
                          if f["unexpected_count"] is not None else f"observed {esc(_value(f['observed_value']))}")
                ex = f"; e.g. {esc(', '.join(_value(v) for v in f['examples'][:5]))}" if f["examples"] else ""
                lines.append(f"• {esc(f['expectation'])}{col}: expected {esc(_expected(f['expected']))}; {detail}{ex}")
        elif g["gate"] == "model":
            lines.append(f"Model *{esc(g['model'])}*: {esc(g['decision'])} — {esc(g['reason'])}")
            lines.append(f"Challenger {esc(_version(g['challenger_version'], 'not registered yet'))} · champion "
                         f"{esc(_version(g['champion_version'], 'none'))} · eval snapshot `{esc(g['eval_dataset']['uri'])}`")
            for c in g["checks"]:
                lines.append(f"• {'✅' if c.get('passed') else '❌'} {esc(c.get('metric'))} [{esc(c.get('kind'))}]: "
                             f"needs {esc(c.get('op'))} {_num(c.get('threshold'))}; challenger {_num(c.get('challenger'))}, "
                             f"champion {_num(c.get('champion'))}, delta {_num(c.get('delta'), signed=True)}")
        else:
            lines.append(esc(g["summary"]))
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": _clip("\n".join(lines), 3000)}})
        if g["links"]:
            blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": _clip(
                " · ".join(link(u, _LINK_LABELS.get(k, k)) for k, u in g["links"].items()), 3000)}]})
    return {"text": _clip(alert.subject, 3000), "blocks": blocks[:50]}


def _clip(s: str, n: int) -> str:
    return s if len(s) <= n else s[: n - 1] + "…"


def sns_subject(subject: str) -> str:
    """SNS subjects: plain text, no line breaks, under 100 characters (kept to ASCII for old clients)."""
    s = subject.replace("—", "-").replace("–", "-")
    s = unicodedata.normalize("NFKD", s).encode("ascii", "ignore").decode()
    s = " ".join(s.split())
    return s if len(s) <= SNS_SUBJECT_MAX else s[: SNS_SUBJECT_MAX - 3].rstrip() + "..."


# ---------------------------------------------------------------------------------------------- sending
def send_gate_alert(alert: GateAlert, channels: Any, owner: str = "send_gate_alert") -> list[str]:
    """Send ``alert`` to every channel; a failing channel does not stop the others.

    :return: the labels of the channels that delivered.
    :raises GateAlertDeliveryError: after trying all, if any failed (naming each with its error).
    """
    cfgs = normalize_channels(channels, owner)
    delivered: list[str] = []
    failures: dict[str, str] = {}
    for i, cfg in enumerate(cfgs):
        label = channel_label(cfg, i)
        try:
            secrets = channel_secrets(cfg)
        except Exception as err:  # the connection itself is missing or unreadable
            secrets = []
            failures[label] = f"{type(err).__name__}: {err}"
            log.error("Alert channel %s failed: %s", label, failures[label])
            continue
        try:
            _SENDERS[cfg["type"]](alert, cfg)
        except Exception as err:
            failures[label] = redact(f"{type(err).__name__}: {err}", secrets)
            log.error("Alert channel %s failed: %s", label, failures[label])
        else:
            log.info("Alert %r sent to %s", alert.subject, label)
            delivered.append(label)
    if failures:
        listed = "; ".join(f"{k}: {v}" for k, v in failures.items())
        raise GateAlertDeliveryError(
            f"{len(failures)} of {len(cfgs)} alert channel(s) failed: {listed}. "
            f"Delivered: {', '.join(delivered) or 'none'}.",
            failures,
            delivered,
        )
    return delivered


def channel_secrets(cfg: dict[str, Any]) -> list[str]:
    """What a channel's delivery could reveal: webhook URLs and endpoints (Slack and many others put
    the token in the path), header values, the connection's password and token extras. Each is
    registered with Airflow's secrets masker (so task logs show ``***``) and returned for
    :func:`redact` (exception texts, which also reach XCom-free alert results)."""
    if cfg["type"] not in ("webhook", "slack"):
        return []
    from airflow.sdk import BaseHook

    conn = BaseHook.get_connection(cfg["conn_id"])
    found = [conn.password, *(v for k, v in (conn.extra_dejson or {}).items() if "token" in k or "url" in k)]
    host = conn.host or ""
    if host:
        base = host if "://" in host else f"{conn.schema or 'http'}://{host}"
        if conn.port:
            base = f"{base.rstrip('/')}:{conn.port}"
        found.append(base if cfg["type"] == "slack" or "/" in base.split("://", 1)[1] else None)
        endpoint = cfg.get("endpoint") or ""
        if endpoint.strip("/"):
            found += [endpoint, f"{base.rstrip('/')}/{endpoint.lstrip('/')}"]
    if cfg["type"] == "slack" and conn.password:
        found.append(f"{host.rstrip('/')}/{str(conn.password).lstrip('/')}")
    found += list((cfg.get("headers") or {}).values())
    secrets = sorted({str(v) for v in found if v and len(str(v)) >= 4}, key=len, reverse=True)
    try:
        from airflow.sdk.log import mask_secret

        for secret in secrets:
            mask_secret(secret)
    except ImportError:  # pragma: no cover - older Airflow
        pass
    return secrets


def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with each secret (longest first) replaced by ``***``."""
    for secret in secrets:
        text = text.replace(secret, "***")
    return text


def _send_email(alert: GateAlert, cfg: dict[str, Any]) -> None:
    from email.message import EmailMessage
    from email.utils import formatdate, make_msgid

    from airflow.providers.smtp.hooks.smtp import SmtpHook

    with SmtpHook(smtp_conn_id=cfg["conn_id"]) as hook:
        sender = cfg.get("from_email") or hook.from_email or _default_from_email()
        client = getattr(hook, "_smtp_client", None)
        if client is None or not hasattr(client, "send_message"):
            # the hook's own API only sends HTML; used if its client is not reachable
            hook.send_email_smtp(to=cfg["to"], cc=cfg.get("cc"), bcc=cfg.get("bcc"), subject=alert.subject,
                                 html_content=alert.html, from_email=sender)
            return
        msg = EmailMessage()
        msg["Subject"] = alert.subject
        msg["From"] = sender
        msg["To"] = ", ".join(cfg["to"])
        if cfg.get("cc"):
            msg["Cc"] = ", ".join(cfg["cc"])
        msg["Date"] = formatdate(localtime=True)
        msg["Message-ID"] = make_msgid(domain="mlops.airflow")
        msg["X-MLOps-Status"] = alert.status
        msg.set_content(alert.text)
        msg.add_alternative(alert.html, subtype="html")
        recipients = list(cfg["to"]) + list(cfg.get("cc") or []) + list(cfg.get("bcc") or [])
        refused = client.send_message(msg, from_addr=sender, to_addrs=recipients)
        if refused:
            raise AirflowException(f"The SMTP server refused recipient(s): {refused}")


def _default_from_email() -> str:
    try:
        from airflow.sdk.configuration import conf
    except ImportError:  # pragma: no cover
        from airflow.configuration import conf
    return conf.get("email", "from_email", fallback=None) or "airflow-mlops@localhost"


def _send_slack(alert: GateAlert, cfg: dict[str, Any]) -> None:
    from airflow.providers.slack.hooks.slack_webhook import SlackWebhookHook

    msg = slack_message(alert)
    SlackWebhookHook(slack_webhook_conn_id=cfg["conn_id"]).send(text=msg["text"], blocks=msg["blocks"])


def _send_sns(alert: GateAlert, cfg: dict[str, Any]) -> None:
    from airflow.providers.amazon.aws.hooks.sns import SnsHook

    message = alert.text if cfg["message_format"] == "text" else json.dumps(alert.payload)
    if len(message.encode()) > SNS_MESSAGE_MAX:
        message = message.encode()[:SNS_MESSAGE_MAX].decode(errors="ignore") + "\n[truncated]"
    hook = SnsHook(aws_conn_id=cfg["aws_conn_id"], region_name=cfg.get("region_name"))
    gate = alert.payload.get("gate") or "none"
    hook.publish_to_target(
        target_arn=cfg["target_arn"],
        message=message,
        subject=sns_subject(alert.subject),
        message_attributes={"status": alert.status, "gate": gate, "dag_id": alert.payload["dag_id"]},
    )


def _send_webhook(alert: GateAlert, cfg: dict[str, Any]) -> None:
    headers = {"Content-Type": "application/json", **(cfg.get("headers") or {})}
    try:
        from airflow.providers.http.hooks.http import HttpHook
    except ImportError:
        post_json_urllib(cfg["conn_id"], cfg["endpoint"], alert.payload, headers=headers, timeout=cfg["timeout"])
        return
    HttpHook(method="POST", http_conn_id=cfg["conn_id"]).run(
        endpoint=cfg["endpoint"], json=alert.payload, headers=headers, extra_options={"timeout": cfg["timeout"]}
    )


def post_json_urllib(conn_id: str, endpoint: str, payload: Any, *, headers: dict[str, str] | None = None,
                     timeout: float = 30) -> int:
    """POST ``payload`` as JSON to the URL of an Airflow connection (no http provider needed).

    The URL is built as ``HttpHook`` does: the host (with its scheme, or ``schema``, default http), the
    port, then the endpoint; login/password become basic auth. Returns the HTTP status; raises on >= 400.
    """
    import base64
    import urllib.error
    import urllib.request

    from airflow.sdk import BaseHook

    conn = BaseHook.get_connection(conn_id)
    host = conn.host or ""
    if not host:
        raise AirflowException(f"Connection {conn_id!r} has no host to POST the alert to.")
    base = host if "://" in host else f"{conn.schema or 'http'}://{host}"
    if conn.port:
        base = f"{base.rstrip('/')}:{conn.port}"
    url = base + endpoint if base.endswith("/") or endpoint.startswith("/") or not endpoint else f"{base}/{endpoint}"
    hdrs = {"Content-Type": "application/json", **(headers or {})}
    if conn.login:
        token = base64.b64encode(f"{conn.login}:{conn.password or ''}".encode()).decode()
        hdrs["Authorization"] = f"Basic {token}"
    req = urllib.request.Request(url, data=json.dumps(payload).encode(), headers=hdrs, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 - URL from an Airflow connection
            return resp.status
    except urllib.error.HTTPError as err:  # the URL is not repeated: its path may hold a token
        raise AirflowException(f"POST to connection {conn_id!r} returned {err.code}: {err.reason}") from err


def _send_log(alert: GateAlert, cfg: dict[str, Any]) -> None:
    log.warning("%s\n%s", alert.subject, alert.text)


_SENDERS = {"email": _send_email, "slack": _send_slack, "sns": _send_sns, "webhook": _send_webhook, "log": _send_log}


# ---------------------------------------------------------------------------------------------- Airflow side
def _state_name(state: Any) -> str | None:
    if state is None:
        return None
    return str(getattr(state, "value", state)).lower()


def collect_gate_results(context: Context, task_ids: Iterable[str]) -> list[dict[str, Any]]:
    """Each gate task's XCom ``return_value`` in this run (failed and skipped tasks included), tagged
    with ``task_id`` and ``task_state``; a task without a result gives ``{"task_id", "task_state"}``."""
    ti = context.get("ti")
    dag_run = context.get("dag_run")
    dag_id = getattr(ti, "dag_id", None) or getattr(dag_run, "dag_id", None)
    run_id = getattr(ti, "run_id", None) or context.get("run_id") or getattr(dag_run, "run_id", None)
    task_ids = list(task_ids)
    states = _task_states(context, dag_id, run_id, task_ids)
    out: list[dict[str, Any]] = []
    for task_id in task_ids:
        value = _pull(ti, dag_id, run_id, task_id)
        items = value if isinstance(value, list) else [value]
        for map_index, item in enumerate(items):
            entry = dict(item) if isinstance(item, dict) else {}
            entry["task_id"] = task_id
            entry["task_state"] = states.get(task_id)
            if isinstance(value, list) and len(items) > 1:
                entry["map_index"] = map_index
            out.append(entry)
    return out


def _pull(ti: Any, dag_id: str, run_id: str, task_id: str) -> Any:
    errors = []
    if ti is not None:
        try:
            return ti.xcom_pull(task_ids=task_id, key="return_value")
        except Exception as err:  # e.g. a DAG-level callback run in-process by dag.test(): no supervisor
            errors.append(err)
    try:
        from airflow.sdk.execution_time.xcom import XCom

        return XCom.get_one(key="return_value", dag_id=dag_id, task_id=task_id, run_id=run_id)
    except Exception as err:
        errors.append(err)
    try:  # same process as the metadata DB (dag.test, or a standalone scheduler callback)
        from airflow.models.xcom import XComModel
        from airflow.utils.session import create_session

        with create_session() as session:
            row = session.scalars(
                XComModel.get_many(run_id=run_id, key="return_value", task_ids=task_id, dag_ids=dag_id, limit=1)
            ).first()
            return XComModel.deserialize_value(row) if row is not None else None
    except Exception as err:
        errors.append(err)
    log.warning("Could not read the XCom of gate task %r: %s", task_id, "; ".join(map(str, errors)))
    return None


def _task_states(context: Context, dag_id: str, run_id: str, task_ids: list[str]) -> dict[str, str | None]:
    ti = context.get("ti")
    states: dict[str, str | None] = {}
    if ti is not None:
        try:
            found = ti.get_task_states(dag_id=dag_id, task_ids=task_ids, run_ids=[run_id])
            states.update({k: _state_name(v) for k, v in (found.get(run_id) or {}).items()})
        except Exception as err:
            log.debug("get_task_states unavailable here: %s", err)
    if not states:
        dag_run = context.get("dag_run")
        try:
            for t in dag_run.get_task_instances():
                if t.task_id in task_ids:
                    states[t.task_id] = _state_name(t.state)
        except Exception:
            pass
    own = getattr(ti, "task_id", None)
    if own in task_ids and getattr(ti, "state", None) is not None:
        states[own] = _state_name(ti.state)  # the callback's own task: its state now (failed / success)
    return states


def _task_links(context: Context, base_url: str, task_ids: Iterable[str]) -> dict[str, str]:
    ti = context.get("ti")
    links = {}
    own = getattr(ti, "task_id", None)
    if own in set(task_ids):
        try:
            links[own] = ti.log_url  # RuntimeTaskInstance.log_url: the Airflow 3 UI page with try_number
        except Exception:
            pass
    return links


def _alert_for(context: Context, task_ids: list[str], base_url: str | None, artifact_root: str | None) -> GateAlert:
    ti = context.get("ti")
    dag_run = context.get("dag_run")
    dag_id = getattr(ti, "dag_id", None) or getattr(dag_run, "dag_id", None)
    run_id = getattr(ti, "run_id", None) or context.get("run_id") or getattr(dag_run, "run_id", None)
    base = (base_url or airflow_base_url()).rstrip("/")
    results = collect_gate_results(context, task_ids)
    return render_gate_alert(results, dag_id=dag_id, run_id=run_id, task_links=_task_links(context, base, task_ids),
                             base_url=base, artifact_root=artifact_root)


def _task_id_list(value: Any, owner: str, allow_none: bool = False) -> list[str] | None:
    if value is None and allow_none:
        return None
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, (list, tuple)) or not value or not all(isinstance(t, str) and t for t in value):
        raise InvalidParameterError(
            f"The 'gate_task_ids' parameter of {owner} must be a non-empty list of task ids. Got {value!r} instead."
        )
    return list(value)


class QualityGateNotifier(BaseNotifier):
    """Send a quality-gate alert from a task or DAG callback.

    ``on_failure_callback=QualityGateNotifier(channels=[...])`` on a gate task alerts with that task's
    result; ``on_success_callback`` too (a gate with ``on_fail="warn"`` succeeds), so with
    ``notify_on="problems"`` (default) a passing gate stays quiet. At DAG level, list ``gate_task_ids``.

    :param channels: channel configs (see :func:`normalize_channels`); templated.
    :param gate_task_ids: gate tasks to read; default: the callback's own task.
    :param notify_on: ``"problems"`` (a gate failed, was skipped on failure, or warned) or ``"always"``.
    :param base_url: the Airflow UI base URL for links (default ``[api] base_url``).
    :param artifact_root: artifact root for report links (default: the resolved root).
    """

    template_fields: Sequence[str] = ("channels", "gate_task_ids", "notify_on", "base_url", "artifact_root")

    def __init__(
        self,
        *,
        channels: Any,
        gate_task_ids: list[str] | str | None = None,
        notify_on: str = "problems",
        base_url: str | None = None,
        artifact_root: str | None = None,
    ):
        super().__init__()
        self.channels = channels
        self.gate_task_ids = gate_task_ids
        self.notify_on = notify_on
        self.base_url = base_url
        self.artifact_root = artifact_root
        if not (isinstance(channels, str) and "{{" in channels):
            normalize_channels(channels, type(self).__name__)  # fail at DAG parse time on a bad config
        if not (isinstance(notify_on, str) and "{{" in notify_on):
            check_notify_on(notify_on, type(self).__name__)

    def get_template_env(self, dag: Any = None):
        # DAG callbacks run by dag.test() get a SerializedDAG, which has no template env
        # (apache/airflow#64649): render with the default sandboxed env instead of failing.
        if dag is not None and not hasattr(dag, "get_template_env"):
            dag = None
        return super().get_template_env(dag=dag)

    def notify(self, context: Context) -> None:
        owner = type(self).__name__
        notify_on = check_notify_on(self.notify_on, owner)
        task_ids = _task_id_list(self.gate_task_ids, owner, allow_none=True)
        if task_ids is None:
            ti = context.get("ti")
            if ti is None:
                raise InvalidParameterError(f"{owner} needs 'gate_task_ids' when the callback context has no task.")
            task_ids = [ti.task_id]
        alert = _alert_for(context, task_ids, self.base_url, self.artifact_root)
        if notify_on == "problems" and not alert.has_problems:
            self.log.info("Quality gates %s passed; no alert (notify_on='problems').", task_ids)
            return
        send_gate_alert(alert, self.channels, owner)


class GateAlertOperator(MlopsBaseOperator):
    """One alert for the quality gates of a DAG run; put it after them with ``trigger_rule="all_done"``.

    A gate that failed pushed its result to XCom before raising, so this task reads failed, skipped
    and warned gates alike.

    Note: Airflow sets a DAG run's state from its leaf tasks; if this task is the only leaf
    downstream of a failed gate, the run ends "success". Keep another leaf (e.g. the register task)
    downstream of the gates.

    :param gate_task_ids: the gate tasks (``ValidateDataOperator`` / ``EvaluateModelOperator``).
    :param channels: channel configs (see :func:`normalize_channels`); templated.
    :param notify_on: ``"problems"`` (default: any gate failed, skipped on failure, or warned) or
        ``"always"``.
    :param base_url: the Airflow UI base URL for links (default ``[api] base_url``).
    :return: the alert payload, plus ``delivery``: ``{"notified": bool, "channels": [...]}``.
    """

    template_fields: Sequence[str] = ("gate_task_ids", "channels", "notify_on", "base_url", "artifact_root")
    ui_color = "#fdf1c7"

    def __init__(
        self,
        *,
        gate_task_ids: list[str] | str,
        channels: Any,
        notify_on: str = "problems",
        base_url: str | None = None,
        **kwargs: Any,
    ):
        kwargs.setdefault("trigger_rule", "all_done")
        super().__init__(**kwargs)
        self.gate_task_ids = gate_task_ids
        self.channels = channels
        self.notify_on = notify_on
        self.base_url = base_url
        owner = f"{type(self).__name__} (task {self.task_id!r})"
        if not (isinstance(gate_task_ids, str) and "{{" in gate_task_ids):
            _task_id_list(gate_task_ids, owner)
        if not (isinstance(channels, str) and "{{" in channels):
            normalize_channels(channels, owner)
        if not (isinstance(notify_on, str) and "{{" in notify_on):
            check_notify_on(notify_on, owner)

    def execute_step(self, context: Context) -> dict[str, Any]:
        owner = f"{type(self).__name__} (task {self.task_id!r})"
        task_ids = _task_id_list(self.gate_task_ids, owner)
        notify_on = check_notify_on(self.notify_on, owner)
        normalize_channels(self.channels, owner)
        alert = _alert_for(context, task_ids, self.base_url, self.artifact_root)
        result = dict(alert.payload)
        if notify_on == "problems" and not alert.has_problems:
            self.log.info("%s; no alert sent (notify_on='problems').", alert.subject)
            result["delivery"] = {"notified": False, "channels": []}
            return result
        self.log.info("Sending alert: %s", alert.subject)
        delivered = send_gate_alert(alert, self.channels, owner)
        result["delivery"] = {"notified": True, "channels": delivered}
        return result
