"""The URLs the provider writes into links, alerts and pages: one home for the Airflow UI's base URL,
the registry plugin's prefix and the pages under it. Airflow is imported only to read ``[api]
base_url``; nothing else."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

#: Where the registry plugin is mounted on the api-server.
PLUGIN_PREFIX = "/mlops"
#: The UI's address when ``[api] base_url`` is not set (alerts need an absolute URL).
DEFAULT_BASE_URL = "http://localhost:8080"


def configured_base_url() -> str:
    """``[api] base_url`` without a trailing slash, or "" when unset (links then stay relative)."""
    try:
        from airflow.configuration import conf

        return (conf.get("api", "base_url", fallback="") or "").rstrip("/")
    except Exception:
        return ""


def absolute_base_url() -> str:
    """For messages read outside the UI (alerts): the configured base URL or the local default."""
    return configured_base_url() or DEFAULT_BASE_URL


def _base(base_url: str | None) -> str:
    return configured_base_url() if base_url is None else base_url.rstrip("/")


def artifact_url(store: Any, uri: str | None, base_url: str | None = None) -> str | None:
    """The registry plugin's URL serving ``uri`` (inside the store's root), or None."""
    if not uri:
        return None
    try:
        key = store.key_of(uri)
    except ValueError:
        return None
    if not key:
        return None
    return f"{_base(base_url)}{PLUGIN_PREFIX}/artifacts/{quote(key)}"


def model_version_url(model: str, version: Any, base_url: str | None = None) -> str | None:
    """The registry page of one model version, or None without a version."""
    if version is None:
        return None
    return f"{_base(base_url)}{PLUGIN_PREFIX}/models/{quote(str(model), safe='')}/versions/{int(version)}"


def model_url(model: str, base_url: str | None = None) -> str:
    """The registry page of one model (its versions, aliases and history)."""
    return f"{_base(base_url)}{PLUGIN_PREFIX}/models/{quote(str(model), safe='')}"


def registry_url(base_url: str | None = None) -> str:
    """The registry's index page."""
    return f"{_base(base_url)}{PLUGIN_PREFIX}/"


def snapshot_url(store: Any, snapshot_uri: str | None, base_url: str | None = None) -> str | None:
    """A snapshot's manifest (schema, rows, sha256, source) as the registry plugin serves it."""
    if not snapshot_uri:
        return None
    return artifact_url(store, f"{str(snapshot_uri).rstrip('/')}/manifest.json", base_url)


def task_url(base_url: str, dag_id: str, run_id: str, task_id: str, map_index: int | None = None) -> str:
    """The Airflow 3 UI page of a task instance (its logs), as ``RuntimeTaskInstance.log_url`` builds it."""
    url = f"{base_url.rstrip('/')}/dags/{dag_id}/runs/{quote(run_id)}/tasks/{task_id}"
    return url + (f"/mapped/{map_index}" if map_index is not None and map_index >= 0 else "")


def dag_run_url(base_url: str, dag_id: str, run_id: str) -> str:
    """The Airflow 3 UI page of a DAG run."""
    return f"{base_url.rstrip('/')}/dags/{dag_id}/runs/{quote(run_id)}"
