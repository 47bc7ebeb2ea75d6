"""The local, server-less setup shared by `make demo` and `make airflow`: everything lives in the
git-ignored `.local/` folder of the repo. Import this before importing Airflow."""

from __future__ import annotations

import json
import os
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
LOCAL = Path(os.environ.get("MLOPS_LOCAL_DIR", REPO / ".local"))
WAREHOUSE = LOCAL / "warehouse.db"


def configure() -> dict[str, str]:
    """Set (without overriding what the user set) the environment Airflow and the provider read."""
    env = {
        "AIRFLOW_HOME": str(LOCAL / "airflow"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__PARALLELISM": "4",
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": "8080",
        "MLOPS_ARTIFACT_ROOT": f"file://{LOCAL / 'mlops'}",
        "AIRFLOW_CONN_MLOPS_WAREHOUSE": json.dumps({"conn_type": "sqlite", "host": str(WAREHOUSE)}),
    }
    for k, v in env.items():
        os.environ.setdefault(k, v)
    Path(os.environ["AIRFLOW_HOME"]).mkdir(parents=True, exist_ok=True)
    return {k: os.environ[k] for k in env}


if __name__ == "__main__":  # print as shell exports, for `eval "$(python scripts/localenv.py)"`
    import shlex

    for k, v in configure().items():
        print(f"export {k}={shlex.quote(v)}")
