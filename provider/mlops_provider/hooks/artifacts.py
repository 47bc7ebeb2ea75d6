"""Where artifacts live: one root URI, resolved at run time (never at DAG parse time).

Resolution (:mod:`mlops_provider.settings`): the operator's ``artifact_root`` argument, the
``MLOPS_ARTIFACT_ROOT`` environment variable, the Airflow Variable ``mlops_artifact_root``, the
``[mlops] artifact_root`` option, then ``file://$AIRFLOW_HOME/mlops``. For object stores the
connection (``artifact_conn_id``, resolved the same way) is applied through Airflow's
``ObjectStoragePath``, so credentials stay in the connection.
"""

from __future__ import annotations

import os

from airflow.sdk.bases.hook import BaseHook

from mlops_provider import settings
from mlops_provider.core.storage import ArtifactStore

ROOT_ENV = "MLOPS_ARTIFACT_ROOT"
CONN_ENV = "MLOPS_ARTIFACT_CONN_ID"


def default_root() -> str:
    return settings.SETTINGS["artifact_root"].default()


def resolve_root(root: str | None = None) -> str:
    return resolve_root_and_source(root)[0]


def resolve_root_and_source(
    root: str | None = None, given_as: str = "the operator's artifact_root"
) -> tuple[str, str]:
    """(root, how it was chosen), by :func:`mlops_provider.settings.resolve_with_source`."""
    value, source = settings.resolve_with_source("artifact_root", root, given_as)
    if source == "the default":
        home = os.environ.get("AIRFLOW_HOME")
        how = f"AIRFLOW_HOME={home}" if home else "AIRFLOW_HOME unset, so ~/airflow"
        source = f"the default $AIRFLOW_HOME/mlops ({how}; set {ROOT_ENV} or pass --root to look elsewhere)"
    return check_root(value), source


def check_root(root: str) -> str:
    """Refuse a local artifact root that would expose or overwrite more than the artifacts: the
    filesystem root, ``AIRFLOW_HOME`` itself or a folder that contains it (its config, logs,
    metadata DB and secrets would become "artifacts" that DAG runs write and the registry page
    serves). A folder *inside* ``AIRFLOW_HOME`` (the default ``$AIRFLOW_HOME/mlops``) is fine."""
    from mlops_provider.core.errors import InvalidInputError

    if not isinstance(root, str) or not root.strip():
        raise InvalidInputError(
            f"The artifact root must be a URI such as 'file:///data/mlops'. Got {root!r} instead."
        )
    root = root.strip()
    if "://" in root and not root.startswith(("file://", "local://")):
        return root
    path = os.path.realpath(root.split("://", 1)[1] if "://" in root else os.path.expanduser(root))
    home = os.path.realpath(settings.airflow_home())
    if path == os.path.dirname(path) or path == home or home.startswith(path.rstrip(os.sep) + os.sep):
        raise InvalidInputError(
            f"The artifact root must be a folder of its own, not the filesystem root, AIRFLOW_HOME ({home}) "
            "or a "
            f"folder that contains it. Got {root!r} (resolved to {path!r}); e.g. use 'file://{home}/mlops'."
        )
    return root


def resolve_conn_id(conn_id: str | None = None) -> str | None:
    return settings.resolve("artifact_conn_id", conn_id)


class ArtifactStoreHook(BaseHook):
    """Builds the :class:`ArtifactStore` for the configured root and connection."""

    conn_name_attr = "artifact_conn_id"
    hook_name = "MLOps artifact store"

    def __init__(self, artifact_root: str | None = None, artifact_conn_id: str | None = None, **kwargs):
        super().__init__(**kwargs)
        self.artifact_root = artifact_root
        self.artifact_conn_id = artifact_conn_id

    def get_store(self) -> ArtifactStore:
        root = resolve_root(self.artifact_root)
        if "://" not in root or root.startswith(("file://", "local://")):
            return ArtifactStore(root)
        from airflow.sdk import ObjectStoragePath

        path = ObjectStoragePath(root, conn_id=resolve_conn_id(self.artifact_conn_id))
        return ArtifactStore(root, fs=path.fs)
