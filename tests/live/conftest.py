"""A real Airflow on SQLite, on loopback: api-server, scheduler (LocalExecutor), dag-processor and
triggerer started by the tests as separate processes, stopped by PID at the end.

``live_airflow(dags_folder, extra_env)`` starts the stack for one test module and returns a
:class:`LiveAirflow` with a REST client (JWT from SimpleAuthManager) and bounded waits that fail
with the components' log tails."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")
START_TIMEOUT = 180


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


class LiveAirflow:
    def __init__(self, home: Path, url: str, env: dict[str, str]):
        self.home, self.url, self.env = home, url, env
        self.procs: dict[str, subprocess.Popen] = {}
        self._token: str | None = None

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        for name in COMPONENTS:
            log = open(self.home / f"{name}.log", "wb")  # noqa: SIM115 - closed with the process
            self.procs[name] = subprocess.Popen(
                [sys.executable, "-m", "airflow", *name.split()],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.wait_for(self._healthy, START_TIMEOUT, "Airflow components to report healthy")

    def stop(self) -> None:
        for proc in self.procs.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 30
        for proc in self.procs.values():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)

    def logs(self) -> str:
        return "\n".join(f"--- {n}.log ---\n{tail(self.home / f'{n}.log')}" for n in COMPONENTS)

    # ------------------------------------------------------------------ REST
    def _healthy(self):
        import httpx

        for name, proc in self.procs.items():
            if proc.poll() is not None:
                raise RuntimeError(f"airflow {name} exited with {proc.returncode}\n{self.logs()}")
        try:
            h = httpx.get(f"{self.url}/api/v2/monitor/health", timeout=5).json()
        except Exception:
            return False
        return all(
            h.get(k, {}).get("status") == "healthy"
            for k in ("metadatabase", "scheduler", "triggerer", "dag_processor")
        )

    def token(self) -> str:
        import httpx

        if self._token is None:
            pw = json.loads((self.home / "passwords.json").read_text())["admin"]
            r = httpx.post(f"{self.url}/auth/token", json={"username": "admin", "password": pw}, timeout=10)
            r.raise_for_status()
            self._token = r.json()["access_token"]
        return self._token

    def api(self, method: str, path: str, **kw):
        import httpx

        r = httpx.request(
            method,
            f"{self.url}/api/v2{path}",
            headers={"Authorization": f"Bearer {self.token()}"},
            timeout=30,
            **kw,
        )
        if r.status_code >= 400:
            raise AssertionError(f"{method} {path} -> {r.status_code}: {r.text[:500]}")
        return r.json() if r.content else None

    def dag_runs(self, dag_id: str) -> list[dict]:
        try:
            return self.api("GET", f"/dags/{dag_id}/dagRuns", params={"order_by": "-run_after", "limit": 50})[
                "dag_runs"
            ]
        except AssertionError:
            return []

    def unpause(self, dag_id: str) -> None:
        self.wait_for(lambda: self._dag_known(dag_id), 120, f"the dag-processor to parse {dag_id}")
        self.api("PATCH", f"/dags/{dag_id}", json={"is_paused": False})

    def _dag_known(self, dag_id: str) -> bool:
        try:
            self.api("GET", f"/dags/{dag_id}")
            return True
        except AssertionError:
            return False

    def wait_for(self, condition, timeout: float, what: str, interval: float = 1.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = condition()
            if value:
                return value
            time.sleep(interval)
        raise AssertionError(f"Timed out after {timeout:.0f}s waiting for {what}\n{self.logs()}")

    def wait_for_run(
        self, dag_id: str, timeout: float, known: set[str] = frozenset(), state: str | None = "success"
    ):
        """A run of ``dag_id`` not in ``known`` that reached a final state (and ``state``, if given)."""

        def finished():
            for run in self.dag_runs(dag_id):
                if run["dag_run_id"] not in known and run["state"] in ("success", "failed"):
                    return run
            return None

        run = self.wait_for(finished, timeout, f"a new finished run of {dag_id}")
        if state and run["state"] != state:
            tis = self.api("GET", f"/dags/{dag_id}/dagRuns/{run['dag_run_id']}/taskInstances")[
                "task_instances"
            ]
            states = {t["task_id"]: t["state"] for t in tis}
            raise AssertionError(
                f"{dag_id} run {run['dag_run_id']} ended {run['state']}: {states}\n{self.logs()}"
            )
        return run


@pytest.fixture(scope="module")
def live_airflow(tmp_path_factory, airflow_db):
    """Factory: ``start(dags_folder, extra_env) -> LiveAirflow`` (one stack per module)."""
    stacks: list[LiveAirflow] = []

    def start(dags_folder: Path, extra_env: dict[str, str] | None = None) -> LiveAirflow:
        home = tmp_path_factory.mktemp("live-airflow")
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        (home / "passwords.json").write_text(json.dumps({"admin": secrets.token_urlsafe(12)}))
        env = {
            **os.environ,
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": "4",
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
            "AIRFLOW__CORE__AUTH_MANAGER": (
                "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
            ),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(home / "passwords.json"),
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{url}/execution/",
            "AIRFLOW__API__BASE_URL": url,
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(port),
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(32),
            "AIRFLOW__API__SECRET_KEY": secrets.token_hex(16),
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "5",
            "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "2",
            "AIRFLOW__OPENLINEAGE__DISABLED": "True",
            **(extra_env or {}),
        }
        subprocess.run(
            [sys.executable, "-m", "airflow", "db", "migrate"],
            env=env,
            check=True,
            capture_output=True,
            timeout=300,
        )
        stack = LiveAirflow(home, url, env)
        stacks.append(stack)
        stack.start()
        return stack

    yield start
    for stack in stacks:
        stack.stop()
