"""The webhook channel: the alert's JSON payload POSTed through the http provider's ``HttpHook``, or,
without that provider, to the connection's URL with ``urllib``."""

from __future__ import annotations

import json
from typing import Any

from airflow.sdk.exceptions import AirflowException


def send(alert: Any, cfg: dict[str, Any]) -> None:
    headers = {"Content-Type": "application/json", **(cfg.get("headers") or {})}
    try:
        from airflow.providers.http.hooks.http import HttpHook
    except ImportError:
        post_json_urllib(
            cfg["conn_id"], cfg["endpoint"], alert.payload, headers=headers, timeout=cfg["timeout"]
        )
        return
    HttpHook(method="POST", http_conn_id=cfg["conn_id"]).run(
        endpoint=cfg["endpoint"],
        json=alert.payload,
        headers=headers,
        extra_options={"timeout": cfg["timeout"]},
    )


def post_json_urllib(
    conn_id: str, endpoint: str, payload: Any, *, headers: dict[str, str] | None = None, timeout: float = 30
) -> int:
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
    url = (
        base + endpoint
        if base.endswith("/") or endpoint.startswith("/") or not endpoint
        else f"{base}/{endpoint}"
    )
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
