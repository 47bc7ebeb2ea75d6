"""`PORT=<port> make airflow` (scripts/airflow_standalone.sh) on a port other than 8080: the
api-server answers there, a task reaches the execution API there (it would call localhost:8080
otherwise), and the triggerer's log server moved off Airflow's default 8794 next to it."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import textwrap

from tests.conftest import REPO
from tests.live.conftest import LiveAirflow, tail

DAG = """
from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import DAG

with DAG("port_check", schedule=None):
    PythonOperator(task_id="hello", python_callable=lambda: 42)
"""


def _three_free_ports() -> int:
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port > 65530:
            continue
        try:
            for p in (port + 1, port + 2):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", p))
        except OSError:
            continue
        return port
    raise RuntimeError("no three consecutive free ports")


class Standalone(LiveAirflow):
    """``make airflow``'s script as one process group (its own standalone supervisor)."""

    def start(self) -> None:
        log = open(self.home / "standalone.log", "wb")  # noqa: SIM115 - closed with the process
        self.procs = {
            "standalone": subprocess.Popen(
                ["bash", str(REPO / "scripts" / "airflow_standalone.sh")],
                cwd=REPO,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        }
        self.wait_for(self._healthy, 300, "airflow standalone to report healthy")

    def logs(self) -> str:
        return f"--- standalone.log ---\n{tail(self.home / 'standalone.log', 80)}"

    def token(self) -> str:
        import httpx

        if self._token is None:
            generated = self.home / "airflow" / "simple_auth_manager_passwords.json.generated"
            pw = json.loads(generated.read_text())["admin"]
            r = httpx.post(f"{self.url}/auth/token", json={"username": "admin", "password": pw}, timeout=10)
            r.raise_for_status()
            self._token = r.json()["access_token"]
        return self._token


def test_make_airflow_on_another_port_runs_a_task(tmp_path):
    port = _three_free_ports()
    dags = tmp_path / "dags"
    dags.mkdir()
    (dags / "port_check.py").write_text(textwrap.dedent(DAG))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "MLOPS_", "PORT"))}
    env.update(MLOPS_LOCAL_DIR=str(tmp_path), PORT=str(port), AIRFLOW__CORE__DAGS_FOLDER=str(dags))
    stack = Standalone(tmp_path, f"http://127.0.0.1:{port}", env)
    try:
        stack.start()
        stack.unpause("port_check")
        stack.api("POST", "/dags/port_check/dagRuns", json={"logical_date": None})
        run = stack.wait_for_run("port_check", 180)
        assert run["state"] == "success"
        with socket.create_connection(("127.0.0.1", port + 2), timeout=5):
            pass  # the triggerer's log server, moved next to the api-server
    finally:
        stack.stop()
