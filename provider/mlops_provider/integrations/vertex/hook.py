"""The Vertex AI registry backend, built from a ``google_cloud_platform`` connection."""

from __future__ import annotations

from typing import Any

from mlops_provider.hooks.registry import DEFAULT_VERTEX_LOCATION, _connection


def vertex_registry(conn_id: str | None, store: Any, **options: Any):
    from mlops_provider.registries.vertex import VertexRegistry

    conn = _connection(conn_id, "vertex", "a 'google_cloud_platform' connection")
    extra = conn.extra_dejson or {}

    def field(name: str):
        return extra.get(name) or extra.get(f"extra__google_cloud_platform__{name}")

    if "credentials" not in options or "project" not in options:
        from airflow.providers.google.common.hooks.base_google import GoogleBaseHook

        hook = GoogleBaseHook(gcp_conn_id=conn_id)
        options.setdefault("credentials", hook.get_credentials())
        options.setdefault("project", hook.project_id)
    options.setdefault("location", field("location") or field("region") or DEFAULT_VERTEX_LOCATION)
    options.setdefault("serving_image", field("serving_image"))
    return VertexRegistry(store, **options)
