"""Alert channels: their configuration (one schema: the dataclasses below, whose fields and defaults
are the channel keys), validation naming the bad key, and delivery to each channel in turn.

* ``{"type": "email", "to": [...], "cc": [...], "conn_id": "smtp_default"}``: ``SmtpHook`` (smtp provider);
* ``{"type": "slack", "conn_id": "slack_default"}``: ``SlackWebhookHook`` (slack provider);
* ``{"type": "sns", "target_arn": "arn:aws:sns:...", "aws_conn_id": "aws_default"}``: ``SnsHook``
  (amazon provider);
* ``{"type": "webhook", "conn_id": "alerts_webhook", "endpoint": "/hook"}``: the payload POSTed as
  JSON through ``HttpHook`` (http provider), or plain ``urllib`` to the connection's host without it;
* ``{"type": "log"}``: the task log.

Each channel is a module of this package with ``send(alert, cfg)``; they are imported when used.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import logging
import re
from dataclasses import dataclass, field
from typing import Any

from airflow.sdk.exceptions import AirflowException

from mlops_provider.core.errors import InvalidParameterError

logger = logging.getLogger(__name__)

NOTIFY_ON = ("problems", "always")


class GateAlertDeliveryError(AirflowException):
    """One or more channels could not deliver the alert (the others were still tried)."""

    def __init__(self, message: str, failures: dict[str, str], delivered: list[str]):
        super().__init__(message)
        self.failures = failures
        self.delivered = delivered


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


@dataclass
class LogChannel:
    """The task log only: the templates' default until a real channel is configured."""

    type: str = field(default="log", init=False)


CHANNELS = {
    c.__dataclass_fields__["type"].default: c
    for c in (EmailChannel, SlackChannel, SnsChannel, WebhookChannel, LogChannel)
}
CHANNEL_TYPES = tuple(CHANNELS)
_COMMON_KEYS = ("type", "name")


def _schema(ctype: str) -> tuple[tuple[str, ...], dict[str, Any]]:
    """(required keys, optional keys with their defaults) of a channel type, from its dataclass."""
    fields = [f for f in dataclasses.fields(CHANNELS[ctype]) if f.init]
    required = tuple(f.name for f in fields if f.default is dataclasses.MISSING)
    optional = {f.name: f.default for f in fields if f.default is not dataclasses.MISSING}
    return required, optional


def normalize_channels(channels: Any, owner: str = "GateAlertOperator") -> list[dict[str, Any]]:
    """Validate channel configs (dicts, channel dataclasses, or JSON text of a list) -> list of dicts.

    Every error names the channel (by position and type) and the bad key.
    """
    if isinstance(channels, str):
        try:
            channels = json.loads(channels)
        except ValueError as err:
            raise InvalidParameterError(
                f"The 'channels' parameter of {owner} must be a list of channel configs "
                f"(or JSON text of one): {err}. Got {channels!r}."
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
    if ctype not in CHANNELS:
        raise InvalidParameterError(f"{where} has 'type' {ctype!r}; it must be one of {list(CHANNEL_TYPES)}.")
    where = f"Alert channel #{i} ({ctype}) of {owner}"
    cfg = _with_defaults(raw, ctype, where)
    _check_string_keys(cfg, where)
    check = _TYPE_CHECKS.get(ctype)
    if check is not None:
        check(cfg, where)
    return cfg


def _with_defaults(raw: dict[str, Any], ctype: str, where: str) -> dict[str, Any]:
    """``raw`` with its keys checked against the schema of ``ctype`` and the defaults filled in."""
    required, optional = _schema(ctype)
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
    return cfg


def _check_string_keys(cfg: dict[str, Any], where: str) -> None:
    for key in ("conn_id", "aws_conn_id", "target_arn", "region_name", "from_email", "name"):
        if cfg.get(key) is not None and (not isinstance(cfg[key], str) or not cfg[key].strip()):
            raise InvalidParameterError(f"{where}: key {key!r} must be a non-empty string. Got {cfg[key]!r}.")


def _check_email(cfg: dict[str, Any], where: str) -> None:
    for key in ("to", "cc", "bcc"):
        if cfg.get(key) is not None:
            cfg[key] = _address_list(cfg[key], key, where)
    if not cfg["to"]:
        raise InvalidParameterError(f"{where} is missing the required key 'to'.")


def _check_sns(cfg: dict[str, Any], where: str) -> None:
    if cfg["message_format"] not in ("text", "json"):
        raise InvalidParameterError(
            f"{where}: key 'message_format' must be 'text' or 'json'. Got {cfg['message_format']!r}."
        )
    if not cfg["target_arn"].startswith("arn:"):
        raise InvalidParameterError(f"{where}: key 'target_arn' must be an ARN. Got {cfg['target_arn']!r}.")


def _check_webhook(cfg: dict[str, Any], where: str) -> None:
    if not isinstance(cfg["endpoint"], str):
        raise InvalidParameterError(f"{where}: key 'endpoint' must be a string. Got {cfg['endpoint']!r}.")
    headers = cfg["headers"]
    if headers is not None and (
        not isinstance(headers, dict)
        or not all(isinstance(k, str) and isinstance(v, str) for k, v in headers.items())
    ):
        raise InvalidParameterError(f"{where}: key 'headers' must be a dict of strings. Got {headers!r}.")
    timeout = cfg["timeout"]
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
        raise InvalidParameterError(f"{where}: key 'timeout' must be a number > 0. Got {timeout!r}.")


#: The checks beyond the schema, per channel type (the others need none).
_TYPE_CHECKS = {"email": _check_email, "sns": _check_sns, "webhook": _check_webhook}


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
    target = (
        cfg.get("name")
        or {
            "email": lambda: ",".join(cfg["to"]),
            "slack": lambda: cfg["conn_id"],
            "sns": lambda: cfg["target_arn"],
            "webhook": lambda: cfg["conn_id"],  # never the endpoint: it may carry a token
            "log": lambda: "task log",
        }[cfg["type"]]()
    )
    return f"#{i} {cfg['type']} ({target})"


def check_notify_on(value: Any, owner: str) -> str:
    if value not in NOTIFY_ON:
        raise InvalidParameterError(
            f"The 'notify_on' parameter of {owner} must be one of {list(NOTIFY_ON)}. Got {value!r} instead."
        )
    return value


def send_gate_alert(alert: Any, channels: Any, owner: str = "send_gate_alert") -> list[str]:
    """Send ``alert`` to every channel; a failing channel does not stop the others.

    Secrets a channel could reveal (webhook URLs and tokens, passwords) are registered with Airflow's
    secrets masker before sending and removed from error texts (:mod:`.secrets`).

    :return: the labels of the channels that delivered.
    :raises GateAlertDeliveryError: after trying all, if any failed (naming each with its error).
    """
    from mlops_provider.notifications.channels.secrets import channel_secrets, redact

    cfgs = normalize_channels(channels, owner)
    delivered: list[str] = []
    failures: dict[str, str] = {}
    for i, cfg in enumerate(cfgs):
        label = channel_label(cfg, i)
        try:
            secrets = channel_secrets(cfg)
        except Exception as err:  # the connection itself is missing or unreadable
            failures[label] = f"{type(err).__name__}: {err}"
            logger.error("Alert channel %s failed: %s", label, failures[label])
            continue
        try:
            importlib.import_module(f"mlops_provider.notifications.channels.{cfg['type']}").send(alert, cfg)
        except Exception as err:
            failures[label] = redact(f"{type(err).__name__}: {err}", secrets)
            logger.error("Alert channel %s failed: %s", label, failures[label])
        else:
            logger.info("Alert %r sent to %s", alert.subject, label)
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
