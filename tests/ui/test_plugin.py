"""The plugin as Airflow sees it: found by Airflow's own plugin loaders, valid UI extension points,
light to import (the api-server, scheduler and workers import plugins at start), safe keys."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import REPO

HEAVY = (
    "pandas",
    "sklearn",
    "pyarrow",
    "numpy",
    "skops",
    "matplotlib",
    "great_expectations",
    "mlops_provider.core.registry",
    "airflow.api_fastapi.core_api.security",
)


def test_importing_the_plugin_stays_light():
    code = (
        "import json, sys; import mlops_provider.plugins.registry_view; "
        f"print(json.dumps([m for m in {list(HEAVY)!r} if m in sys.modules]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


def test_the_plugins_folder_drop_in_defers_to_the_installed_entry_point(monkeypatch):
    """Mounting ./plugins next to an installed provider must not register the plugin twice; without
    the provider's entry point, the drop-in is how Airflow finds it."""
    import importlib.metadata

    from airflow.plugins_manager import _load_plugins_from_plugin_directory

    assert any(ep.name == "mlops_registry" for ep in importlib.metadata.entry_points(group="airflow.plugins"))
    plugins, errors = _load_plugins_from_plugin_directory(plugins_folder=str(REPO / "plugins"))
    assert errors == {} and plugins == []

    real = importlib.metadata.entry_points
    monkeypatch.setattr(
        importlib.metadata,
        "entry_points",
        lambda **kw: [] if kw.get("group") == "airflow.plugins" else real(**kw),
    )
    plugins, errors = _load_plugins_from_plugin_directory(plugins_folder=str(REPO / "plugins"))
    assert errors == {}
    assert [p.name for p in plugins] == ["mlops_registry"]


def test_ui_extension_points_are_valid():
    from airflow.api_fastapi.app import RESERVED_URL_PREFIXES
    from airflow.api_fastapi.core_api.datamodels.plugins import ExternalViewResponse
    from airflow.plugins_manager import is_valid_plugin

    from mlops_provider.plugins.registry_view import MlopsRegistryPlugin

    assert is_valid_plugin(MlopsRegistryPlugin)
    (fastapi_app,) = MlopsRegistryPlugin.fastapi_apps
    assert fastapi_app["url_prefix"] == "/mlops"
    assert not any(fastapi_app["url_prefix"].startswith(p) for p in RESERVED_URL_PREFIXES)
    (view,) = MlopsRegistryPlugin.external_views
    parsed = ExternalViewResponse(**view)
    assert (parsed.name, parsed.href, parsed.destination, parsed.url_route) == (
        "Model registry",
        "mlops/",
        "nav",
        "mlops",  # shown inside Airflow's UI at /plugin/mlops
    )


@pytest.mark.parametrize(
    "key",
    ["../x", "a/../../x", "/etc/passwd", "a//b", "./a", "a\\b", "C:/x", "s3://bucket/x", "a/.tmp-123-x", ""],
)
def test_check_key_refuses_keys_that_could_leave_the_root(key):
    from starlette.exceptions import HTTPException

    from mlops_provider.plugins.registry_view import check_key

    with pytest.raises(HTTPException) as err:
        check_key(key)
    assert err.value.status_code == 400


def test_run_folders_are_one_safe_segment_per_id():
    from mlops_provider.core.names import path_segment, run_folder

    assert run_folder("mlops_retrain_scheduled", "scheduled__2013-08-01T00:00:00+00:00") == (
        "mlops_retrain_scheduled/scheduled__2013-08-01T00_00_00+00_00"
    )
    assert path_segment("manual run/é") == "manual_run__"
    dots = path_segment("..")
    assert dots.startswith("_..-") and dots != path_segment(".") and "/" not in dots
