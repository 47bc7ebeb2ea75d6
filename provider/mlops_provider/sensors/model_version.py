"""``ModelVersionSensor``: wait until a model's alias moves, or a given version is registered."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseSensorOperator, PokeReturnValue
from airflow.sdk.exceptions import AirflowException, AirflowSensorTimeout

from mlops_provider.core.registry import CHAMPION
from mlops_provider.triggers.model_version import ModelVersionTrigger, check_model_version

if TYPE_CHECKING:
    from airflow.sdk import Context


class ModelVersionSensor(BaseSensorOperator):
    """Wait for ``alias`` of ``model_name`` to point at a version other than ``last_seen_version``
    (any version when it is None), or -- with ``version=N`` -- for version N to exist.

    Deferrable by default: the wait runs in the triggerer (:class:`ModelVersionTrigger`) and the
    worker slot is freed. Returns (and pushes to XCom) ``{"model", "alias", "version"}``.

    :param model_name: the registered model.
    :param alias: the alias to watch (default ``"champion"``).
    :param version: wait for this version number to be registered instead of an alias move.
    :param last_seen_version: the version the alias pointed at when the DAG last acted
        (templated, e.g. ``"{{ ti.xcom_pull(task_ids='deploy')['version'] }}"``).
    :param artifact_root: the artifact root (templated); resolved like the operators' one
        (argument, ``MLOPS_ARTIFACT_ROOT``, Variable ``mlops_artifact_root``, default).
    :param artifact_conn_id: connection for an object-store root.
    :param deferrable: wait in the triggerer (default) or poke from the worker.
    """

    template_fields: Sequence[str] = ("model_name", "alias", "version", "last_seen_version", "artifact_root")
    ui_color = "#e8f1fb"

    def __init__(
        self,
        *,
        model_name: str,
        alias: str = CHAMPION,
        version: int | str | None = None,
        last_seen_version: int | str | None = None,
        artifact_root: str | None = None,
        artifact_conn_id: str | None = None,
        deferrable: bool = True,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        self.model_name = model_name
        self.alias = alias
        self.version = version
        self.last_seen_version = last_seen_version
        self.artifact_root = artifact_root
        self.artifact_conn_id = artifact_conn_id
        self.deferrable = deferrable

    # ------------------------------------------------------------------ helpers
    @staticmethod
    def _as_int(value: Any, name: str) -> int | None:
        if value is None or (isinstance(value, str) and value.strip() in ("", "None")):
            return None
        try:
            return int(value)
        except (TypeError, ValueError) as err:
            raise AirflowException(
                f"The {name!r} parameter of ModelVersionSensor must be an integer, got {value!r}"
            ) from err

    def _wait_args(self) -> dict[str, Any]:
        """Everything the wait needs, resolved now (the trigger never reads task context)."""
        from mlops_provider.hooks.artifacts import resolve_conn_id, resolve_root

        root = resolve_root(self.artifact_root)
        remote = "://" in root and not root.startswith(("file://", "local://"))
        return {
            "artifact_root": root,
            "model_name": self.model_name,
            "alias": self.alias,
            "version": self._as_int(self.version, "version"),
            "last_seen_version": self._as_int(self.last_seen_version, "last_seen_version"),
            "conn_id": resolve_conn_id(self.artifact_conn_id) if remote else None,
        }

    def _result(self, version: int) -> dict[str, Any]:
        return {"model": self.model_name, "alias": self.alias, "version": int(version)}

    # ------------------------------------------------------------------ modes
    def poke(self, context: Context) -> PokeReturnValue:
        args = self._wait_args()
        try:
            found = check_model_version(**args)
        except (FileNotFoundError, PermissionError, LookupError, ValueError) as err:
            raise AirflowException(f"{type(err).__name__}: {err}") from err
        if found is None:
            self.log.info(
                "Waiting for %s of model %r at %s", self._what(), self.model_name, args["artifact_root"]
            )
            return PokeReturnValue(is_done=False)
        return PokeReturnValue(is_done=True, xcom_value=self._result(found))

    def _what(self) -> str:
        if self.version not in (None, ""):
            return f"version {self.version}"
        return f"alias {self.alias!r} to move from v{self.last_seen_version}"

    def execute(self, context: Context) -> Any:
        if not self.deferrable:
            return super().execute(context)
        done = self.poke(context)
        if done:
            return done.xcom_value
        self.defer(
            trigger=ModelVersionTrigger(
                **self._wait_args(), poke_interval=self.poke_interval, timeout=self.timeout
            ),
            method_name="execute_complete",
        )

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> dict[str, Any]:
        if not event or event.get("status") != "success":
            message = (event or {}).get("message", "ModelVersionTrigger ended without an event")
            if (event or {}).get("reason") == "timeout":
                raise AirflowSensorTimeout(message)
            raise AirflowException(message)
        self.log.info("Model %r alias %r is at version %s", event["model"], event["alias"], event["version"])
        return self._result(event["version"])
