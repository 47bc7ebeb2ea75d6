"""Model registry backends other than the default one kept on the artifact store.

Each has the public API of :class:`mlops_provider.core.registry.ModelRegistry` and returns its
:class:`~mlops_provider.core.registry.ModelVersion` / :class:`~mlops_provider.core.registry.AliasEvent`
records, so operators, the CLI and the templates do not change with the backend:

* :class:`~mlops_provider.registries.mlflow.MlflowRegistry` -- MLflow runs + registered model versions;
* :class:`~mlops_provider.registries.sagemaker.SageMakerRegistry` -- SageMaker model package groups;
* :class:`~mlops_provider.registries.vertex.VertexRegistry` -- Vertex AI model versions.

Aliases of every backend go through the alias log on the artifact store (compare-and-set,
history, rollback) and are mirrored into the service; see :mod:`mlops_provider.registries._common`.
Built from Airflow connections by :func:`mlops_provider.hooks.registry.get_registry`. Nothing
heavy is imported here: each backend imports its client library when first used.
"""

from __future__ import annotations

__all__ = ["MlflowRegistry", "SageMakerRegistry", "VertexRegistry"]


def __getattr__(name: str):
    if name == "MlflowRegistry":
        from mlops_provider.registries.mlflow import MlflowRegistry

        return MlflowRegistry
    if name == "SageMakerRegistry":
        from mlops_provider.registries.sagemaker import SageMakerRegistry

        return SageMakerRegistry
    if name == "VertexRegistry":
        from mlops_provider.registries.vertex import VertexRegistry

        return VertexRegistry
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
