"""The SageMaker registry backend, built from an ``aws`` connection (the amazon provider's hook)."""

from __future__ import annotations

from typing import Any

from mlops_provider.hooks.registry import _connection


def sagemaker_registry(conn_id: str | None, store: Any, **options: Any):
    from mlops_provider.registries.sagemaker import SageMakerRegistry

    conn = _connection(conn_id, "sagemaker", "an 'aws' connection")
    if "client" not in options:
        from airflow.providers.amazon.aws.hooks.sagemaker import SageMakerHook

        options["client"] = SageMakerHook(aws_conn_id=conn_id).conn
    options.setdefault("inference_image", (conn.extra_dejson or {}).get("inference_image"))
    return SageMakerRegistry(store, **options)
