"""The ``mlflow`` connection type and the MLflow registry backend built from it."""

from __future__ import annotations

import os
from typing import Any

from airflow.sdk.bases.hook import BaseHook

from mlops_provider.core.errors import InvalidInputError
from mlops_provider.hooks.registry import _connection


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
            uri = (
                host
                if ("://" in host or host.startswith("databricks"))
                else (f"http://{host}" + (f":{conn.port}" if conn.port else ""))
            )
        if not uri:
            raise InvalidInputError(
                f"The MLflow connection {conn.conn_id!r} must give the tracking URI as its host "
                "(or extra 'tracking_uri'), e.g. 'http://mlflow:5000' or 'sqlite:////data/mlflow.db'. "
                "Got an empty host."
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
        config = {
            "tracking_uri": os.environ["MLFLOW_TRACKING_URI"],
            "registry_uri": os.environ.get("MLFLOW_REGISTRY_URI"),
            "experiment": os.environ.get("MLFLOW_EXPERIMENT_NAME") or "mlops",
            "artifact_location": None,
        }
        credentials = None  # the process environment's own, as MLflow itself would use them
    else:
        raise InvalidInputError(
            "The 'mlflow' model registry needs 'registry_conn_id' (an 'mlflow' connection whose host "
            "is the tracking URI) or the MLFLOW_TRACKING_URI environment variable. Got neither."
        )
    return MlflowRegistry(
        store,
        tracking_uri=config["tracking_uri"],
        registry_uri=config.get("registry_uri"),
        experiment=config.get("experiment") or "mlops",
        artifact_location=config.get("artifact_location"),
        credentials=credentials,
        **options,
    )
