"""The local, server-less setup shared by `make demo` and `make airflow`: everything lives in the
git-ignored `.local/` folder of the repo. Import this before importing Airflow."""

from __future__ import annotations

import json
import os
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
LOCAL = Path(os.environ.get("MLOPS_LOCAL_DIR", REPO / ".local"))
WAREHOUSE = LOCAL / "warehouse.db"


DEFAULT_PORT = 8080
# Airflow's own defaults for the worker and triggerer log servers (8793, 8794): a PORT other than
# 8080 moves them next to it, so `PORT=8794 make airflow` does not collide with the triggerer.
_LOG_PORTS = (8793, 8794)


def port_settings(port: int) -> dict[str, str]:
    """Everything derived from the api-server's port: the port, the URL tasks call the execution
    API on, the base URL of links and alerts, and the two log-server ports."""
    if not 1024 <= port <= 65533:
        raise SystemExit(f"PORT must be a number between 1024 and 65533. Got {str(port)!r} instead.")
    url = f"http://127.0.0.1:{port}"
    worker_log, trigger_log = _LOG_PORTS if port == DEFAULT_PORT else (port + 1, port + 2)
    return {
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__BASE_URL": url,
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{url}/execution/",
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(worker_log),
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(trigger_log),
    }


def configure() -> dict[str, str]:
    """Set (without overriding what the user set) the environment Airflow and the provider read;
    ``PORT`` (default 8080) moves the api-server and everything derived from it."""
    raw = os.environ.get("PORT", "").strip() or str(DEFAULT_PORT)
    if not raw.isdigit():
        raise SystemExit(f"PORT must be a number between 1024 and 65533. Got {raw!r} instead.")
    env = {
        "AIRFLOW_HOME": str(LOCAL / "airflow"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__PARALLELISM": "4",
        "AIRFLOW__API__HOST": "127.0.0.1",
        **port_settings(int(raw)),
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
