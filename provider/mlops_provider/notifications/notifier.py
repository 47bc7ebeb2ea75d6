"""QualityGateNotifier: the gate alert as an ``on_failure_callback`` / ``on_success_callback``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk.bases.notifier import BaseNotifier

from mlops_provider.core.errors import InvalidParameterError
from mlops_provider.notifications.channels import check_notify_on, normalize_channels, send_gate_alert
from mlops_provider.notifications.collect import alert_for, task_id_list

if TYPE_CHECKING:
    from airflow.sdk import Context


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
        task_ids = task_id_list(self.gate_task_ids, owner, allow_none=True)
        if task_ids is None:
            ti = context.get("ti")
            if ti is None:
                raise InvalidParameterError(
                    f"{owner} needs 'gate_task_ids' when the callback context has no task."
                )
            task_ids = [ti.task_id]
        alert = alert_for(context, task_ids, self.base_url, self.artifact_root)
        if notify_on == "problems" and not alert.has_problems:
            self.log.info("Quality gates %s passed; no alert (notify_on='problems').", task_ids)
            return
        send_gate_alert(alert, self.channels, owner)
