"""Extra links on the operators' task views: reports and model versions, served by the registry
plugin (``/mlops/...`` on the Airflow api-server, behind Airflow's authentication).

At the end of a task (success or failure) Airflow calls ``get_link`` on the worker and stores the
result under the link's XCom key; the operator records the URLs while it runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow.sdk import BaseOperatorLink

# the URL helpers live in mlops_provider.urls; these names stay importable from here
from mlops_provider.urls import (  # noqa: F401
    DEFAULT_BASE_URL,
    PLUGIN_PREFIX,
    absolute_base_url,
    artifact_url,
    configured_base_url,
    in_airflow_ui,
    model_version_url,
    snapshot_url,
)

if TYPE_CHECKING:
    from airflow.sdk import BaseOperator
    from airflow.sdk.types import TaskInstanceKey


class _RecordedLink(BaseOperatorLink):
    """A link whose URL the operator recorded in ``operator.mlops_links[name]`` while it ran."""

    name = "recorded"

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        # the registry inside Airflow's UI (its frame), so the link lands in Airflow
        return in_airflow_ui((getattr(operator, "mlops_links", None) or {}).get(self.name)) or ""


class DataQualityReportLink(_RecordedLink):
    name = "Data quality report"


class SnapshotLink(_RecordedLink):
    """The snapshot an extract task wrote (or reused): its manifest (schema, rows, sha256, source)."""

    name = "Snapshot"


class EvaluationReportLink(_RecordedLink):
    name = "Evaluation report"


class ModelVersionLink(_RecordedLink):
    name = "Model version"
