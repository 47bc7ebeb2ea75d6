"""The arguments of a managed batch-scoring job for one pinned registry version: SageMaker Batch
Transform (``SageMakerTransformOperator``'s ``config``) or Vertex AI batch prediction
(``CreateBatchPredictionJobOperator``'s keyword arguments). Pure functions: no Airflow, no cloud SDK.

The pin (``{"model", "version", "model_sha256", "version_uri"}``, a ``ResolveModelVersionOperator``
result) names the model on the service:

* SageMaker: a Model ``<model>-v<version>``. With the ``sagemaker`` registry backend the version
  is a model package (``version_uri`` is its ARN) and the Model is made from it (its inference
  image). With the registry on the artifact store (on S3), it is made from the version's folder
  (``version_uri``: ``model.skops`` + ``metadata.json``, uncompressed) and ``image_uri``, a serving
  image that loads the skops file. The sha256 is in the environment (``MLOPS_MODEL_SHA256``, for
  the container to check) and in the tags.
* Vertex AI: with the ``vertex`` registry backend, the versioned model (``version_uri``,
  ``projects/.../models/<id>@<version>``); otherwise ``vertex_model_id`` at the version alias
  ``v<version>`` (uploaded with that alias by your deployment step). The sha256 is a job label.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from mlops_provider.core.errors import InvalidInputError

SAGEMAKER_NAME_MAX = 63
_LABEL = re.compile(r"[^a-z0-9_-]")


def _pin(model: Any, owner: str) -> tuple[str, int, str]:
    if (
        not isinstance(model, dict)
        or not isinstance(model.get("model"), str)
        or isinstance(model.get("version"), bool)
        or not str(model.get("version", "")).isdigit()
        or not isinstance(model.get("model_sha256"), str)
        or len(model["model_sha256"]) != 64
    ):
        raise InvalidInputError(
            f"The 'model' parameter of {owner} must be a pinned version {{'model': str, 'version': int, "
            f"'model_sha256': str}} (a ResolveModelVersionOperator result). Got {model!r} instead."
        )
    return model["model"], int(model["version"]), model["model_sha256"]


def _uri(value: Any, schemes: tuple[str, ...], parameter: str, owner: str) -> str:
    if (
        not isinstance(value, str)
        or not value.startswith(tuple(f"{s}://" for s in schemes))
        or len(value) > 1024
    ):
        want = " or ".join(f"{s}://..." for s in schemes)
        raise InvalidInputError(
            f"The {parameter!r} parameter of {owner} must be a {want} URI. Got {value!r} instead."
        )
    return value


def sagemaker_name(*parts: Any, unique: str = "") -> str:
    """A SageMaker resource name (letters, digits, hyphens; at most 63) from ``parts``; with
    ``unique``, a short hash of it is appended (job names must be unique per account)."""
    base = "-".join(re.sub(r"[^a-zA-Z0-9]+", "-", str(p)).strip("-") for p in parts if str(p))
    base = re.sub(r"-+", "-", base).strip("-") or "mlops"
    if unique:
        digest = hashlib.sha256(unique.encode()).hexdigest()[:10]
        base = f"{base[: SAGEMAKER_NAME_MAX - 11].rstrip('-')}-{digest}"
    return base[:SAGEMAKER_NAME_MAX].rstrip("-")


def sagemaker_transform_config(
    model: dict[str, Any],
    *,
    input_uri: str,
    output_uri: str,
    run_key: str,
    role_arn: str,
    image_uri: str | None = None,
    instance_type: str = "ml.m5.xlarge",
    instance_count: int = 1,
    content_type: str = "text/csv",
    split_type: str = "Line",
    accept: str | None = None,
    assemble_with: str | None = "Line",
    batch_strategy: str = "MultiRecord",
    max_payload_mb: int = 6,
    max_concurrent_transforms: int | None = None,
    input_filter: str | None = None,
    join_source: str | None = None,
    output_filter: str | None = None,
    environment: dict[str, str] | None = None,
    owner: str = "sagemaker_transform_config",
) -> dict[str, Any]:
    """``{"Model": CreateModel request, "Transform": CreateTransformJob request}`` for
    ``SageMakerTransformOperator(config=...)``: every object under the ``input_uri`` prefix is
    scored by ``instance_count`` instances, the outputs written under ``output_uri``.

    Keep ids next to the predictions with SageMaker's own filters, e.g. for CSV whose first column
    is the id: ``input_filter="$[1:]", join_source="Input", output_filter="$[0,-1]"``.
    """
    name, version, sha = _pin(model, owner)
    input_uri = _uri(input_uri, ("s3",), "input_uri", owner)
    output_uri = _uri(output_uri, ("s3",), "output_uri", owner)
    version_uri = model.get("version_uri")
    package = (
        isinstance(version_uri, str) and version_uri.startswith("arn:") and ":model-package/" in version_uri
    )
    if not package:
        version_uri = _uri(
            version_uri,
            ("s3",),
            "model['version_uri'] (a model package ARN, or the version's "
            "folder: the artifact root must be on S3)",
            owner,
        )
        if not isinstance(image_uri, str) or not image_uri.strip():
            raise InvalidInputError(
                f"The 'image_uri' parameter of {owner} must be a serving image URI. Got {image_uri!r} instead."
            )
    if not isinstance(role_arn, str) or not role_arn.startswith("arn:"):
        raise InvalidInputError(
            f"The 'role_arn' parameter of {owner} must be an IAM role ARN. Got {role_arn!r} instead."
        )
    for param, value in (("instance_count", instance_count), ("max_payload_mb", max_payload_mb)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InvalidInputError(
                f"The {param!r} parameter of {owner} must be an int >= 1. Got {value!r} instead."
            )
    model_name = sagemaker_name(name, f"v{version}")
    tags = [
        {"Key": "mlops:model", "Value": name},
        {"Key": "mlops:version", "Value": str(version)},
        {"Key": "mlops:model-sha256", "Value": sha},
    ]
    transform: dict[str, Any] = {
        "TransformJobName": sagemaker_name(name, f"v{version}", unique=run_key),
        "ModelName": model_name,
        "BatchStrategy": batch_strategy,
        "MaxPayloadInMB": max_payload_mb,
        "TransformInput": {
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": input_uri}},
            "ContentType": content_type,
            "SplitType": split_type,
        },
        "TransformOutput": {"S3OutputPath": output_uri},
        "TransformResources": {"InstanceType": instance_type, "InstanceCount": instance_count},
        "Tags": tags,
    }
    if accept:
        transform["TransformOutput"]["Accept"] = accept
    if assemble_with:
        transform["TransformOutput"]["AssembleWith"] = assemble_with
    if max_concurrent_transforms:
        transform["MaxConcurrentTransforms"] = max_concurrent_transforms
    processing = {
        k: v
        for k, v in (
            ("InputFilter", input_filter),
            ("JoinSource", join_source),
            ("OutputFilter", output_filter),
        )
        if v
    }
    if processing:
        transform["DataProcessing"] = processing
    container: dict[str, Any] = {
        "Environment": {
            "MLOPS_MODEL_NAME": name,
            "MLOPS_MODEL_VERSION": str(version),
            "MLOPS_MODEL_SHA256": sha,
            **(environment or {}),
        },
    }
    if package:  # the sagemaker registry backend's model package (image and model data in it)
        container["ModelPackageName"] = version_uri
    else:  # the version's folder as is (model.skops, metadata.json): an uncompressed S3 prefix
        container["Image"] = image_uri
        container["ModelDataSource"] = {
            "S3DataSource": {
                "S3Uri": version_uri.rstrip("/") + "/",
                "S3DataType": "S3Prefix",
                "CompressionType": "None",
            }
        }
    return {
        "Model": {
            "ModelName": model_name,
            "PrimaryContainer": container,
            "ExecutionRoleArn": role_arn,
            "Tags": tags,
        },
        "Transform": transform,
    }


def _label(value: Any) -> str:
    return _LABEL.sub("-", str(value).lower())[:63]


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
    name, version, sha = _pin(model, owner)
    input_uri = _uri(input_uri, ("bq", "gs"), "input_uri", owner)
    output_uri = _uri(output_uri, ("bq", "gs"), "output_uri", owner)
    for param, value in (
        ("project_id", project_id),
        ("region", region),
        ("vertex_model_id", vertex_model_id or "-"),
    ):
        if not isinstance(value, str) or not value.strip() or "/" in value:
            raise InvalidInputError(
                f"The {param!r} parameter of {owner} must be a non-empty id. Got {value!r} instead."
            )
    version_uri = str(model.get("version_uri") or "")
    if vertex_model_id:
        model_name = f"projects/{project_id}/locations/{region}/models/{vertex_model_id}@v{version}"
    elif re.fullmatch(r"projects/[^/]+/locations/[^/]+/models/[^/@]+@[^/@]+", version_uri):
        model_name = version_uri  # the vertex registry backend's versioned model
    else:
        raise InvalidInputError(
            f"The 'vertex_model_id' parameter of {owner} must name the Vertex AI model (its versions uploaded "
            f"with the alias v<version>) unless the registry is the vertex backend. Got None, and the pinned "
            f"version's URI {version_uri!r} is not a Vertex AI model version."
        )
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
            f"The 'max_replica_count' parameter of {owner} must be >= starting_replica_count ({starting_replica_count}). "
            f"Got {max_replica_count!r} instead."
        )
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
