"""What a channel's delivery could reveal, masked in logs and removed from error texts."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


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
