"""The URLs the provider writes into links, alerts and pages: one home for the Airflow UI's base URL,
the registry plugin's prefix and the pages under it. Airflow is imported only to read ``[api]
base_url``; nothing else."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlsplit

#: Where the registry plugin is mounted on the api-server.
PLUGIN_PREFIX = "/mlops"
#: The registry's page inside Airflow's UI: ``/plugin/<UI_ROUTE>`` shows it in Airflow's frame.
UI_ROUTE = "mlops"
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


def open_in_airflow_url(path: str, base_url: str | None = None) -> str:
    """A link from a report (sandboxed, no scripts) to a page of Airflow's UI (``path`` relative to
    the UI root, e.g. ``/dags/...``), through the registry's ``/open`` page: it opens the page in the
    whole window even when the report is shown inside Airflow's frame."""
    base = _base(base_url)
    base_path = urlsplit(base).path.rstrip("/") if base else ""
    return f"{base}{PLUGIN_PREFIX}/open?to={quote(base_path + path, safe='')}"


def in_airflow_ui(url: str | None, base_url: str | None = None) -> str | None:
    """A registry URL built by these helpers, as a page of Airflow's UI: the registry shown inside
    Airflow's frame (``<base>/plugin/mlops<base path>/mlops/...``), so a link lands in Airflow."""
    if not url:
        return url
    base = _base(base_url)
    rel = url[len(base) :] if base and url.startswith(base) else url
    if not rel.startswith(PLUGIN_PREFIX + "/"):
        return url
    base_path = urlsplit(base).path.rstrip("/") if base else ""
    return f"{base}/plugin/{UI_ROUTE}{base_path}{rel}"


def task_url(base_url: str, dag_id: str, run_id: str, task_id: str, map_index: int | None = None) -> str:
    """The Airflow 3 UI page of a task instance (its logs), as ``RuntimeTaskInstance.log_url`` builds it."""
    url = f"{base_url.rstrip('/')}/dags/{dag_id}/runs/{quote(run_id)}/tasks/{task_id}"
    return url + (f"/mapped/{map_index}" if map_index is not None and map_index >= 0 else "")


def dag_run_url(base_url: str, dag_id: str, run_id: str) -> str:
    """The Airflow 3 UI page of a DAG run."""
    return f"{base_url.rstrip('/')}/dags/{dag_id}/runs/{quote(run_id)}"
