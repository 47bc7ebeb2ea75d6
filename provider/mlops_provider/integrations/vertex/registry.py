"""The model registry on Vertex AI Model Registry (a model with versions and version aliases).

* A model is a Vertex AI ``Model`` whose id is derived from the name (:func:`model_id`: the name
  itself when it is a valid id, else a sanitized name with a hash suffix), display name = the name.
  The first registration uploads it with that ``model_id`` (so concurrent first registrations
  cannot create two models: the loser gets ``AlreadyExists`` and uploads a version instead); later
  ones upload with ``parent_model`` and ``is_default_version=False``. The version number is Vertex's
  ``version_id``.
* The model file lives on the artifact store, which must be on GCS:
  ``registry/<model>/uploads/<id>/model.skops`` next to ``metadata.json`` (the full record:
  metrics, verdict, lineage, spec, params, tags, sha256); that folder is the version's
  ``artifact_uri``. Labels carry the key fields (lowercase, <= 63 characters): ``mlops_managed``,
  ``mlops_upload`` (the folder id), ``mlops_run_key`` (a hash, searched by reruns),
  ``mlops_sha256`` (its first 40 hex digits), ``mlops_verdict`` and ``mlops_estimator``; the
  version description has the readable summary.
* ``ModelVersion.uri`` is the versioned resource name (``projects/.../models/<id>@<version>``),
  ``model_uri`` the gs:// URI of the model file.

Aliases: the alias log on the artifact store is authoritative (compare-and-set, history,
rollback); the Vertex version alias of the same name mirrors its head (removed from the version
that held it, then added to the new one: Vertex keeps an alias on one version at a time).
``default`` is Vertex's own alias and is refused.

The one seam to the Google client: :func:`load_aiplatform` returns the ``google.cloud.aiplatform``
module; the registry calls only ``Model.upload``, ``Model(...)``, ``Model.list`` and
``models.ModelRegistry(...).list_versions / add_version_aliases / remove_version_aliases``. Tests
pass their own object through the ``aiplatform`` argument (or patch this function).
"""

from __future__ import annotations

import re
from typing import Any

from mlops_provider.core.errors import InvalidInputError, NotFoundError
from mlops_provider.core.names import check_name
from mlops_provider.core.registry import BaseModelRegistry, ModelVersion, short_hash, upload_id, version_from

DEFAULT_SERVING_IMAGE = "us-docker.pkg.dev/vertex-ai/prediction/sklearn-cpu.1-3:latest"
_ID_RE = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
_ALIAS_RE = re.compile(r"^[a-z][a-zA-Z0-9-]{0,126}[a-z0-9]$")
_LABEL_BAD = re.compile(r"[^a-z0-9_-]")
UPLOAD_ATTEMPTS = 5


def load_aiplatform():
    """The Vertex AI SDK module (imported on first use: it is heavy)."""
    from google.cloud import aiplatform

    return aiplatform


def model_id(name: str) -> str:
    """The Vertex AI model id of model ``name`` (``[a-z][a-z0-9_-]{0,62}``)."""
    if _ID_RE.match(name):
        return name
    base = re.sub(r"[^a-z0-9_-]+", "-", name.lower()).strip("-_")
    base = base if base[:1].isalpha() else f"m-{base}"
    return f"{base[:53].rstrip('-_')}-{short_hash(name, 8)}"


def label(value: Any) -> str:
    """A label value: lowercase letters, digits, '_' and '-', at most 63 characters."""
    return _LABEL_BAD.sub("-", str(value).lower())[:63]


def _google_error(err: Exception, *names: str) -> bool:
    return type(err).__name__ in names


class VertexRegistry(BaseModelRegistry):
    """Versions on Vertex AI Model Registry, files on the GCS artifact store (see the module docstring).

    :param store: the artifact store; must be on GCS (``gs://``).
    :param project: Google Cloud project.
    :param location: Vertex AI region (e.g. ``"us-central1"``).
    :param credentials: google-auth credentials (from the Airflow connection).
    :param serving_image: the versions' serving container image (Vertex requires one; the prebuilt
        scikit-learn images read joblib/pickle files, so serving skops needs a custom image).
    :param aiplatform: the SDK module to call (default :func:`load_aiplatform`); the test seam.
    """

    kind = "vertex"
    mirrors = True

    def __init__(
        self,
        store,
        *,
        project: str,
        location: str,
        credentials: Any = None,
        serving_image: str | None = None,
        aiplatform: Any = None,
    ):
        if store.protocol not in ("gs", "gcs"):
            raise InvalidInputError(
                "The 'vertex' registry keeps model files on the artifact store, "
                "and Vertex AI reads a version's artifacts from GCS, "
                f"so the artifact root must be a gs:// URI. Got {store.root!r} instead."
            )
        for param, value in (("project", project), ("location", location)):
            if not isinstance(value, str) or not value.strip():
                raise InvalidInputError(
                    f"The {param!r} parameter of VertexRegistry must be a non-empty string "
                    f"(from the connection's project / extra 'location'). Got {value!r} instead."
                )
        super().__init__(store)
        self.project = project
        self.location = location
        self.credentials = credentials
        self.serving_image = serving_image or DEFAULT_SERVING_IMAGE
        self.aip = aiplatform if aiplatform is not None else load_aiplatform()

    def _label(self) -> str:
        return f"vertex ai model registry projects/{self.project}/locations/{self.location}"

    @property
    def _where(self) -> dict[str, Any]:
        return {"project": self.project, "location": self.location, "credentials": self.credentials}

    def resource_name(self, name: str) -> str:
        return f"projects/{self.project}/locations/{self.location}/models/{model_id(name)}"

    @staticmethod
    def _folder(name: str, uid: str) -> str:
        return f"registry/{name}/uploads/{uid}"

    # ----------------------------------------------------------------- reads
    def _model(self, name: str, version: str | None = None):
        """The SDK ``Model`` of ``name`` (at ``version``), or None if Vertex has no such model/version."""
        try:
            return self.aip.Model(model_name=self.resource_name(name), version=version, **self._where)
        except Exception as err:
            if _google_error(err, "NotFound"):
                return None
            raise

    def _registry(self, name: str):
        return self.aip.models.ModelRegistry(self.resource_name(name), **self._where)

    def _version_infos(self, name: str, filter: str | None = None) -> list[Any]:
        if self._model(name) is None:
            return []
        infos = self._registry(name).list_versions(filter=filter)
        return sorted(infos, key=lambda v: int(v.version_id))

    def list_models(self) -> list[str]:
        found = self.aip.Model.list(filter='labels.mlops_managed="true"', **self._where)
        return sorted({m.display_name for m in found})

    def _to_model_version(self, name: str, model: Any) -> ModelVersion:
        record = None
        folder = (model.uri or "").rstrip("/")
        if folder:
            try:
                key = f"{self.store.key_of(folder)}/metadata.json"
            except ValueError:  # a version whose artifacts are outside the artifact root
                key = None
            if key and self.store.exists(key):
                record = self.store.read_json(key)
        return version_from(
            record,
            model=name,
            version=int(model.version_id),
            uri=model.versioned_resource_name,
            model_uri=(record or {}).get("model_uri") or (f"{folder}/model.skops" if folder else ""),
            model_sha256=(record or {}).get("model_sha256") or "",
            created_at=(record or {}).get("created_at")
            or str(getattr(model, "version_create_time", "") or ""),
        )

    def list_versions(self, name: str) -> list[ModelVersion]:
        check_name(name, "model_name", "VertexRegistry.list_versions")
        out = []
        for info in self._version_infos(name):
            model = self._model(name, info.version_id)
            if model is not None:
                out.append(self._to_model_version(name, model))
        return out

    def get_version(self, name: str, version: int) -> ModelVersion:
        check_name(name, "model_name", "VertexRegistry.get_version")
        model = self._model(name, str(int(version)))
        if model is None:
            known = [int(v.version_id) for v in self._version_infos(name)]
            raise NotFoundError(
                f"Model {name!r} has no version {version} in Vertex AI model {self.resource_name(name)}; "
                f"registered versions: {known or 'none'}"
            )
        return self._to_model_version(name, model)

    def find_by_run_key(self, name: str, run_key: str) -> ModelVersion | None:
        hits = self._version_infos(name, filter=f'labels.mlops_run_key="{short_hash(run_key)}"')
        for info in reversed(hits):
            model = self._model(name, info.version_id)
            if model is None:
                continue
            mv = self._to_model_version(name, model)
            if mv.run_key == run_key:
                return mv
        return None

    # ----------------------------------------------------------------- writes
    def _create_version(self, name: str, data: bytes, record: dict[str, Any]) -> ModelVersion:
        """Files on GCS (model, the full record), then ``Model.upload`` as a version of the model."""
        run_key, sha = record.get("run_key"), record["model_sha256"]
        uid = upload_id(run_key, sha)
        folder = self._folder(name, uid)
        record["model_uri"] = self.store.uri(f"{folder}/model.skops")
        verdict, estimator = record.get("verdict"), record.get("estimator")
        self.store.write_bytes(f"{folder}/model.skops", data)
        self.store.write_json(f"{folder}/metadata.json", record)
        labels = {
            "mlops_managed": "true",
            "mlops_upload": label(uid),
            "mlops_run_key": short_hash(run_key) if run_key else "none",
            "mlops_sha256": sha[:40],
            "mlops_verdict": "none" if verdict is None else ("passed" if verdict.get("passed") else "failed"),
            "mlops_estimator": label((estimator or "unknown").rsplit(".", 1)[-1]),
        }
        parent = self._model(name)
        for attempt in range(UPLOAD_ATTEMPTS):
            try:
                model = self.aip.Model.upload(
                    display_name=name,
                    artifact_uri=self.store.uri(folder),
                    serving_container_image_uri=self.serving_image,
                    model_id=None if parent is not None else model_id(name),
                    parent_model=parent.resource_name if parent is not None else None,
                    is_default_version=parent is None,
                    version_description=_description(record),
                    labels=labels,
                    sync=True,
                    **self._where,
                )
                break
            except Exception as err:
                # a concurrent first registration created the model: upload a version of it instead
                if not _google_error(err, "AlreadyExists", "Conflict") or attempt == UPLOAD_ATTEMPTS - 1:
                    raise
                parent = self._model(name)
        return self._to_model_version(name, model)

    # ----------------------------------------------------------------- aliases
    def _check_alias(self, alias: str) -> None:
        super()._check_alias(alias)
        if alias == "default" or not _ALIAS_RE.match(alias):
            raise InvalidInputError(
                "The 'alias' parameter must be a Vertex AI version alias "
                "([a-z][a-zA-Z0-9-]{0,126}[a-z0-9]) other "
                f"than 'default' (Vertex's own). Got {alias!r} instead."
            )

    def _mirror_alias(self, name: str, alias: str, version: int, record: dict[str, Any]) -> None:
        registry = self._registry(name)
        for attempt in range(UPLOAD_ATTEMPTS):
            try:
                holds = False
                for info in registry.list_versions():
                    if alias in (info.version_aliases or ()):
                        if int(info.version_id) == int(version):
                            holds = True
                        else:
                            registry.remove_version_aliases([alias], info.version_id)
                if not holds:
                    registry.add_version_aliases([alias], str(int(version)))
                return
            except Exception as err:
                # another writer moved the alias between our listing and our change: list again
                if not _google_error(err, "FailedPrecondition", "AlreadyExists", "NotFound", "Aborted") or (
                    attempt == UPLOAD_ATTEMPTS - 1
                ):
                    raise


def _description(record: dict[str, Any]) -> str:
    verdict = record.get("verdict") or {}
    parts = [
        f"mlops {record['model']}: {record.get('estimator') or 'model'}",
        f"sha256 {record['model_sha256']}",
    ]
    if record.get("run_key"):
        parts.append(f"run {record['run_key']}")
    if verdict:
        parts.append(
            f"verdict {'passed' if verdict.get('passed') else 'failed'}: {verdict.get('reason', '')}"
        )
    parts += [f"{k}={v}" for k, v in list((record.get("metrics") or {}).items())[:10]]
    return "; ".join(parts)[:2000]
