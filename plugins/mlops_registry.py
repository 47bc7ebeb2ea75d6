"""Drop-in for deployments that mount ./plugins as Airflow's plugins folder.

The model-registry plugin lives in the provider package (``mlops_provider.plugins.registry_view``);
Airflow loads it from there through the provider's entry points. Where those are not used (for
example ``[core] lazy_discover_providers = True`` without the ``airflow.plugins`` entry point, or an
editable checkout), this file makes the plugins folder pick it up. Do not load it both ways: Airflow
keeps the first plugin named ``mlops_registry`` and reports the second as a plugin import error.
"""

from mlops_provider.plugins.registry_view import MlopsRegistryPlugin

__all__ = ["MlopsRegistryPlugin"]
