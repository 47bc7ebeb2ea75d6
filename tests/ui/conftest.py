"""Fixtures of the model-registry UI tests: a real registry, a real ``airflow api-server`` (its own
AIRFLOW_HOME, SimpleAuthManager with known users) and headless Chromium driven by Selenium."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.ui.registry_data import build_registry

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
SCREENSHOTS = REPO / "test-artifacts" / "ui"
SERVER_START_TIMEOUT = 120
CHROME_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-quic",
    "--no-first-run",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1400,1000",
)


@pytest.fixture(scope="module")
def registry_info(tmp_path_factory) -> dict:
    """A freshly built registry (three versions, v2 champion) for one test module."""
    root = f"file://{tmp_path_factory.mktemp('ui-registry')}/artifacts"
    return build_registry(root)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _log_tail(path: Path, lines: int = 60) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _plugin_entry_point_installed() -> bool:
    """Whether the installed provider registers the plugin through an ``airflow.plugins`` entry
    point; then the api-server must not load the ./plugins drop-in too (same name -> import error)."""
    from importlib.metadata import entry_points

    return any(ep.value.startswith("mlops_provider.") for ep in entry_points(group="airflow.plugins"))


def _migrated_db(home: Path, airflow_db: str, env: dict[str, str]) -> None:
    """The api-server's own metadata DB: a copy of the session's migrated SQLite DB, else a migrate."""
    from airflow.configuration import conf

    session_url = conf.get("database", "sql_alchemy_conn")
    source = Path(session_url.removeprefix("sqlite:///")) if session_url.startswith("sqlite:///") else None
    if source is not None and source.is_file() and str(source).startswith(airflow_db):
        shutil.copy(source, home / "airflow.db")
        return
    subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"],
        env=env,
        check=True,
        capture_output=True,
        timeout=300,
    )


@pytest.fixture(scope="module")
def api_server(airflow_db, registry_info, tmp_path_factory):
    """``airflow api-server`` on 127.0.0.1:<free port> with the registry plugin (from the provider's
    ``airflow.plugins`` entry point when installed, else from the ./plugins drop-in).

    Yields {"url", "users": {name: password}, "log", "root"}; stopped with SIGTERM to its process
    group at teardown (SIGKILL after 30 s)."""
    import httpx

    home = tmp_path_factory.mktemp("api-server-home")
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    users = {"admin": secrets.token_urlsafe(12), "viewer": secrets.token_urlsafe(12)}
    (home / "passwords.json").write_text(json.dumps(users))
    empty_dags = home / "dags"
    empty_dags.mkdir()
    plugins_folder = home / "plugins" if _plugin_entry_point_installed() else REPO / "plugins"
    plugins_folder.mkdir(exist_ok=True)
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__CORE__AUTH_MANAGER": (
            "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
        ),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin,viewer:viewer",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(home / "passwords.json"),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(plugins_folder),
        "AIRFLOW__CORE__DAGS_FOLDER": str(empty_dags),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__API__BASE_URL": url,
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(32),
        "AIRFLOW__API__SECRET_KEY": secrets.token_hex(16),
        "MLOPS_ARTIFACT_ROOT": registry_info["root"],
    }
    env.pop("MLOPS_ARTIFACT_CONN_ID", None)
    _migrated_db(home, airflow_db, env)
    log_path = home / "api-server.log"
    log = open(log_path, "wb")  # noqa: SIM115 - closed at teardown
    cmd = [
        sys.executable,
        "-m",
        "airflow",
        "api-server",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
    ]
    started = time.monotonic()
    proc = subprocess.Popen(
        cmd,
        env=env,
        cwd=str(home),
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = started + SERVER_START_TIMEOUT
        while True:
            if proc.poll() is not None:
                pytest.fail(
                    f"airflow api-server exited with {proc.returncode} while starting:\n{_log_tail(log_path)}"
                )
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/api/v2/monitor/health", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline:
                pytest.fail(
                    f"airflow api-server not healthy within {SERVER_START_TIMEOUT}s:\n{_log_tail(log_path)}"
                )
            time.sleep(0.5)
        print(f"\napi-server healthy after {time.monotonic() - started:.1f}s at {url}")
        yield {"url": url, "users": users, "log": log_path, "root": registry_info["root"], "home": home}
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        log.close()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    """Headless Chromium (Debian's package) through Debian's chromedriver, with a fresh profile."""
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not os.access(p, os.X_OK)]
    if missing:
        pytest.fail(
            f"{missing} not installed: run scripts/ensure_chromium.sh "
            "(Debian packages chromium, chromium-driver)"
        )
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tmp_path_factory.mktemp("chromium-profile")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in CHROME_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    service = Service(executable_path=CHROMEDRIVER, log_output=str(profile.parent / "chromedriver.log"))
    driver = webdriver.Chrome(service=service, options=options)
    driver.set_page_load_timeout(60)
    driver.set_script_timeout(30)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    try:
        yield driver
    finally:
        driver.quit()
