"""Which model registry a task talks to: chosen by configuration, never by code.

``get_registry(kind, conn_id, store)``, with ``kind`` from the operator's ``registry`` argument,
else the ``MLOPS_REGISTRY`` environment variable, else the Airflow Variable ``mlops_registry``,
else ``"artifacts"`` (the registry kept on the artifact store). Every backend has the same API as
:class:`mlops_provider.core.registry.ModelRegistry` (register, resolve, load, promote, rollback,
aliases, history, ...), so operators, the CLI and the templates do not change with the backend.
"""

from __future__ import annotations

import os
from typing import Any

REGISTRY_ENV = "MLOPS_REGISTRY"
REGISTRY_CONN_ENV = "MLOPS_REGISTRY_CONN_ID"
KINDS = ("artifacts", "mlflow", "sagemaker", "vertex")


def _variable(key: str) -> str | None:
    from mlops_provider.hooks.artifacts import _variable as variable

    return variable(key)


def resolve_kind(kind: str | None = None) -> str:
    value = (kind or os.environ.get(REGISTRY_ENV) or _variable("mlops_registry") or "artifacts").strip().lower()
    if value not in KINDS:
        raise ValueError(f"The model registry must be one of {list(KINDS)}. Got {value!r} instead.")
    return value


def resolve_registry_conn_id(conn_id: str | None = None) -> str | None:
    return conn_id or os.environ.get(REGISTRY_CONN_ENV) or _variable("mlops_registry_conn_id")


def get_registry(kind: str | None, conn_id: str | None, store: Any):
    """The registry backend for ``kind`` (see the module docstring); ``store`` is the artifact store."""
    kind = resolve_kind(kind)
    if kind == "artifacts":
        from mlops_provider.core.registry import ModelRegistry

        return ModelRegistry(store)
    raise NotImplementedError(f"The {kind!r} registry backend is not available yet")
