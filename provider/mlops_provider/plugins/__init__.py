"""Airflow plugins shipped with the provider.

* :mod:`mlops_provider.plugins.registry_view`: the model-registry pages (``/mlops/...`` on the
  Airflow api-server, behind Airflow's authentication) and a "Model registry" navigation entry.

Nothing is imported here: the api-server, scheduler and workers import plugin modules at start,
so each plugin module keeps its own imports light.
"""
