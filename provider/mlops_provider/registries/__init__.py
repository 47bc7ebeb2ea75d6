"""Model registry backends other than the one on the artifact store (compatibility package).

The backends live with everything else of their service in :mod:`mlops_provider.integrations`
(``mlflow``, ``sagemaker``, ``vertex``) and follow the contract of
:class:`mlops_provider.core.registry.BaseModelRegistry`; they are built from Airflow connections by
:func:`mlops_provider.hooks.registry.get_registry`. Nothing heavy is imported here.
"""

from __future__ import annotations

import importlib

__all__ = ["MlflowRegistry", "SageMakerRegistry", "VertexRegistry"]
_HOMES = {"MlflowRegistry": "mlflow", "SageMakerRegistry": "sagemaker", "VertexRegistry": "vertex"}


def __getattr__(name: str):
    if name in _HOMES:
        return getattr(importlib.import_module(f"mlops_provider.integrations.{_HOMES[name]}.registry"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
