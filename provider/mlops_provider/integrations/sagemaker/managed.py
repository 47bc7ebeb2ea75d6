"""Scoring a pinned registry version with SageMaker Batch Transform: the requests
(``SageMakerTransformOperator``'s ``config``: a CreateModel and a CreateTransformJob request) and
the Amazon provider's operator that submits them.

The pin (``{"model", "version", "model_sha256", "version_uri"}``, a ``ResolveModelVersionOperator``
result) names a SageMaker Model ``<model>-v<version>``. With the ``sagemaker`` registry backend the
version is a model package (``version_uri`` is its ARN) and the Model is made from it (its
inference image). With the registry on the artifact store (on S3), it is made from the version's
folder (``version_uri``: ``model.skops`` + ``metadata.json``, uncompressed) and ``image_uri``, a
serving image that loads the skops file. The sha256 is in the environment (``MLOPS_MODEL_SHA256``,
for the container to check) and in the tags.

The request builders are pure functions (no Airflow, no boto3); :func:`build_operator` imports the
Amazon provider (and so boto3) when a task runs, never at DAG parse time.
"""

from __future__ import annotations

import hashlib
import re
from typing import TYPE_CHECKING, Any

from mlops_provider.core.errors import InvalidInputError
from mlops_provider.core.managed import pinned_version, service_uri

if TYPE_CHECKING:
    from airflow.sdk import BaseOperator

SAGEMAKER_NAME_MAX = 63
#: seconds between two polls of the job, unless ``options`` say ``check_interval``
CHECK_INTERVAL = 30


def sagemaker_name(*parts: Any, unique: str = "") -> str:
    """A SageMaker resource name (letters, digits, hyphens; at most 63) from ``parts``; with
    ``unique``, a short hash of it is appended (job names must be unique per account)."""
    base = "-".join(re.sub(r"[^a-zA-Z0-9]+", "-", str(p)).strip("-") for p in parts if str(p))
    base = re.sub(r"-+", "-", base).strip("-") or "mlops"
    if unique:
        digest = hashlib.sha256(unique.encode()).hexdigest()[:10]
        base = f"{base[: SAGEMAKER_NAME_MAX - 11].rstrip('-')}-{digest}"
    return base[:SAGEMAKER_NAME_MAX].rstrip("-")


def _check_model_source(model: dict[str, Any], image_uri: Any, owner: str) -> tuple[str, bool]:
    """(the version's URI, whether it is a model package ARN); a folder needs a serving image."""
    version_uri = model.get("version_uri")
    package = (
        isinstance(version_uri, str) and version_uri.startswith("arn:") and ":model-package/" in version_uri
    )
    if not package:
        version_uri = service_uri(
            version_uri,
            ("s3",),
            "model['version_uri'] (a model package ARN, or the version's "
            "folder: the artifact root must be on S3)",
            owner,
        )
        if not isinstance(image_uri, str) or not image_uri.strip():
            raise InvalidInputError(
                f"The 'image_uri' parameter of {owner} must be a serving image URI. "
                f"Got {image_uri!r} instead."
            )
    return version_uri, package


def _check_job_settings(role_arn: Any, instance_count: Any, max_payload_mb: Any, owner: str) -> None:
    if not isinstance(role_arn, str) or not role_arn.startswith("arn:"):
        raise InvalidInputError(
            f"The 'role_arn' parameter of {owner} must be an IAM role ARN. Got {role_arn!r} instead."
        )
    for param, value in (("instance_count", instance_count), ("max_payload_mb", max_payload_mb)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InvalidInputError(
                f"The {param!r} parameter of {owner} must be an int >= 1. Got {value!r} instead."
            )


def _container(
    name: str, version: int, sha: str, version_uri: str, package: bool, image_uri: Any, environment: Any
) -> dict[str, Any]:
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
    return container


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
    name, version, sha = pinned_version(model, owner)
    input_uri = service_uri(input_uri, ("s3",), "input_uri", owner)
    output_uri = service_uri(output_uri, ("s3",), "output_uri", owner)
    version_uri, package = _check_model_source(model, image_uri, owner)
    _check_job_settings(role_arn, instance_count, max_payload_mb, owner)
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
    return {
        "Model": {
            "ModelName": model_name,
            "PrimaryContainer": _container(name, version, sha, version_uri, package, image_uri, environment),
            "ExecutionRoleArn": role_arn,
            "Tags": tags,
        },
        "Transform": transform,
    }


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
    """The Amazon provider's ``SageMakerTransformOperator`` for this job (``options``: the keyword
    arguments of :func:`sagemaker_transform_config`, plus ``check_interval``)."""
    from airflow.providers.amazon.aws.operators.sagemaker import SageMakerTransformOperator

    options = dict(options)
    check_interval = options.pop("check_interval", CHECK_INTERVAL)
    config = sagemaker_transform_config(
        model, input_uri=input_uri, output_uri=output_uri, run_key=run_key, owner=owner, **options
    )
    return SageMakerTransformOperator(
        task_id=task_id,
        config=config,
        aws_conn_id=conn_id or "aws_default",
        wait_for_completion=True,
        check_interval=check_interval,
        deferrable=deferrable,
        check_if_job_exists=True,
        action_if_job_exists="timestamp",  # a retry starts a new job
        # an existing <model>-v<version> gets a timestamped twin (same image, same version folder)
        check_if_model_exists=True,
        action_if_model_exists="timestamp",
    )


def job_name(op: Any, result: Any) -> str:
    """The transform job's name, from the operator's config."""
    return op.config.get("Transform", op.config)["TransformJobName"]
