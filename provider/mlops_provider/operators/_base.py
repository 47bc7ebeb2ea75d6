"""What every operator of the package shares: the artifact store, run keys, argument checks, and
the gate outcome (fail / skip / warn)."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowSkipException

from mlops_provider.core.errors import InvalidParameterError

if TYPE_CHECKING:
    from airflow.sdk import Context

    from mlops_provider.core.storage import ArtifactStore

ON_FAIL = ("fail", "skip", "warn")
log = logging.getLogger(__name__)


class MlopsBaseOperator(BaseOperator):
    """Base of the package's operators: ``artifact_root`` and ``artifact_conn_id`` select the store;
    ``registry`` and ``registry_conn_id`` the model registry backend (see
    :func:`mlops_provider.hooks.registry.get_registry`; default: the registry on the artifact store)."""

    template_fields: Sequence[str] = ("artifact_root",)
    ui_color = "#e8f1fb"

    def __init__(
        self,
        *,
        artifact_root: str | None = None,
        artifact_conn_id: str | None = None,
        registry: str | None = None,
        registry_conn_id: str | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.artifact_root = artifact_root
        self.artifact_conn_id = artifact_conn_id
        self.registry = registry
        self.registry_conn_id = registry_conn_id
        self.mlops_links: dict[str, str] = {}  # extra-link name -> URL, recorded while running
        self.lineage_record: dict[str, Any] | None = None  # for OpenLineage, recorded while running

    def get_openlineage_facets_on_complete(self, task_instance):
        """Inputs, outputs and the step's decision, when the openlineage provider is installed."""
        from mlops_provider.lineage import operator_lineage

        return operator_lineage(self.lineage_record)

    def get_openlineage_facets_on_failure(self, task_instance):
        return self.get_openlineage_facets_on_complete(task_instance)

    def execute(self, context: Context) -> Any:
        """Run the step; bad input fails the task at once (no retries), I/O errors may retry."""
        from airflow.sdk.exceptions import AirflowFailException

        from mlops_provider.core.errors import MlopsError

        try:
            return self.execute_step(context)
        except MlopsError as err:
            self.log.error("%s: %s", type(err).__name__, err)
            _record_error(context, type(err).__name__, str(err))
            raise AirflowFailException(f"{type(err).__name__}: {err}") from err
        except AirflowSkipException:
            raise
        except Exception as err:
            # not our message: it may quote a connection or a URL, so only its type is recorded
            _record_error(context, type(err).__name__, None)
            raise

    def execute_step(self, context: Context) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    # ------------------------------------------------------------------ helpers
    def store(self) -> ArtifactStore:
        from mlops_provider.hooks.artifacts import ArtifactStoreHook

        return ArtifactStoreHook(self.artifact_root, self.artifact_conn_id).get_store()

    def model_registry(self, store: ArtifactStore | None = None):
        """The model registry backend this operator is configured for (built at run time)."""
        from mlops_provider.hooks.registry import get_registry

        return get_registry(
            self.registry, self.registry_conn_id, store if store is not None else self.store()
        )

    def run_info(self, context: Context):
        """This task instance as the core steps see it (:class:`~mlops_provider.core.steps.RunInfo`)."""
        from mlops_provider.core.steps.run import RunInfo
        from mlops_provider.urls import configured_base_url

        ti = context["ti"]
        return RunInfo(
            dag_id=ti.dag_id,
            run_id=ti.run_id,
            task_id=ti.task_id,
            map_index=getattr(ti, "map_index", -1),
            try_number=getattr(ti, "try_number", None),
            data_interval_start=str(context.get("data_interval_start")),
            data_interval_end=str(context.get("data_interval_end")),
            code_file=getattr(context.get("dag"), "fileloc", None),
            bundle_version=getattr(context.get("dag_run"), "bundle_version", None),
            ui_base_url=configured_base_url(),
        )

    @property
    def caller(self) -> str:
        """How errors name this operator: ``RegisterModelOperator (task 'register')``."""
        return f"{self.owner_name()} (task {self.task_id!r})"

    def params_for(self, params_cls, **values: Any):
        """The step's parameters from this operator's (templated) fields, coerced and validated."""
        return params_cls.build(self.caller, **values)

    @staticmethod
    def run_key(context: Context) -> str:
        ti = context["ti"]
        key = f"{ti.dag_id}/{ti.run_id}/{ti.task_id}"
        map_index = getattr(ti, "map_index", -1)
        return key if map_index in (-1, None) else f"{key}/{map_index}"

    @staticmethod
    def dag_run_path(context: Context) -> str:
        """``<dag_id>/<run_id>``, each made one safe path segment
        (:func:`~mlops_provider.core.names.run_folder`)."""
        from mlops_provider.core.names import run_folder

        ti = context["ti"]
        return run_folder(ti.dag_id, ti.run_id)

    def run_folder(self, context: Context) -> str:
        """Artifact key of this task instance's own folder (stable across retries and clears)."""
        from mlops_provider.core.names import run_folder

        ti = context["ti"]
        return f"runs/{run_folder(ti.dag_id, ti.run_id, ti.task_id)}"

    def output_key_param(self, value: Any, name: str = "output_key") -> str | None:
        """A user-given artifact key (templated): None, or a clean key inside the root."""
        from mlops_provider.core.names import check_key

        if value is None or value == "":
            return None
        return check_key(value, name, f"{self.owner_name()} (task {self.task_id!r})")

    def name_param(self, value: Any, name: str = "model_name") -> str:
        """A model, alias or dataset name parameter, checked by the one name rule."""
        from mlops_provider.core.names import check_name

        return check_name(value, name, f"{self.owner_name()} (task {self.task_id!r})")

    def owner_name(self) -> str:
        return type(self).__name__

    def param_error(self, name: str, expected: str, got: Any) -> InvalidParameterError:
        return InvalidParameterError(
            f"The {name!r} parameter of {self.owner_name()} (task {self.task_id!r}) must be {expected}. "
            f"Got {got!r} instead."
        )

    def as_uri(self, value: Any, name: str) -> str:
        """Accept a URI, or the dict an upstream operator returned (its ``uri``)."""
        if isinstance(value, dict) and isinstance(value.get("uri"), str):
            return value["uri"]
        if isinstance(value, str) and value.strip():
            return value.strip()
        raise self.param_error(name, "a URI or an upstream result with a 'uri' key", value)

    def as_dict(self, value: Any, name: str, allow_none: bool = True) -> dict | None:
        """Dicts may arrive as JSON text when a template renders them without native types."""
        if value is None or value == "":
            if allow_none:
                return None
            raise self.param_error(name, "a dict", value)
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError as err:
                raise self.param_error(name, "a dict (or JSON object text)", value) from err
        if not isinstance(value, dict):
            raise self.param_error(name, "a dict", value)
        return value

    def check_on_fail(self, on_fail: Any) -> str:
        if on_fail not in ON_FAIL:
            raise self.param_error("on_fail", f"one of {list(ON_FAIL)}", on_fail)
        return on_fail

    def gate_outcome(
        self, context: Context, result: dict[str, Any], passed: bool, summary: str, on_fail: str, exc_type
    ):
        """Push the result to XCom first, then fail / skip / warn as configured."""
        if passed:
            self.log.info("%s", summary)
            return result
        context["ti"].xcom_push(key="return_value", value=result)
        if on_fail == "skip":
            self.log.warning("%s -- skipping downstream tasks (on_fail='skip')", summary)
            raise AirflowSkipException(summary)
        if on_fail == "warn":
            self.log.warning("%s -- continuing (on_fail='warn')", summary)
            return result
        raise exc_type(summary, result)


def quiet_library_logs() -> None:
    for name in ("great_expectations", "great_expectations._docs_decorators", "skops"):
        logging.getLogger(name).setLevel(logging.WARNING)


#: XCom key of the error a failed task records, so an alert can say why a later gate did not run.
ERROR_XCOM_KEY = "mlops_error"


def _record_error(context: Context, error: str, message: str | None) -> None:
    ti = context.get("ti")
    try:
        ti.xcom_push(key=ERROR_XCOM_KEY, value={"error": error, "message": (message or "")[:1000] or None})
    except Exception as push_err:  # never hide the task's own error
        log.debug("Could not record the error in XCom: %s", push_err)
