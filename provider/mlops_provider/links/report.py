"""Extra links on the operators' task views: reports and model versions, served by the registry
plugin (``/mlops/...`` on the Airflow api-server, behind Airflow's authentication).

At the end of a task (success or failure) Airflow calls ``get_link`` on the worker and stores the
result under the link's XCom key; the operator records the URLs while it runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from airflow.sdk import BaseOperatorLink

if TYPE_CHECKING:
    from airflow.sdk import BaseOperator
    from airflow.sdk.types import TaskInstanceKey

PLUGIN_PREFIX = "/mlops"
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
    base = configured_base_url() if base_url is None else base_url.rstrip("/")
    return f"{base}{PLUGIN_PREFIX}/artifacts/{quote(key)}"


def model_version_url(model: str, version: Any, base_url: str | None = None) -> str | None:
    if version is None:
        return None
    base = configured_base_url() if base_url is None else base_url.rstrip("/")
    return f"{base}{PLUGIN_PREFIX}/models/{quote(str(model), safe='')}/versions/{int(version)}"


class _RecordedLink(BaseOperatorLink):
    """A link whose URL the operator recorded in ``operator.mlops_links[name]`` while it ran."""

    name = "recorded"

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        return (getattr(operator, "mlops_links", None) or {}).get(self.name) or ""


class DataQualityReportLink(_RecordedLink):
    name = "Data quality report"


class EvaluationReportLink(_RecordedLink):
    name = "Evaluation report"


class ModelVersionLink(_RecordedLink):
    name = "Model version"
