"""The email channel: a multipart (plain text + HTML) message through the smtp provider's ``SmtpHook``."""

from __future__ import annotations

from typing import Any

from airflow.sdk.exceptions import AirflowException


def send(alert: Any, cfg: dict[str, Any]) -> None:
    from email.message import EmailMessage
    from email.utils import formatdate, make_msgid

    from airflow.providers.smtp.hooks.smtp import SmtpHook

    with SmtpHook(smtp_conn_id=cfg["conn_id"]) as hook:
        sender = cfg.get("from_email") or hook.from_email or _default_from_email()
        client = getattr(hook, "_smtp_client", None)
        if client is None or not hasattr(client, "send_message"):
            # the hook's own API only sends HTML; used if its client is not reachable
            hook.send_email_smtp(
                to=cfg["to"],
                cc=cfg.get("cc"),
                bcc=cfg.get("bcc"),
                subject=alert.subject,
                html_content=alert.html,
                from_email=sender,
            )
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
