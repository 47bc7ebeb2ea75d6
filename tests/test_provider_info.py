import importlib
import json
import os
from importlib import metadata

import airflow
import jsonschema

from mlops_provider import __version__
from mlops_provider.get_provider_info import get_provider_info


def test_provider_info_is_valid_against_airflow_schema():
    schema_path = os.path.join(os.path.dirname(airflow.__file__), "provider_info.schema.json")
    with open(schema_path) as f:
        jsonschema.validate(get_provider_info(), json.load(f))
    assert get_provider_info()["versions"][0] == __version__


def test_every_listed_module_and_class_imports():
    info = get_provider_info()
    modules = [
        m
        for section in ("operators", "hooks", "sensors", "triggers")
        for item in info.get(section, [])
        for m in item["python-modules"]
    ]
    assert modules
    for m in modules:
        importlib.import_module(m)
    for dotted in (
        info.get("hook-class-names", []) + info.get("notifications", []) + info.get("extra-links", [])
    ):
        module, _, name = dotted.rpartition(".")
        assert hasattr(importlib.import_module(module), name), dotted
    for ct in info.get("connection-types", []):
        module, _, name = ct["hook-class-name"].rpartition(".")
        assert hasattr(importlib.import_module(module), name)


def test_entry_point_is_registered_and_seen_by_airflow():
    eps = [
        ep
        for ep in metadata.entry_points(group="apache_airflow_provider")
        if ep.value.startswith("mlops_provider")
    ]
    assert len(eps) == 1 and eps[0].load()()["package-name"] == "airflow-provider-mlops"
    from airflow.providers_manager import ProvidersManager

    assert "airflow-provider-mlops" in ProvidersManager().providers
