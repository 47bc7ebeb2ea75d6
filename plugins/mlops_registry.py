"""Drop-in for deployments that mount ./plugins as Airflow's plugins folder.

The model-registry plugin lives in the provider package (``mlops_provider.plugins.registry_view``).
An installed provider registers it through its ``airflow.plugins`` entry point; loading it from the
plugins folder as well would make Airflow report a duplicate plugin (an import error). So this file
exposes the plugin only where that entry point is not installed (for example a checkout put on
``PYTHONPATH`` instead of being installed), and is harmless to mount either way.
"""

from importlib.metadata import entry_points

if not any(ep.name == "mlops_registry" for ep in entry_points(group="airflow.plugins")):
    from mlops_provider.plugins.registry_view import MlopsRegistryPlugin

    __all__ = ["MlopsRegistryPlugin"]
