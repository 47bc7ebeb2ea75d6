"""Managed batch scoring (a cloud service scores a pinned registry version), the service-neutral
part: the checks every backend shares (:func:`pinned_version`, :func:`service_uri`) and the record
of a finished job (:func:`record_managed_job`: the prediction set's ``manifest.json``). No Airflow,
no cloud SDK.

Each service lives in its own folder of :mod:`mlops_provider.integrations`:

* :mod:`mlops_provider.integrations.sagemaker.managed` -- SageMaker Batch Transform
  (:func:`~mlops_provider.integrations.sagemaker.managed.sagemaker_transform_config`,
  ``SageMakerTransformOperator``'s ``config``);
* :mod:`mlops_provider.integrations.vertex.managed` -- Vertex AI batch prediction
  (:func:`~mlops_provider.integrations.vertex.managed.vertex_batch_prediction_kwargs`,
  ``CreateBatchPredictionJobOperator``'s keyword arguments).

Their names stay importable from here (``from mlops_provider.core.managed import
sagemaker_transform_config``), loaded on first use.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from mlops_provider.core.errors import InvalidInputError
from mlops_provider.core.params import Key, Name, Params

if TYPE_CHECKING:
    from mlops_provider.core.steps.run import RunInfo
    from mlops_provider.core.storage import ArtifactStore

BACKENDS = ("sagemaker", "vertex")
#: names that moved to the service folders -> the module now holding them
_MOVED = {
    "SAGEMAKER_NAME_MAX": "sagemaker",
    "sagemaker_name": "sagemaker",
    "sagemaker_transform_config": "sagemaker",
    "vertex_batch_prediction_kwargs": "vertex",
    "_LABEL": "vertex",
    "_label": "vertex",
}


def __getattr__(name: str) -> Any:
    if name in _MOVED:
        module = importlib.import_module(f"mlops_provider.integrations.{_MOVED[name]}.managed")
        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def integration(backend: str):
    """The module of ``backend``'s service (``build_operator``, ``job_name``, its request builder)."""
    if backend not in BACKENDS:
        raise InvalidInputError(
            f"The 'backend' parameter must be one of {list(BACKENDS)}. Got {backend!r} instead."
        )
    return importlib.import_module(f"mlops_provider.integrations.{backend}.managed")


def pinned_version(model: Any, owner: str) -> tuple[str, int, str]:
    """(model, version, sha256) of a pin (a ``ResolveModelVersionOperator`` result)."""
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


def service_uri(value: Any, schemes: tuple[str, ...], parameter: str, owner: str) -> str:
    """``value`` if it is a URI of one of ``schemes`` (at most 1024 characters)."""
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


_pin = pinned_version  # the names these had before
_uri = service_uri


@dataclass(frozen=True)
class ManagedScoreParams(Params):
    """:param backend: the service that scored. :param model_name: registry name. :param input_uri:
    what it scored. :param output_uri: where it wrote the predictions. :param output_key: the
    manifest's folder (default ``predictions/<model>/<dag_id>/<run_id>``). :param window: the data
    window scored, recorded in the manifest."""

    _step: ClassVar[str] = "record_managed_job"
    _parameter_constraints: ClassVar = {"model_name": [Name()], "output_key": [Key()]}

    backend: Literal["sagemaker", "vertex"]
    model_name: str
    input_uri: str
    output_uri: str
    output_key: str | None = None
    window: Any = None


@dataclass
class ManagedScoreResult:
    manifest: dict[str, Any]
    manifest_uri: str
    pin: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {**self.manifest, "manifest_uri": self.manifest_uri}

    def lineage(self) -> dict[str, Any]:
        m = self.manifest
        return {
            "inputs": [m["input_uri"], self.pin.get("model_uri")],
            "outputs": [m["output_uri"]],
            "step": "batch_score",
            "details": {
                "model": m["model"],
                "version": self.pin["version"],
                "backend": m["backend"],
                "job": m["job"],
            },
        }


def record_managed_job(
    params: ManagedScoreParams, *, job: str, pin: dict[str, Any], store: ArtifactStore, run: RunInfo
) -> ManagedScoreResult:
    """Write the manifest of a finished managed job (``job``) that scored with the pinned version
    ``pin``: written last, so a reader sees it only for a finished job. ``rows`` is None (the
    service does not say)."""
    folder = params.output_key or f"predictions/{params.model_name}/{run.dag_run_path}"
    key = f"{folder}/manifest.json"
    manifest = {
        "backend": params.backend,
        "job": job,
        "model": params.model_name,
        "model_version": int(pin["version"]),
        "model_sha256": pin["model_sha256"],
        "input_uri": params.input_uri,
        "output_uri": params.output_uri,
        "rows": None,
        "window": params.window,
        "dag_id": run.dag_id,
        "run_id": run.run_id,
        "task_id": run.task_id,
    }
    store.write_json(key, manifest)
    return ManagedScoreResult(manifest, store.uri(key), dict(pin))
