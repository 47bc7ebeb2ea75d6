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

import os
from typing import Any

from airflow.sdk.bases.hook import BaseHook

from mlops_provider.core.errors import InvalidInputError

REGISTRY_ENV = "MLOPS_REGISTRY"
REGISTRY_CONN_ENV = "MLOPS_REGISTRY_CONN_ID"
KINDS = ("artifacts", "mlflow", "sagemaker", "vertex")
DEFAULT_VERTEX_LOCATION = "us-central1"


def _variable(key: str) -> str | None:
    from mlops_provider.hooks.artifacts import _variable as variable

    return variable(key)


def resolve_kind(kind: str | None = None) -> str:
    value = (kind or os.environ.get(REGISTRY_ENV) or _variable("mlops_registry") or "artifacts").strip().lower()
    if value not in KINDS:
        raise InvalidInputError(f"The model registry must be one of {list(KINDS)}. Got {value!r} instead.")
    return value


def resolve_registry_conn_id(conn_id: str | None = None) -> str | None:
    return conn_id or os.environ.get(REGISTRY_CONN_ENV) or _variable("mlops_registry_conn_id")


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


class MlflowRegistryHook(BaseHook):
    """The ``mlflow`` connection: where the MLflow tracking server / model registry is.

    Host: the tracking URI (``sqlite:////path/mlflow.db``, ``http://mlflow:5000``, ``databricks``),
    or a bare host name (then ``http://host:port``). Login/password or extra ``token``: credentials
    of a server with authentication. Extra: ``registry_uri``, ``experiment``, ``artifact_location``.
    """

    conn_name_attr = "mlflow_conn_id"
    default_conn_name = "mlflow_default"
    conn_type = "mlflow"
    hook_name = "MLflow (MLOps model registry)"

    def __init__(self, mlflow_conn_id: str = default_conn_name, **kwargs):
        super().__init__(**kwargs)
        self.mlflow_conn_id = mlflow_conn_id

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        return {
            "hidden_fields": ["schema"],
            "relabeling": {"host": "Tracking URI (or host)"},
            "placeholders": {
                "host": "http://mlflow:5000 or sqlite:////data/mlflow.db",
                "extra": '{"registry_uri": "", "experiment": "mlops", "artifact_location": ""}',
            },
        }

    @staticmethod
    def config_from(conn) -> dict[str, Any]:
        """Tracking URI, registry URI, experiment, artifact location and credentials of ``conn``."""
        extra = conn.extra_dejson or {}
        host = (conn.host or "").strip()
        uri = (extra.get("tracking_uri") or "").strip()
        if not uri and host:
            uri = host if ("://" in host or host.startswith("databricks")) else (
                f"http://{host}" + (f":{conn.port}" if conn.port else "")
            )
        if not uri:
            raise InvalidInputError(
                f"The MLflow connection {conn.conn_id!r} must give the tracking URI as its host (or extra "
                "'tracking_uri'), e.g. 'http://mlflow:5000' or 'sqlite:////data/mlflow.db'. Got an empty host."
            )
        return {
            "tracking_uri": uri,
            "registry_uri": (extra.get("registry_uri") or "").strip() or None,
            "experiment": extra.get("experiment") or "mlops",
            "artifact_location": extra.get("artifact_location") or None,
            "username": conn.login or None,
            "password": conn.password or None,
            "token": extra.get("token") or None,
        }

    def get_config(self) -> dict[str, Any]:
        return self.config_from(self.get_connection(self.mlflow_conn_id))


def mlflow_registry(conn_id: str | None, store: Any, **options: Any):
    """The MLflow backend of connection ``conn_id`` (or of ``MLFLOW_TRACKING_URI``).

    MLflow's REST client reads credentials from environment variables only; the registry sets the
    connection's credentials for the duration of each of its calls and restores the environment
    afterwards (:class:`~mlops_provider.registries.mlflow.MlflowRegistry` ``credentials``), so a
    later registry of another connection, in the same long-lived process, never sends them.
    """
    from mlops_provider.registries.mlflow import MlflowRegistry

    if conn_id:
        config = MlflowRegistryHook.config_from(
            _connection(conn_id, "mlflow", "an 'mlflow' connection whose host is the tracking URI")
        )
        credentials = {k: config.get(k) for k in ("username", "password", "token")}
    elif os.environ.get("MLFLOW_TRACKING_URI"):
        config = {"tracking_uri": os.environ["MLFLOW_TRACKING_URI"], "registry_uri": os.environ.get("MLFLOW_REGISTRY_URI"),
                  "experiment": os.environ.get("MLFLOW_EXPERIMENT_NAME") or "mlops", "artifact_location": None}
        credentials = None  # the process environment's own, as MLflow itself would use them
    else:
        raise InvalidInputError(
            "The 'mlflow' model registry needs 'registry_conn_id' (an 'mlflow' connection whose host is the tracking "
            "URI) or the MLFLOW_TRACKING_URI environment variable. Got neither."
        )
    return MlflowRegistry(
        store, tracking_uri=config["tracking_uri"], registry_uri=config.get("registry_uri"),
        experiment=config.get("experiment") or "mlops", artifact_location=config.get("artifact_location"),
        credentials=credentials, **options,
    )


def sagemaker_registry(conn_id: str | None, store: Any, **options: Any):
    from mlops_provider.registries.sagemaker import SageMakerRegistry

    conn = _connection(conn_id, "sagemaker", "an 'aws' connection")
    if "client" not in options:
        from airflow.providers.amazon.aws.hooks.sagemaker import SageMakerHook

        options["client"] = SageMakerHook(aws_conn_id=conn_id).conn
    options.setdefault("inference_image", (conn.extra_dejson or {}).get("inference_image"))
    return SageMakerRegistry(store, **options)


def vertex_registry(conn_id: str | None, store: Any, **options: Any):
    from mlops_provider.registries.vertex import VertexRegistry

    conn = _connection(conn_id, "vertex", "a 'google_cloud_platform' connection")
    extra = conn.extra_dejson or {}

    def field(name: str):
        return extra.get(name) or extra.get(f"extra__google_cloud_platform__{name}")

    if "credentials" not in options or "project" not in options:
        from airflow.providers.google.common.hooks.base_google import GoogleBaseHook

        hook = GoogleBaseHook(gcp_conn_id=conn_id)
        options.setdefault("credentials", hook.get_credentials())
        options.setdefault("project", hook.project_id)
    options.setdefault("location", field("location") or field("region") or DEFAULT_VERTEX_LOCATION)
    options.setdefault("serving_image", field("serving_image"))
    return VertexRegistry(store, **options)


def get_registry(kind: str | None, conn_id: str | None, store: Any, **options: Any):
    """The registry backend for ``kind`` (see the module docstring); ``store`` is the artifact store.

    ``options`` go to the backend's constructor (e.g. ``client=`` / ``aiplatform=`` in tests).
    """
    kind = resolve_kind(kind)
    if kind == "artifacts":
        from mlops_provider.core.registry import ModelRegistry

        return ModelRegistry(store)
    conn_id = resolve_registry_conn_id(conn_id)
    if kind == "mlflow":
        return mlflow_registry(conn_id, store, **options)
    if kind == "sagemaker":
        return sagemaker_registry(conn_id, store, **options)
    return vertex_registry(conn_id, store, **options)
