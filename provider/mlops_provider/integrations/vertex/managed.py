"""Scoring a pinned registry version with Vertex AI batch prediction: the keyword arguments of
``CreateBatchPredictionJobOperator`` and the Google provider's operator built from them.

The pin (``{"model", "version", "model_sha256", "version_uri"}``, a ``ResolveModelVersionOperator``
result) names the model: with the ``vertex`` registry backend, the versioned model
(``version_uri``, ``projects/.../models/<id>@<version>``); otherwise ``vertex_model_id`` at the
version alias ``v<version>`` (uploaded with that alias by your deployment step). The sha256 is a
job label.

The argument builder is a pure function (no Airflow, no Google client); :func:`build_operator`
imports the Google provider (google-cloud-aiplatform, seconds) when a task runs, never at DAG parse
time.
"""

from __future__ import annotations

import hashlib
import re
from typing import TYPE_CHECKING, Any

from mlops_provider.core.errors import InvalidInputError
from mlops_provider.core.managed import pinned_version, service_uri

if TYPE_CHECKING:
    from airflow.sdk import BaseOperator

_LABEL = re.compile(r"[^a-z0-9_-]")
_VERSIONED_MODEL = re.compile(r"projects/[^/]+/locations/[^/]+/models/[^/@]+@[^/@]+")


def _label(value: Any) -> str:
    return _LABEL.sub("-", str(value).lower())[:63]


def _model_name(
    model: dict[str, Any], version: int, project_id: str, region: str, vertex_model_id: str | None, owner: str
) -> str:
    """``vertex_model_id@v<version>``, or the pin's own Vertex model version."""
    version_uri = str(model.get("version_uri") or "")
    if vertex_model_id:
        return f"projects/{project_id}/locations/{region}/models/{vertex_model_id}@v{version}"
    if _VERSIONED_MODEL.fullmatch(version_uri):
        return version_uri  # the vertex registry backend's versioned model
    raise InvalidInputError(
        f"The 'vertex_model_id' parameter of {owner} must name the Vertex AI model (its versions uploaded "
        f"with the alias v<version>) unless the registry is the vertex backend. Got None, and the pinned "
        f"version's URI {version_uri!r} is not a Vertex AI model version."
    )


def _check_ids(project_id: Any, region: Any, vertex_model_id: Any, owner: str) -> None:
    for param, value in (
        ("project_id", project_id),
        ("region", region),
        ("vertex_model_id", vertex_model_id or "-"),
    ):
        if not isinstance(value, str) or not value.strip() or "/" in value:
            raise InvalidInputError(
                f"The {param!r} parameter of {owner} must be a non-empty id. Got {value!r} instead."
            )


def _check_replicas(starting_replica_count: Any, max_replica_count: Any, owner: str) -> None:
    for param, value in (
        ("starting_replica_count", starting_replica_count),
        ("max_replica_count", max_replica_count),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InvalidInputError(
                f"The {param!r} parameter of {owner} must be an int >= 1. Got {value!r} instead."
            )
    if max_replica_count < starting_replica_count:
        raise InvalidInputError(
            f"The 'max_replica_count' parameter of {owner} must be >= starting_replica_count "
            f"({starting_replica_count}). Got {max_replica_count!r} instead."
        )


def vertex_batch_prediction_kwargs(
    model: dict[str, Any],
    *,
    input_uri: str,
    output_uri: str,
    run_key: str,
    project_id: str,
    region: str,
    vertex_model_id: str | None = None,
    instances_format: str = "jsonl",
    predictions_format: str = "jsonl",
    machine_type: str = "n1-standard-4",
    starting_replica_count: int = 1,
    max_replica_count: int = 4,
    batch_size: int | None = None,
    labels: dict[str, str] | None = None,
    owner: str = "vertex_batch_prediction_kwargs",
) -> dict[str, Any]:
    """Keyword arguments of ``CreateBatchPredictionJobOperator`` (besides ``task_id`` and the
    connection): ``input_uri`` is a ``bq://project.dataset.table`` or ``gs://`` files
    (``instances_format``), ``output_uri`` a ``bq://project[.dataset]`` or ``gs://`` prefix; the model
    is ``vertex_model_id@v<version>``, or without it the pin's Vertex model version."""
    name, version, sha = pinned_version(model, owner)
    input_uri = service_uri(input_uri, ("bq", "gs"), "input_uri", owner)
    output_uri = service_uri(output_uri, ("bq", "gs"), "output_uri", owner)
    _check_ids(project_id, region, vertex_model_id, owner)
    model_name = _model_name(model, version, project_id, region, vertex_model_id, owner)
    _check_replicas(starting_replica_count, max_replica_count, owner)
    kwargs: dict[str, Any] = {
        "project_id": project_id,
        "region": region,
        "job_display_name": f"{name}-v{version}-{hashlib.sha256(run_key.encode()).hexdigest()[:10]}",
        "model_name": model_name,
        "machine_type": machine_type,
        "starting_replica_count": starting_replica_count,
        "max_replica_count": max_replica_count,
        "labels": {
            "mlops-model": _label(name),
            "mlops-version": str(version),
            "mlops-model-sha256": sha[:63],
            **{_label(k): _label(v) for k, v in (labels or {}).items()},
        },
    }
    if input_uri.startswith("bq://"):
        kwargs["bigquery_source"] = input_uri
    else:
        kwargs.update(gcs_source=[input_uri], instances_format=instances_format)
    if output_uri.startswith("bq://"):
        kwargs["bigquery_destination_prefix"] = output_uri
    else:
        kwargs.update(gcs_destination_prefix=output_uri, predictions_format=predictions_format)
    if batch_size:
        kwargs["batch_size"] = batch_size
    return kwargs


def build_operator(
    model: dict[str, Any],
    *,
    task_id: str,
    conn_id: str | None,
    deferrable: bool,
    input_uri: str,
    output_uri: str,
    run_key: str,
    owner: str,
    options: dict[str, Any],
) -> BaseOperator:
    """The Google provider's ``CreateBatchPredictionJobOperator`` for this job (``options``: the
    keyword arguments of :func:`vertex_batch_prediction_kwargs`)."""
    from airflow.providers.google.cloud.operators.vertex_ai.batch_prediction_job import (
        CreateBatchPredictionJobOperator,
    )

    kwargs = vertex_batch_prediction_kwargs(
        model, input_uri=input_uri, output_uri=output_uri, run_key=run_key, owner=owner, **options
    )
    return CreateBatchPredictionJobOperator(
        task_id=task_id,
        gcp_conn_id=conn_id or "google_cloud_default",
        deferrable=deferrable,
        **kwargs,
    )


def job_name(op: Any, result: Any) -> str:
    """The batch prediction job's resource name (from the operator's result), else its display name."""
    job = (result or {}).get("name") if isinstance(result, dict) else None
    return job or op.job_display_name
