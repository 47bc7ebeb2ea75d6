"""The log channel: the alert in the task log."""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger("mlops_provider.notifications.quality_gate")


def send(alert: Any, cfg: dict[str, Any]) -> None:
    log.warning("%s\n%s", alert.subject, alert.text)
