"""The model registry on Amazon SageMaker Model Registry (model package groups and versions).

* A model is a *model package group* (``ModelPackageGroupName`` = the model name when it is a
  valid group name, else a sanitized name with a hash suffix; the group description records the
  mlops name). A version is a *model package* in it; its number is SageMaker's
  ``ModelPackageVersion``.
* The model file lives on the artifact store, which must be on S3:
  ``registry/<model>/packages/<id>/model.skops`` next to ``metadata.json`` (the full record:
  metrics, verdict, lineage, spec, params, tags, sha256), ``metrics.json`` (the package's
  ``ModelMetrics.ModelQuality.Statistics``) and, once the package exists, ``package.json`` (its
  ARN and version). With an ``inference_image`` the package's ``InferenceSpecification`` names
  that image and ``ModelDataUrl`` = the model file; without one the package has no inference
  specification (registry only). ``CustomerMetadataProperties`` hold the key fields (sha256, run
  key, estimator, verdict, the files' id and up to 30 numeric metrics; string values, at most 50
  keys, 256 characters per value).
* Reruns: ``<id>`` is ``<hash of the run key>-<sha256 prefix>``, so the folders of a run key are
  found by listing ``packages/``; ``package.json`` names the version. A registration that
  stopped between ``CreateModelPackage`` and ``package.json`` is recovered by matching the id in
  the properties of the group's packages created since. The create call also sends the id as
  ``ClientToken``, which makes SageMaker itself return the same package for a retried request.
  (A versioned package cannot carry tags of its own -- it takes its group's -- so tags are not
  used to find it.)
* ``ModelVersion.uri`` is the model package ARN, ``model_uri`` the model file's s3:// URI.

Aliases: SageMaker has none. The alias log on the artifact store is authoritative (compare-and-set,
history, rollback); the ``champion`` alias is mirrored as the approval status: its version is
``Approved`` and every other ``Approved`` version of the group is set to ``Rejected`` (approval
first, then rejections, so the group always has an approved version once it had one; at the end
exactly one is approved). Other aliases are kept in the log only. A new version starts as
``PendingManualApproval``.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import uuid
from typing import Any

from mlops_provider.core.errors import ConcurrentUpdateError, InvalidInputError, NotFoundError
from mlops_provider.core.names import check_name
from mlops_provider.core.registry import CHAMPION, BaseModelRegistry, ModelVersion, short_hash, version_from

APPROVED, REJECTED, PENDING = "Approved", "Rejected", "PendingManualApproval"
RECOVERY_WINDOW = dt.timedelta(minutes=15)  # clock skew allowed between this worker and SageMaker
GROUP_PREFIX = "mlops model: "
MAX_METRIC_PROPS = 30
_GROUP_RE = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
_PROP_BAD = re.compile(r"[^\w .:/=+\-@]")


def group_name(name: str) -> str:
    """The model package group of model ``name`` (SageMaker: letters, digits and '-', <= 63)."""
    if _GROUP_RE.match(name):
        return name
    base = re.sub(r"[^a-zA-Z0-9]+", "-", name).strip("-")[:54] or "model"
    return f"{base}-{short_hash(name, 8)}"


def package_id(run_key: str | None, sha256: str) -> str:
    """The folder id of one registration: ``<run key hash>-<sha256 prefix>`` (a rerun finds it by
    listing), random without a run key. Also the create call's ``ClientToken`` (<= 36, [a-z0-9-])."""
    return f"{short_hash(run_key, 16)}-{sha256[:16]}" if run_key else uuid.uuid4().hex


def _prop(value: Any, limit: int = 256) -> str:
    return _PROP_BAD.sub("_", str(value))[:limit]


def _client_error_message(err: Exception) -> str:
    resp = getattr(err, "response", None) or {}
    return str((resp.get("Error") or {}).get("Message") or err)


def _is_missing(err: Exception) -> bool:
    msg = _client_error_message(err).lower()
    return "does not exist" in msg or "not found" in msg or "cannot find" in msg


class SageMakerRegistry(BaseModelRegistry):
    """Versions on SageMaker Model Registry, files on the S3 artifact store (see the module docstring).

    :param store: the artifact store; must be on S3 (``s3://``).
    :param client: a boto3 ``sagemaker`` client (e.g. ``SageMakerHook(aws_conn_id=...).conn``).
    :param inference_image: container image for the packages' ``InferenceSpecification`` (optional).
    :param approval_alias: the alias mirrored as SageMaker's ``Approved`` status.
    """

    kind = "sagemaker"
    mirrors = True

    def __init__(
        self, store, client: Any, *, inference_image: str | None = None, approval_alias: str = CHAMPION
    ):
        if store.protocol not in ("s3", "s3a"):
            raise InvalidInputError(
                "The 'sagemaker' registry keeps model files on the artifact store, "
                "and SageMaker reads them from S3, so the artifact root must be an s3:// URI. "
                f"Got {store.root!r} instead."
            )
        super().__init__(store)
        self.client = client
        self.inference_image = inference_image or None
        self.approval_alias = approval_alias
        self._group_arns: dict[str, str] = {}

    def _label(self) -> str:
        return f"sagemaker model registry ({getattr(getattr(self.client, 'meta', None), 'region_name', '?')})"

    # ----------------------------------------------------------------- keys
    @staticmethod
    def _folder(name: str, uid: str) -> str:
        return f"registry/{name}/packages/{uid}"

    # ----------------------------------------------------------------- groups
    def _group_arn(self, name: str) -> str | None:
        group = group_name(name)
        if group not in self._group_arns:
            from botocore.exceptions import ClientError

            try:
                desc = self.client.describe_model_package_group(ModelPackageGroupName=group)
            except ClientError as err:
                if _is_missing(err):
                    return None
                raise
            self._group_arns[group] = desc["ModelPackageGroupArn"]
        return self._group_arns[group]

    def _ensure_group(self, name: str) -> str:
        arn = self._group_arn(name)
        if arn is not None:
            return arn
        from botocore.exceptions import ClientError

        try:
            self.client.create_model_package_group(
                ModelPackageGroupName=group_name(name),
                ModelPackageGroupDescription=f"{GROUP_PREFIX}{name}"[:1024],
                Tags=[{"Key": "mlops:model", "Value": _prop(name)}],
            )
        except ClientError as err:  # created by a concurrent writer
            if "already exists" not in _client_error_message(err).lower():
                raise
        arn = self._group_arn(name)
        if arn is None:  # pragma: no cover - the service just created it
            raise NotFoundError(
                f"Model package group {group_name(name)!r} was created but cannot be described"
            )
        return arn

    def list_models(self) -> list[str]:
        names, token = [], None
        while True:
            kw = {"MaxResults": 100, **({"NextToken": token} if token else {})}
            page = self.client.list_model_package_groups(**kw)
            for g in page.get("ModelPackageGroupSummaryList", []):
                desc = g.get("ModelPackageGroupDescription") or ""
                names.append(
                    desc[len(GROUP_PREFIX) :] if desc.startswith(GROUP_PREFIX) else g["ModelPackageGroupName"]
                )
            token = page.get("NextToken")
            if not token:
                return sorted(set(names))

    # ----------------------------------------------------------------- packages
    def _summaries(self, name: str, status: str | None = None) -> list[dict[str, Any]]:
        from botocore.exceptions import ClientError

        out, token = [], None
        while True:
            kw: dict[str, Any] = {
                "ModelPackageGroupName": group_name(name),
                "MaxResults": 100,
                "SortBy": "CreationTime",
                "SortOrder": "Ascending",
            }
            if status:
                kw["ModelApprovalStatus"] = status
            if token:
                kw["NextToken"] = token
            try:
                page = self.client.list_model_packages(**kw)
            except ClientError as err:
                if _is_missing(err):
                    return []
                raise
            out += page.get("ModelPackageSummaryList", [])
            token = page.get("NextToken")
            if not token:
                return sorted(out, key=lambda s: int(s.get("ModelPackageVersion") or 0))

    def _describe(self, arn: str) -> dict[str, Any]:
        return self.client.describe_model_package(ModelPackageName=arn)

    def _package_arn(self, name: str, version: int) -> str | None:
        group_arn = self._group_arn(name)
        if group_arn is None:
            return None
        guess = group_arn.replace(":model-package-group/", ":model-package/", 1).lower() + f"/{int(version)}"
        from botocore.exceptions import ClientError

        try:
            desc = self._describe(guess)
            if int(desc.get("ModelPackageVersion") or 0) == int(version):
                return desc["ModelPackageArn"]
        except ClientError as err:
            if not _is_missing(err):
                raise
        for s in self._summaries(name):  # an ARN of another shape: look it up
            if int(s.get("ModelPackageVersion") or 0) == int(version):
                return s["ModelPackageArn"]
        return None

    def _to_model_version(self, name: str, desc: dict[str, Any]) -> ModelVersion:
        props = desc.get("CustomerMetadataProperties") or {}
        containers = (desc.get("InferenceSpecification") or {}).get("Containers") or [{}]
        record = None
        uid = props.get("mlops:upload-id")
        if uid:
            key = f"{self._folder(name, uid)}/metadata.json"
            if self.store.exists(key):
                record = self.store.read_json(key)
        model_uri = (
            (record or {}).get("model_uri")
            or containers[0].get("ModelDataUrl")
            or props.get("mlops:model-uri", "")
        )
        return version_from(
            record,
            model=name,
            version=int(desc["ModelPackageVersion"]),
            uri=desc["ModelPackageArn"],
            model_uri=model_uri,
            model_sha256=(record or {}).get("model_sha256") or props.get("mlops:sha256", ""),
            created_at=(record or {}).get("created_at") or str(desc.get("CreationTime", "")),
        )

    def list_versions(self, name: str) -> list[ModelVersion]:
        check_name(name, "model_name", "SageMakerRegistry.list_versions")
        return [
            self._to_model_version(name, self._describe(s["ModelPackageArn"])) for s in self._summaries(name)
        ]

    def get_version(self, name: str, version: int) -> ModelVersion:
        check_name(name, "model_name", "SageMakerRegistry.get_version")
        arn = self._package_arn(name, version)
        if arn is None:
            known = [int(s["ModelPackageVersion"]) for s in self._summaries(name)]
            raise NotFoundError(
                f"Model {name!r} has no version {version} "
                f"in SageMaker model package group {group_name(name)!r}; "
                f"registered versions: {known or 'none'}"
            )
        return self._to_model_version(name, self._describe(arn))

    def find_by_run_key(self, name: str, run_key: str) -> ModelVersion | None:
        """The latest version registered by ``run_key``: its folders on the store name their package."""
        check_name(name, "model_name", "SageMakerRegistry.find_by_run_key")
        prefix = f"{short_hash(run_key, 16)}-"
        found = []
        for uid in self.store.list_dir(f"registry/{name}/packages"):
            if not uid.startswith(prefix):
                continue
            folder = self._folder(name, uid)
            desc = None
            if self.store.exists(f"{folder}/package.json"):
                desc = self._describe_or_none(self.store.read_json(f"{folder}/package.json")["arn"])
            elif self.store.exists(f"{folder}/metadata.json"):
                desc = self._recover(name, uid, self.store.read_json(f"{folder}/metadata.json"))
            if desc is not None:
                mv = self._to_model_version(name, desc)
                if mv.run_key == run_key:
                    found.append(mv)
        return max(found, key=lambda mv: mv.version) if found else None

    def _describe_or_none(self, arn: str) -> dict[str, Any] | None:
        from botocore.exceptions import ClientError

        try:
            return self._describe(arn)
        except ClientError as err:
            if _is_missing(err):
                return None
            raise

    def _recover(self, name: str, uid: str, record: dict[str, Any]) -> dict[str, Any] | None:
        """The package of a registration that stopped before writing ``package.json`` (or None if it
        never got created): the group's packages created since, matched on the id in their properties."""
        try:
            since = dt.datetime.fromisoformat(record["created_at"]) - RECOVERY_WINDOW
        except (KeyError, TypeError, ValueError):
            since = None
        for s in reversed(self._summaries(name)):
            created = s.get("CreationTime")
            if since is not None and isinstance(created, dt.datetime) and created.tzinfo and created < since:
                break
            desc = self._describe(s["ModelPackageArn"])
            if (desc.get("CustomerMetadataProperties") or {}).get("mlops:upload-id") == uid:
                self._write_ref(name, uid, desc)
                return desc
        return None

    def _write_ref(self, name: str, uid: str, desc: dict[str, Any]) -> None:
        self.store.write_json(
            f"{self._folder(name, uid)}/package.json",
            {
                "arn": desc["ModelPackageArn"],
                "version": int(desc["ModelPackageVersion"]),
                "group": group_name(name),
            },
        )

    # ----------------------------------------------------------------- writes
    def _create_version(self, name: str, data: bytes, record: dict[str, Any]) -> ModelVersion:
        """Files on S3 (model, metrics, the full record), then a model package of the group."""
        run_key, sha = record.get("run_key"), record["model_sha256"]
        uid = package_id(run_key, sha)
        folder = self._folder(name, uid)
        model_uri = self.store.uri(f"{folder}/model.skops")
        record["model_uri"] = model_uri
        verdict, lineage = record.get("verdict"), record.get("lineage")
        self.store.write_bytes(f"{folder}/model.skops", data)
        self.store.write_json(f"{folder}/metrics.json", {"metrics": record["metrics"], "verdict": verdict})
        self.store.write_json(f"{folder}/metadata.json", record)
        self._ensure_group(name)
        request: dict[str, Any] = {
            "ModelPackageGroupName": group_name(name),
            "ModelPackageDescription": _description(record)[:1024],
            "ModelApprovalStatus": PENDING,
            "CustomerMetadataProperties": self._properties(record, uid),
            "ModelMetrics": {
                "ModelQuality": {
                    "Statistics": {
                        "ContentType": "application/json",
                        "S3Uri": self.store.uri(f"{folder}/metrics.json"),
                    }
                }
            },
        }
        if run_key:
            request["ClientToken"] = uid  # the same request retried -> the same package
        generated_by = (lineage or {}).get(
            "dag_id"
        ) and f"airflow:{lineage['dag_id']}/{lineage.get('run_id')}"
        if generated_by:
            request["MetadataProperties"] = {"GeneratedBy": _prop(generated_by, 1024)}
        if self.inference_image:
            request["InferenceSpecification"] = {
                "Containers": [{"Image": self.inference_image, "ModelDataUrl": model_uri}],
                "SupportedContentTypes": ["text/csv", "application/x-parquet"],
                "SupportedResponseMIMETypes": ["text/csv", "application/json"],
            }
        arn = self.client.create_model_package(**request)["ModelPackageArn"]
        desc = self._describe(arn)
        if (desc.get("CustomerMetadataProperties") or {}).get("mlops:upload-id") != uid:
            # a real SageMaker gives each package its own ARN; an emulator numbering versions without a
            # lock may hand two writers the same one
            raise ConcurrentUpdateError(
                f"SageMaker returned {arn} for the new version of {name!r}, but that package holds another "
                "registration: two versions got the same number. Retry the registration."
            )
        self._write_ref(name, uid, desc)
        return self._to_model_version(name, desc)

    @staticmethod
    def _properties(record: dict[str, Any], uid: str) -> dict[str, str]:
        verdict = record.get("verdict")
        props = {
            "mlops:model": record["model"],
            "mlops:upload-id": uid,
            "mlops:sha256": record["model_sha256"],
            "mlops:estimator": record.get("estimator") or "",
            "mlops:run-key": record.get("run_key") or "",
            "mlops:verdict": "none" if verdict is None else ("passed" if verdict.get("passed") else "failed"),
        }
        if _prop(record["model_uri"]) == record["model_uri"]:  # a URI that fits a property value as is
            props["mlops:model-uri"] = record["model_uri"]
        metrics = [
            (k, v)
            for k, v in sorted((record.get("metrics") or {}).items())
            if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(float(v))
        ]
        for k, v in metrics[:MAX_METRIC_PROPS]:
            props[_prop(f"mlops:metric:{k}", 128)] = repr(float(v))
        return {_prop(k, 128): _prop(v) for k, v in props.items() if v != ""}

    # ----------------------------------------------------------------- aliases
    def _mirror_alias(self, name: str, alias: str, version: int, record: dict[str, Any]) -> None:
        """``approval_alias`` -> its version Approved, every other Approved version Rejected."""
        if alias != self.approval_alias:
            return  # other aliases live in the log only
        target = self._package_arn(name, version)
        if target is None:  # pragma: no cover - set_alias checked the version exists
            raise NotFoundError(f"Model {name!r} has no version {version} in SageMaker")
        note = f"mlops: {alias} -> v{version} by {record.get('actor')}: {record.get('reason')}"
        desc = self._describe(target)
        if desc.get("ModelApprovalStatus") != APPROVED:
            self._set_status(desc, APPROVED, note)
        for s in self._summaries(name, APPROVED):
            if int(s["ModelPackageVersion"]) != int(version):
                self._set_status(
                    self._describe(s["ModelPackageArn"]),
                    REJECTED,
                    f"mlops: {alias} moved to v{version} by {record.get('actor')}",
                )

    def _set_status(self, desc: dict[str, Any], status: str, note: str) -> None:
        request: dict[str, Any] = {
            "ModelPackageArn": desc["ModelPackageArn"],
            "ModelApprovalStatus": status,
            "ApprovalDescription": note[:1024],
        }
        if desc.get("CustomerMetadataProperties"):
            # unchanged values, sent again: moto's UpdateModelPackage drops properties it is not given
            request["CustomerMetadataProperties"] = desc["CustomerMetadataProperties"]
        self.client.update_model_package(**request)


def _description(record: dict[str, Any]) -> str:
    verdict = record.get("verdict") or {}
    parts = [f"mlops {record['model']}: {record.get('estimator') or 'model'}"]
    if record.get("run_key"):
        parts.append(f"run {record['run_key']}")
    if verdict:
        parts.append(f"verdict {'passed' if verdict.get('passed') else 'failed'}")
    metrics = record.get("metrics") or {}
    parts += [f"{k}={v}" for k, v in list(metrics.items())[:5]]
    return "; ".join(parts) + f"; sha256 {record['model_sha256'][:16]}"
