"""Which model registry a task talks to: chosen by configuration, never by code.

``get_registry(kind, conn_id, store)``, with ``kind`` from the operator's ``registry`` argument,
else the ``MLOPS_REGISTRY`` environment variable, else the Airflow Variable ``mlops_registry``,
else ``"artifacts"`` (the registry kept on the artifact store). ``conn_id`` comes from the
operator's ``registry_conn_id``, else ``MLOPS_REGISTRY_CONN_ID``, else the Variable
``mlops_registry_conn_id``. Every backend has the same API as
:class:`mlops_provider.core.registry.ModelRegistry` (register, resolve, load, promote, rollback,
aliases, history, ...), so operators, the CLI and the templates do not change with the backend.

Backends and their connections (credentials stay in the connection):

``artifacts``
    the artifact store itself; no connection.
``mlflow``
    an ``mlflow`` connection (:class:`MlflowRegistryHook`): host = the tracking URI
    (``sqlite:////path/mlflow.db``, ``http://mlflow:5000``, or a bare host with ``port``, served
    over http); login/password (or extra ``token``) for a server with authentication; extra
    ``registry_uri`` (default: the tracking URI), ``experiment`` (default ``"mlops"``),
    ``artifact_location`` (of that experiment when created). Without a connection,
    ``MLFLOW_TRACKING_URI`` / ``MLFLOW_REGISTRY_URI``.
``sagemaker``
    an ``aws`` connection (the amazon provider's: keys / role / region, extra ``endpoint_url``);
    optional extra ``inference_image`` (the model packages' container image). The artifact root
    must be on S3.
``vertex``
    a ``google_cloud_platform`` connection (the google provider's: key / ADC / impersonation,
    ``project``); extra ``location`` (default ``us-central1``) and optional ``serving_image``. The
    artifact root must be on GCS.

Aliases of the three service backends are kept in the alias log on the artifact store
(authoritative: compare-and-set promotion, history, rollback) and mirrored into the service; see
:mod:`mlops_provider.registries._common`.
"""

from __future__ import annotations

import importlib
from typing import Any

from airflow.sdk.bases.hook import BaseHook

from mlops_provider import settings
from mlops_provider.core.errors import InvalidInputError

REGISTRY_ENV = "MLOPS_REGISTRY"
REGISTRY_CONN_ENV = "MLOPS_REGISTRY_CONN_ID"
KINDS = ("artifacts", "mlflow", "sagemaker", "vertex")
DEFAULT_VERTEX_LOCATION = "us-central1"


def resolve_kind(kind: str | None = None) -> str:
    value = str(settings.resolve("registry", kind)).strip().lower()
    if value not in KINDS:
        raise InvalidInputError(f"The model registry must be one of {list(KINDS)}. Got {value!r} instead.")
    return value


def resolve_registry_conn_id(conn_id: str | None = None) -> str | None:
    return settings.resolve("registry_conn_id", conn_id)


def _connection(conn_id: str | None, kind: str, expected: str):
    if not conn_id:
        raise InvalidInputError(
            f"The {kind!r} model registry needs a connection: set the operator's 'registry_conn_id' (or "
            f"{REGISTRY_CONN_ENV} / the Variable mlops_registry_conn_id) to {expected}. Got none."
        )
    try:
        return BaseHook.get_connection(conn_id)
    except Exception as err:
        if type(err).__name__ != "AirflowNotFoundException":
            raise
        raise InvalidInputError(
            f"The 'registry_conn_id' of the {kind!r} model registry must name a defined Airflow connection "
            f"({expected}). Got {conn_id!r}, which is not defined."
        ) from err


def get_registry(kind: str | None, conn_id: str | None, store: Any, **options: Any):
    """The registry backend for ``kind`` (see the module docstring); ``store`` is the artifact store.

    ``options`` go to the backend's constructor (e.g. ``client=`` / ``aiplatform=`` in tests).
    """
    kind = resolve_kind(kind)
    if kind == "artifacts":
        from mlops_provider.core.registry import ModelRegistry

        return ModelRegistry(store)
    conn_id = resolve_registry_conn_id(conn_id)
    builder = importlib.import_module(f"mlops_provider.integrations.{kind}.hook")
    return getattr(builder, f"{kind}_registry")(conn_id, store, **options)


def __getattr__(name: str) -> Any:
    """``MlflowRegistryHook`` and the builders moved to :mod:`mlops_provider.integrations`."""
    homes = {
        "MlflowRegistryHook": "mlflow",
        "mlflow_registry": "mlflow",
        "sagemaker_registry": "sagemaker",
        "vertex_registry": "vertex",
    }
    if name in homes:
        return getattr(importlib.import_module(f"mlops_provider.integrations.{homes[name]}.hook"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
