"""GateAlertOperator: one alert for the quality gates of a DAG run, as a task after them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from mlops_provider.operators._base import MlopsBaseOperator

if TYPE_CHECKING:
    from airflow.sdk import Context


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
        artifact_root: str | None = None,
        **kwargs: Any,
    ):
        kwargs.setdefault("trigger_rule", "all_done")
        super().__init__(artifact_root=artifact_root, **kwargs)
        self.gate_task_ids = gate_task_ids
        self.channels = channels
        self.notify_on = notify_on
        self.base_url = base_url

    @staticmethod
    def check_settings(
        gate_task_ids: Any, channels: Any, notify_on: Any = "problems", owner: str = "GateAlertOperator"
    ) -> None:
        """Validate static settings when the DAG is parsed (templated ones are checked at run time:
        an operator's ``__init__`` sees templates unrendered, so it checks nothing itself)."""
        from mlops_provider.notifications.channels import check_notify_on, normalize_channels
        from mlops_provider.notifications.collect import task_id_list

        if not (isinstance(gate_task_ids, str) and "{{" in gate_task_ids):
            task_id_list(gate_task_ids, owner)
        if not (isinstance(channels, str) and "{{" in channels):
            normalize_channels(channels, owner)
        if not (isinstance(notify_on, str) and "{{" in notify_on):
            check_notify_on(notify_on, owner)

    def execute_step(self, context: Context) -> dict[str, Any]:
        from mlops_provider.notifications.channels import check_notify_on, normalize_channels, send_gate_alert
        from mlops_provider.notifications.collect import alert_for, task_id_list

        owner = f"{type(self).__name__} (task {self.task_id!r})"
        task_ids = task_id_list(self.gate_task_ids, owner)
        notify_on = check_notify_on(self.notify_on, owner)
        normalize_channels(self.channels, owner)
        alert = alert_for(context, task_ids, self.base_url, self.artifact_root)
        result = dict(alert.payload)
        if notify_on == "problems" and not alert.has_problems:
            self.log.info("%s; no alert sent (notify_on='problems').", alert.subject)
            result["delivery"] = {"notified": False, "channels": []}
            return result
        self.log.info("Sending alert: %s", alert.subject)
        delivered = send_gate_alert(alert, self.channels, owner)
        result["delivery"] = {"notified": True, "channels": delivered}
        return result
