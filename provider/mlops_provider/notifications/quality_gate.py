"""Quality-gate alerts (compatibility module): the names that lived here, now in the
:mod:`mlops_provider.notifications` package, imported on first use.

* :mod:`~mlops_provider.notifications.render`: :class:`GateAlert`, :func:`render_gate_alert` and the
  text / HTML / Slack views;
* :mod:`~mlops_provider.notifications.channels`: channel configs, :func:`send_gate_alert`, one module
  per channel;
* :mod:`~mlops_provider.notifications.collect`: gate results from XCom;
* :mod:`~mlops_provider.notifications.notifier` / :mod:`~mlops_provider.notifications.operator`:
  :class:`QualityGateNotifier` and :class:`GateAlertOperator`.
"""

from __future__ import annotations

import importlib
from typing import Any

_HOMES = {
    "mlops_provider.notifications.render": (
        "GateAlert",
        "render_gate_alert",
        "slack_message",
        "airflow_base_url",
        "model_version_url",
        "ArtifactLinker",
        "STATUS_ORDER",
        "PROBLEM_STATUSES",
        "STATUS_NOTE",
        "SUBJECT_MAX",
    ),
    "mlops_provider.notifications.channels": (
        "GateAlertDeliveryError",
        "EmailChannel",
        "SlackChannel",
        "SnsChannel",
        "WebhookChannel",
        "LogChannel",
        "NOTIFY_ON",
        "CHANNEL_TYPES",
        "normalize_channels",
        "channel_label",
        "check_notify_on",
        "send_gate_alert",
    ),
    "mlops_provider.notifications.channels.secrets": ("channel_secrets", "redact"),
    "mlops_provider.notifications.channels.sns": ("sns_subject", "SNS_SUBJECT_MAX", "SNS_MESSAGE_MAX"),
    "mlops_provider.notifications.channels.webhook": ("post_json_urllib",),
    "mlops_provider.notifications.collect": ("collect_gate_results",),
    "mlops_provider.notifications.notifier": ("QualityGateNotifier",),
    "mlops_provider.notifications.operator": ("GateAlertOperator",),
    "mlops_provider.urls": ("task_url", "dag_run_url"),
}
_WHERE = {name: module for module, names in _HOMES.items() for name in names}
__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_WHERE[name]), name)
