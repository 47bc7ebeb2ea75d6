"""The model registry on MLflow (tracking + model registry URI, e.g. ``sqlite:///.../mlflow.db`` or
``http://mlflow:5000``).

One registration is one MLflow run and one model version:

* the run (experiment ``experiment``, default ``"mlops"``) holds ``model/model.skops`` and
  ``mlops_metadata.json`` (the full record: metrics, verdict, lineage, spec, params, tags, sha256)
  as artifacts, the numeric metrics as run metrics and scalar params as run params;
* the registered model version (``create_model_version(source=<run artifacts>/model, run_id=...)``)
  carries the key fields as tags -- ``mlops.sha256``, ``mlops.run_key``, ``mlops.run_key_hash``,
  ``mlops.estimator``, ``mlops.created_at``, ``mlops.verdict.passed``, ``mlops.metadata`` (a
  pointer to the artifact) -- and each of metrics / verdict / lineage / spec / params / tags as a
  JSON tag when it fits MLflow's tag value limit (5000 characters in MLflow 2.x); a field that does
  not is listed in ``mlops.overflow`` and read from the artifact.

MLflow numbers versions itself (unique under concurrent writers). ``ModelVersion.uri`` is
``models:/<name>/<version>``, ``model_uri`` the artifact URI of the model file. Loading downloads
that file, checks its sha256 against the ``mlops.sha256`` tag and loads it with skops' trusted list.

Aliases: the alias log on the artifact store is authoritative (compare-and-set, history, rollback;
see :mod:`mlops_provider.registries._common`); MLflow's registered-model alias of the same name
(``models:/<name>@champion``) mirrors its head.
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import os
import re
import tempfile
import threading
import time
from typing import Any

from mlops_provider.core.errors import InvalidInputError, NotFoundError
from mlops_provider.core.names import check_name
from mlops_provider.core.registry import (
    BLOB_FIELDS,
    BaseModelRegistry,
    ModelVersion,
    short_hash,
    version_from,
)

TAG_LIMIT = 5000  # MLflow 2.x model-version tag value limit (3.x allows more; the smaller one is kept)
PARAM_LIMIT = 500  # the smallest param value limit across MLflow versions
MIRROR_SET_ATTEMPTS = 5
METADATA_ARTIFACT = "mlops_metadata.json"
MODEL_DIR = "model"
MODEL_FILE = "model.skops"
_ALIAS_RE = re.compile(r"^[A-Za-z0-9_\-]{1,255}$")
_METRIC_KEY_RE = re.compile(r"[^A-Za-z0-9_\-. /]")


#: MLflow reads a tracking server's credentials from these environment variables, per request.
CREDENTIAL_ENV = {
    "username": "MLFLOW_TRACKING_USERNAME",
    "password": "MLFLOW_TRACKING_PASSWORD",
    "token": "MLFLOW_TRACKING_TOKEN",
}
_ENV_LOCK = threading.RLock()


@contextlib.contextmanager
def mlflow_credentials(credentials: dict[str, str] | None):
    """Run a block with exactly ``credentials`` (env var -> value) as MLflow's credential variables,
    then restore the environment as it was. ``None``: the process environment unchanged. Calls are
    serialized by a lock, so two registries of different connections in one process (the
    api-server's threads) never see each other's credentials."""
    with _ENV_LOCK:
        if credentials is None:
            yield
            return
        saved = {env: os.environ.get(env) for env in CREDENTIAL_ENV.values()}
        try:
            for env in CREDENTIAL_ENV.values():
                if env in credentials:
                    os.environ[env] = credentials[env]
                else:
                    os.environ.pop(env, None)
            yield
        finally:
            for env, value in saved.items():
                if value is None:
                    os.environ.pop(env, None)
                else:
                    os.environ[env] = value


class _CredentialedClient:
    """An ``MlflowClient`` whose every method call runs inside :func:`mlflow_credentials`."""

    def __init__(self, client: Any, credentials: dict[str, str] | None):
        self._client = client
        self._credentials = credentials

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._client, name)
        if not callable(attr):
            return attr

        @functools.wraps(attr)
        def call(*args: Any, **kwargs: Any) -> Any:
            with mlflow_credentials(self._credentials):
                return attr(*args, **kwargs)

        return call


def _error_code(err: Exception) -> str:
    return str(getattr(err, "error_code", "") or "")


class MlflowRegistry(BaseModelRegistry):
    """Versions and aliases on an MLflow tracking server / model registry (see the module docstring).

    :param store: the artifact store (the alias log lives there).
    :param tracking_uri: MLflow tracking URI.
    :param registry_uri: MLflow model registry URI (default: the tracking URI).
    :param experiment: experiment the registration runs are logged to.
    :param artifact_location: artifact location of that experiment when this creates it (default:
        MLflow's: the server's artifact root, or ``./mlruns`` for a local store).
    :param client: an ``MlflowClient`` to use instead of building one.
    """

    kind = "mlflow"
    mirrors = True

    def __init__(
        self,
        store,
        *,
        tracking_uri: str,
        registry_uri: str | None = None,
        experiment: str = "mlops",
        artifact_location: str | None = None,
        client: Any = None,
        credentials: dict[str, str | None] | None = None,
    ):
        super().__init__(store)
        if not isinstance(tracking_uri, str) or not tracking_uri.strip():
            raise InvalidInputError(
                f"The 'tracking_uri' parameter of MlflowRegistry must be an MLflow tracking URI "
                f"(e.g. 'sqlite:////path/mlflow.db' or 'http://mlflow:5000'). Got {tracking_uri!r} instead."
            )
        self.tracking_uri = tracking_uri.strip()
        self.registry_uri = (registry_uri or self.tracking_uri).strip()
        self.experiment = experiment or "mlops"
        self.artifact_location = artifact_location
        self._raw_client = client
        self._client: Any = None
        self._credentials = (
            None
            if credentials is None
            else {env: str(credentials[key]) for key, env in CREDENTIAL_ENV.items() if credentials.get(key)}
        )
        self._experiment_id: str | None = None

    def _label(self) -> str:
        return f"mlflow registry {self.registry_uri}"

    @property
    def client(self):
        """The MLflow client; each of its calls runs with this registry's credentials (see
        :func:`mlflow_credentials`)."""
        if self._client is None:
            raw = self._raw_client
            if raw is None:
                from mlflow.tracking import MlflowClient

                raw = MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.registry_uri)
            self._client = _CredentialedClient(raw, self._credentials)
        return self._client

    # ----------------------------------------------------------------- reads
    def list_models(self) -> list[str]:
        names, token = [], None
        while True:
            page = self.client.search_registered_models(max_results=1000, page_token=token)
            names += [m.name for m in page]
            token = getattr(page, "token", None)
            if not token:
                return sorted(set(names))

    def _search_versions(self, filter_string: str) -> list[Any]:
        out, token = [], None
        while True:
            page = self.client.search_model_versions(filter_string, max_results=1000, page_token=token)
            out += list(page)
            token = getattr(page, "token", None)
            if not token:
                return sorted(out, key=lambda mv: int(mv.version))

    def list_versions(self, name: str) -> list[ModelVersion]:
        check_name(name, "model_name", "MlflowRegistry.list_versions")
        return [self._to_model_version(mv) for mv in self._search_versions(f"name = '{name}'")]

    def get_version(self, name: str, version: int) -> ModelVersion:
        check_name(name, "model_name", "MlflowRegistry.get_version")
        from mlflow.exceptions import MlflowException

        try:
            mv = self.client.get_model_version(name, str(int(version)))
        except MlflowException as err:
            if _error_code(err) != "RESOURCE_DOES_NOT_EXIST":
                raise
            known = [int(v.version) for v in self._search_versions(f"name = '{name}'")]
            raise NotFoundError(
                f"Model {name!r} has no version {version} in the MLflow registry at {self.registry_uri}; "
                f"registered versions: {known or 'none'}"
            ) from err
        return self._to_model_version(mv)

    def find_by_run_key(self, name: str, run_key: str) -> ModelVersion | None:
        hits = self._search_versions(
            f"name = '{name}' and tags.`mlops.run_key_hash` = '{short_hash(run_key)}'"
        )
        for mv in reversed(hits):
            if mv.tags.get("mlops.run_key") == run_key:
                return self._to_model_version(mv)
        return None

    def _to_model_version(self, mv: Any) -> ModelVersion:
        tags = dict(mv.tags or {})
        record: dict[str, Any] = {}
        for f in BLOB_FIELDS:
            if f"mlops.{f}" in tags:
                record[f] = json.loads(tags[f"mlops.{f}"])
        overflow = [f for f in tags.get("mlops.overflow", "").split(",") if f]
        if overflow and mv.run_id:
            full = self._read_metadata(mv.run_id)
            record.update({f: full.get(f) for f in overflow})
        created = tags.get("mlops.created_at") or _iso_millis(mv.creation_timestamp)
        return version_from(
            record,
            model=mv.name,
            version=int(mv.version),
            uri=f"models:/{mv.name}/{mv.version}",
            model_uri=f"{mv.source.rstrip('/')}/{MODEL_FILE}",
            model_sha256=tags.get("mlops.sha256", ""),
            created_at=created,
            run_key=tags.get("mlops.run_key") or None,
            estimator=tags.get("mlops.estimator") or None,
        )

    def _read_metadata(self, run_id: str) -> dict[str, Any]:
        with tempfile.TemporaryDirectory(prefix="mlops-mlflow-") as tmp:
            path = self.client.download_artifacts(run_id, METADATA_ARTIFACT, tmp)
            with open(path, "rb") as f:
                return json.load(f)

    def _read_model_bytes(self, mv: ModelVersion) -> bytes:
        """Download the model file of the version's run (its ``source``)."""
        from mlflow.artifacts import download_artifacts

        with (
            tempfile.TemporaryDirectory(prefix="mlops-mlflow-") as tmp,
            mlflow_credentials(self._credentials),
        ):
            path = download_artifacts(artifact_uri=mv.model_uri, dst_path=tmp, tracking_uri=self.tracking_uri)
            with open(path, "rb") as f:
                return f.read()

    # ----------------------------------------------------------------- writes
    def _create_version(self, name: str, data: bytes, record: dict[str, Any]) -> ModelVersion:
        """A run with the model file and the full record as artifacts, then a model version."""
        sha = record["model_sha256"]
        client = self.client
        run = client.create_run(
            self._experiment(),
            run_name=f"register-{name}",
            tags={"mlops.model": name, "mlops.run_key": record["run_key"] or "", "mlops.sha256": sha},
        )
        run_id = run.info.run_id
        source = f"{run.info.artifact_uri.rstrip('/')}/{MODEL_DIR}"
        record["model_uri"] = f"{source}/{MODEL_FILE}"
        try:
            with tempfile.TemporaryDirectory(prefix="mlops-mlflow-") as tmp:
                os.makedirs(os.path.join(tmp, MODEL_DIR))
                with open(os.path.join(tmp, MODEL_DIR, MODEL_FILE), "wb") as f:
                    f.write(data)
                with open(os.path.join(tmp, METADATA_ARTIFACT), "w") as f:
                    json.dump(record, f, indent=2, sort_keys=True, default=str)
                client.log_artifact(run_id, os.path.join(tmp, MODEL_DIR, MODEL_FILE), MODEL_DIR)
                client.log_artifact(run_id, os.path.join(tmp, METADATA_ARTIFACT))
            self._log_run_values(run_id, record)
            client.set_terminated(run_id, "FINISHED")
        except BaseException:
            client.set_terminated(run_id, "FAILED")
            raise
        self._ensure_registered_model(name)
        mv = self._new_model_version(name, source, run_id, self._version_tags(record, run_id), record)
        return self._to_model_version(mv)

    def _experiment(self) -> str:
        if self._experiment_id is None:
            from mlflow.exceptions import MlflowException

            exp = self.client.get_experiment_by_name(self.experiment)
            if exp is None:
                try:
                    self._experiment_id = self.client.create_experiment(
                        self.experiment, artifact_location=self.artifact_location
                    )
                except MlflowException:  # created by a concurrent writer
                    exp = self.client.get_experiment_by_name(self.experiment)
                    if exp is None:
                        raise
                    self._experiment_id = exp.experiment_id
            else:
                self._experiment_id = exp.experiment_id
        return self._experiment_id

    def _ensure_registered_model(self, name: str) -> None:
        from mlflow.exceptions import MlflowException

        try:
            self.client.get_registered_model(name)
            return
        except MlflowException as err:
            if _error_code(err) != "RESOURCE_DOES_NOT_EXIST":
                raise
        try:
            self.client.create_registered_model(
                name, tags={"mlops.managed": "true"}, description="Registered by airflow-provider-mlops"
            )
        except MlflowException:
            self.client.get_registered_model(name)  # a concurrent writer created it; anything else re-raises

    def _new_model_version(
        self, name: str, source: str, run_id: str, tags: dict[str, str], record: dict[str, Any]
    ):
        from mlflow.exceptions import MlflowException

        description = _description(record)
        for attempt in range(5):
            try:
                return self.client.create_model_version(
                    name, source, run_id=run_id, tags=tags, description=description
                )
            except MlflowException as err:
                # MLflow's SQL store gives up after 3 version-number collisions; nothing was created then
                if "Giving up" not in str(err) or attempt == 4:
                    raise
                time.sleep(0.05 * (attempt + 1))
        raise AssertionError("unreachable")  # pragma: no cover

    @staticmethod
    def _version_tags(record: dict[str, Any], run_id: str) -> dict[str, str]:
        verdict = record.get("verdict")
        tags = {
            "mlops.sha256": record["model_sha256"],
            "mlops.run_key": record.get("run_key") or "",
            "mlops.run_key_hash": short_hash(record["run_key"]) if record.get("run_key") else "",
            "mlops.estimator": record.get("estimator") or "",
            "mlops.created_at": record["created_at"],
            "mlops.verdict.passed": "" if verdict is None else str(bool(verdict.get("passed"))).lower(),
            "mlops.metadata": f"runs:/{run_id}/{METADATA_ARTIFACT}",
        }
        overflow = []
        for f in BLOB_FIELDS:
            text = json.dumps(record.get(f), sort_keys=True, default=str)
            if len(text) <= TAG_LIMIT:
                tags[f"mlops.{f}"] = text
            else:
                overflow.append(f)
        tags["mlops.overflow"] = ",".join(overflow)
        return {k: v for k, v in tags.items() if len(v) <= TAG_LIMIT}

    def _log_run_values(self, run_id: str, record: dict[str, Any]) -> None:
        from mlflow.entities import Metric, Param

        now = int(time.time() * 1000)
        metrics = [
            Metric(_METRIC_KEY_RE.sub("_", str(k))[:250], float(v), now, 0)
            for k, v in (record.get("metrics") or {}).items()
            if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(float(v))
        ]
        params = [
            Param(_METRIC_KEY_RE.sub("_", str(k))[:250], str(v))
            for k, v in (record.get("params") or {}).items()
            if isinstance(v, (str, int, float, bool)) and len(str(v)) <= PARAM_LIMIT
        ]
        for i in range(0, max(len(metrics), len(params)), 100):
            self.client.log_batch(run_id, metrics=metrics[i : i + 100], params=params[i : i + 100])

    # ----------------------------------------------------------------- aliases
    def _check_alias(self, alias: str) -> None:
        super()._check_alias(alias)
        if not _ALIAS_RE.match(alias) or alias.lower() == "latest" or re.fullmatch(r"[vV]\d+", alias):
            raise InvalidInputError(
                f"The 'alias' parameter must be an MLflow alias: letters, digits, '_' or '-', not 'latest' "
                f"nor 'v<number>'. Got {alias!r} instead."
            )

    def _mirror_alias(self, name: str, alias: str, version: int, record: dict[str, Any]) -> None:
        from mlflow.exceptions import MlflowException

        for attempt in range(MIRROR_SET_ATTEMPTS):
            try:
                current = int(self.client.get_model_version_by_alias(name, alias).version)
            except MlflowException as err:
                if _error_code(err) not in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
                    raise
                current = None
            if current == version:
                return
            try:
                self.client.set_registered_model_alias(name, alias, str(version))
                return
            except MlflowException:
                # MLflow's SQL store inserts a new alias row without a lock: two writers creating the
                # same alias at once collide on its unique key ("UNIQUE constraint failed"); read again
                if attempt == MIRROR_SET_ATTEMPTS - 1:
                    raise
                time.sleep(0.02 * (attempt + 1))


def _description(record: dict[str, Any]) -> str:
    verdict = record.get("verdict") or {}
    parts = [f"mlops: {record.get('estimator') or 'model'}"]
    if record.get("run_key"):
        parts.append(f"run {record['run_key']}")
    if verdict:
        parts.append(
            f"verdict {'passed' if verdict.get('passed') else 'failed'}: {verdict.get('reason', '')}"
        )
    return "; ".join(parts)[:5000]


def _iso_millis(ms: int | None) -> str:
    import datetime as dt

    if not ms:
        return ""
    return dt.datetime.fromtimestamp(ms / 1000, dt.timezone.utc).isoformat(timespec="microseconds")
