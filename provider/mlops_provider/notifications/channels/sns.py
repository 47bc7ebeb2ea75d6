"""The SNS channel: the plain-text alert (or its JSON payload) through the amazon provider's ``SnsHook``."""

from __future__ import annotations

import json
import unicodedata
from typing import Any

SNS_SUBJECT_MAX = 99  # SNS: "less than 100 characters", no line breaks


SNS_MESSAGE_MAX = 250_000  # SNS caps a message at 256 KiB


def sns_subject(subject: str) -> str:
    """SNS subjects: plain text, no line breaks, under 100 characters (kept to ASCII for old clients)."""
    s = subject.replace("—", "-").replace("–", "-")
    s = unicodedata.normalize("NFKD", s).encode("ascii", "ignore").decode()
    s = " ".join(s.split())
    return s if len(s) <= SNS_SUBJECT_MAX else s[: SNS_SUBJECT_MAX - 3].rstrip() + "..."


def send(alert: Any, cfg: dict[str, Any]) -> None:
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
