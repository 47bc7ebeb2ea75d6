"""The Slack channel: blocks through the slack provider's ``SlackWebhookHook``."""

from __future__ import annotations

from typing import Any


def send(alert: Any, cfg: dict[str, Any]) -> None:
    from airflow.providers.slack.hooks.slack_webhook import SlackWebhookHook

    from mlops_provider.notifications.render import slack_message

    msg = slack_message(alert)
    SlackWebhookHook(slack_webhook_conn_id=cfg["conn_id"]).send(text=msg["text"], blocks=msg["blocks"])
