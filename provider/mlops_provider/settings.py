"""The provider's settings, resolved in one place for operators, hooks, triggers, the CLI and the
registry page.

Each setting is looked up, first found wins:

1. the explicit value (an operator argument, a CLI option);
2. the environment variable ``MLOPS_<NAME>`` (e.g. ``MLOPS_ARTIFACT_ROOT``);
3. the Airflow Variable ``mlops_<name>`` (e.g. ``mlops_artifact_root``);
4. the provider's configuration section ``[mlops]`` (``airflow.cfg``, or
   ``AIRFLOW__MLOPS__<NAME>``; declared in ``get_provider_info``, so ``airflow config list`` shows it);
5. the default.

:func:`resolve` returns the value and :func:`resolve_with_source` says where it came from (the CLI
prints it when a registry is empty). Variables are read through the Task SDK (tasks, triggers), or
from the metadata DB inside :func:`metadata_db` (the registry page on the api-server, where the
Task SDK sees none); lookups are cached for ``VARIABLE_TTL`` seconds per process, since the
api-server resolves settings on every request. A tool without a task or a metadata DB (the CLI)
sees no Variables.
Nothing heavy is imported here; Airflow is imported when a lookup needs it.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

SECTION = "mlops"
VARIABLE_TTL = 30.0
_variable_cache: dict[tuple[str, bool], tuple[float, str | None]] = {}
_metadata_db: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "mlops_settings_metadata_db", default=False
)


def airflow_home() -> str:
    return os.path.abspath(os.environ.get("AIRFLOW_HOME") or os.path.expanduser("~/airflow"))


@dataclass(frozen=True)
class Setting:
    name: str
    description: str
    default: Callable[[], str | None] = lambda: None

    @property
    def env(self) -> str:
        return f"MLOPS_{self.name.upper()}"

    @property
    def variable(self) -> str:
        return f"mlops_{self.name}"


SETTINGS: dict[str, Setting] = {
    s.name: s
    for s in (
        Setting(
            "artifact_root",
            "Where artifacts live: file://, s3:// or gs:// URI.",
            lambda: f"file://{airflow_home()}/mlops",
        ),
        Setting("artifact_conn_id", "Airflow connection of an s3:// or gs:// artifact root."),
        Setting(
            "registry", "Model registry backend: artifacts, mlflow, sagemaker or vertex.", lambda: "artifacts"
        ),
        Setting("registry_conn_id", "Airflow connection of the registry backend."),
    )
}


def config_section() -> dict[str, Any]:
    """The ``[mlops]`` section as ``get_provider_info`` declares it."""
    options = {}
    for s in SETTINGS.values():
        options[s.name] = {
            "description": f"{s.description} Overridden by the environment variable {s.env} and the "
            f"Airflow Variable {s.variable}.",
            "version_added": "0.4.0",
            "type": "string",
            "example": None,
            "default": None,
        }
    return {
        SECTION: {
            "description": "Settings of the MLOps provider (artifact store and model registry).",
            "options": options,
        }
    }


def _from_variable(key: str) -> str | None:
    now = time.monotonic()
    db = _metadata_db.get()
    hit = _variable_cache.get((key, db))
    if hit is not None and now - hit[0] < VARIABLE_TTL:
        return hit[1]
    try:
        if db and not _in_task():  # the api-server: the metadata DB and the secrets backends
            from airflow.models.variable import Variable as DbVariable

            quiet = logging.getLogger("airflow.models.variable")
            level = quiet.level
            quiet.setLevel(logging.CRITICAL)
            try:
                value = DbVariable.get(key, default_var=None)
            finally:
                quiet.setLevel(level)
        else:  # tasks and triggers: the Task SDK (the supervisor's API and the secrets backends)
            from airflow.sdk import Variable

            value = Variable.get(key, default=None)
    except Exception:  # no Airflow configuration or DB (tools, tests): no Variable
        value = None
    _variable_cache[(key, db)] = (now, value)
    return value


@contextlib.contextmanager
def metadata_db() -> Iterator[None]:
    """Within the block, Variables are read from the metadata DB (for the api-server, where the
    Task SDK sees none); elsewhere through the Task SDK, which needs no DB."""
    token = _metadata_db.set(True)
    try:
        yield
    finally:
        _metadata_db.reset(token)


def _in_task() -> bool:
    """Whether this process runs a task (the Task SDK's supervisor channel is set up)."""
    import sys

    runner = sys.modules.get("airflow.sdk.execution_time.task_runner")
    return runner is not None and getattr(runner, "SUPERVISOR_COMMS", None) is not None


def _from_config(name: str) -> str | None:
    try:
        from airflow.configuration import conf

        return conf.get(SECTION, name, fallback=None) or None
    except Exception:
        return None


def resolve_with_source(name: str, explicit: Any = None, given_as: str | None = None) -> tuple[Any, str]:
    """``(value, where it came from)`` of setting ``name`` (see the module docstring)."""
    s = SETTINGS[name]
    if explicit not in (None, ""):
        return explicit, given_as or f"the argument {name}"
    if os.environ.get(s.env):
        return os.environ[s.env], f"the environment variable {s.env}"
    value = _from_variable(s.variable)
    if value:
        return value, f"the Airflow Variable {s.variable}"
    value = _from_config(name)
    if value:
        return value, f"the [{SECTION}] {name} option of the Airflow configuration"
    return s.default(), "the default"


def resolve(name: str, explicit: Any = None) -> Any:
    return resolve_with_source(name, explicit)[0]


def clear_cache() -> None:
    _variable_cache.clear()
