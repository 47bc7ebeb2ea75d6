"""`make demo` / `make airflow` settings (scripts/localenv.py): PORT moves the api-server and
everything derived from it, without colliding with Airflow's log-server ports."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys

import pytest

from tests.conftest import REPO


def exports(**env) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "MLOPS_", "PORT"))}
    proc = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "localenv.py")],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    out = {}
    for line in proc.stdout.splitlines():
        key, _, value = line.removeprefix("export ").partition("=")
        out[key] = shlex.split(value)[0]
    return out


def test_default_port_keeps_airflows_defaults(tmp_path):
    env = exports(MLOPS_LOCAL_DIR=str(tmp_path))
    assert env["AIRFLOW__API__PORT"] == "8080"
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://127.0.0.1:8080/execution/"
    assert env["AIRFLOW__API__BASE_URL"] == "http://127.0.0.1:8080"
    assert (
        env["AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT"],
        env["AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT"],
    ) == (
        "8793",
        "8794",
    )


@pytest.mark.parametrize("port", [8794, 8793, 18080])
def test_port_moves_everything_derived_from_it(tmp_path, port):
    env = exports(MLOPS_LOCAL_DIR=str(tmp_path), PORT=str(port))
    assert env["AIRFLOW__API__PORT"] == str(port)
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == f"http://127.0.0.1:{port}/execution/"
    assert env["AIRFLOW__API__BASE_URL"] == f"http://127.0.0.1:{port}"
    ports = [
        int(env["AIRFLOW__API__PORT"]),
        int(env["AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT"]),
        int(env["AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT"]),
    ]
    assert len(set(ports)) == 3, ports  # PORT=8794 no longer collides with the triggerer's log server


def test_what_the_user_set_wins(tmp_path):
    env = exports(
        MLOPS_LOCAL_DIR=str(tmp_path), PORT="9000", AIRFLOW__API__BASE_URL="https://airflow.example"
    )
    assert env["AIRFLOW__API__BASE_URL"] == "https://airflow.example" and env["AIRFLOW__API__PORT"] == "9000"


@pytest.mark.parametrize("bad", ["abc", "80", "70000"])
def test_a_bad_port_is_refused_naming_it(tmp_path, bad):
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "MLOPS_", "PORT"))}
    proc = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "localenv.py")],
        env={**clean, "MLOPS_LOCAL_DIR": str(tmp_path), "PORT": bad},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode != 0
    assert f"PORT must be a number between 1024 and 65533. Got '{bad}' instead." in proc.stderr
