"""A stand-in for the ``google.cloud.aiplatform`` calls the Vertex AI registry backend makes.

Vertex AI has no emulator, so the backend is tested at its one seam (the ``aiplatform`` module it
is given). This fake keeps Model resources in the shape of the Vertex AI REST reference
(``projects.locations.models``: ``name``, ``displayName``, ``versionId``, ``versionAliases``,
``versionDescription``, ``artifactUri``, ``containerSpec.imageUri``, ``labels``,
``versionCreateTime``) and answers like the service does for what the backend relies on:

* ``models.upload`` (``UploadModelRequest``: ``parent``, ``modelId``, ``parentModel``, ``model``):
  the first version of a model is always the ``default`` one; a ``modelId`` that exists without a
  ``parentModel`` is ``409 AlreadyExists``; an unknown ``parentModel`` is ``404 NotFound``; version
  ids are decimal strings counting up per model, allocated atomically;
* label rules (at most 64; keys ``[a-z][a-z0-9_-]{0,62}``, values ``[a-z0-9_-]{0,63}``), alias
  format ``[a-z][a-zA-Z0-9-]{0,126}[a-z0-9]`` and ``modelId`` format -> ``400 InvalidArgument``;
* ``models.mergeVersionAliases``: an alias is held by one version of a model at a time; adding one
  another version holds is refused with ``400 FailedPrecondition`` (the conservative reading of
  the reference; a service that moved it instead would be handled by the backend just the same);
  ``default`` cannot be removed;
* ``models.get`` / ``models.listVersions`` / ``models.list`` with ``labels.<k>="<v>"`` and
  ``display_name="<x>"`` filters.

Errors are google-api-core's exception classes, as the SDK raises them. Every call's keyword
arguments are checked against the installed SDK's own signatures, read from its source with
``ast`` (importing the SDK takes about 10 s), so the fake cannot accept a call the SDK would not.
What it cannot show: the SDK's own request building, auth, long-running operations, and the
service's real latency, quotas and consistency.
"""

from __future__ import annotations

import ast
import copy
import datetime as dt
import functools
import importlib.util
import os
import re
import threading
from types import SimpleNamespace
from typing import Any, NamedTuple

from google.api_core import exceptions as gexc

_LABEL_KEY = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
_LABEL_VALUE = re.compile(r"^[a-z0-9_-]{0,63}$")
_ALIAS = re.compile(r"^[a-z][a-zA-Z0-9-]{0,126}[a-z0-9]$")
_MODEL_ID = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")


# ------------------------------------------------------------------------------ the SDK's signatures
_PARSE_LOCK = threading.Lock()  # CPython 3.11's ast.parse is not safe from several threads at once


def sdk_signatures() -> dict[str, list[str]]:
    """Parameter names of the SDK calls the backend makes, and VersionInfo's fields, from the
    installed ``google/cloud/aiplatform/models.py`` (parsed once, not imported)."""
    with _PARSE_LOCK:
        return _sdk_signatures()


@functools.lru_cache(maxsize=1)
def _sdk_signatures() -> dict[str, list[str]]:
    spec = importlib.util.find_spec("google.cloud.aiplatform")
    folder = list(spec.submodule_search_locations)[0]

    def classes_of(module: str) -> dict[str, ast.ClassDef]:
        with open(os.path.join(folder, module)) as f:
            return {n.name: n for n in ast.parse(f.read()).body if isinstance(n, ast.ClassDef)}

    classes, base_classes = classes_of("models.py"), classes_of("base.py")

    def properties(node: ast.ClassDef) -> list[str]:
        """Properties of a class and of its bases defined in aiplatform/base.py."""
        out = [
            n.name
            for n in node.body
            if isinstance(n, ast.FunctionDef)
            and any(getattr(d, "id", None) == "property" for d in n.decorator_list)
        ]
        for b in node.bases:
            base_name = b.attr if isinstance(b, ast.Attribute) else getattr(b, "id", None)
            if base_name in base_classes:
                out += properties(base_classes[base_name])
        return out

    def params(cls: str, fn: str) -> list[str]:
        (node,) = [n for n in classes[cls].body if isinstance(n, ast.FunctionDef) and n.name == fn]
        a = node.args
        return [p.arg for p in a.posonlyargs + a.args + a.kwonlyargs if p.arg not in ("self", "cls")]

    out = {
        "Model.__init__": params("Model", "__init__"),
        "Model.upload": params("Model", "upload"),
        "Model.list": params("Model", "list"),
        "ModelRegistry.__init__": params("ModelRegistry", "__init__"),
        "ModelRegistry.list_versions": params("ModelRegistry", "list_versions"),
        "ModelRegistry.get_version_info": params("ModelRegistry", "get_version_info"),
        "ModelRegistry.add_version_aliases": params("ModelRegistry", "add_version_aliases"),
        "ModelRegistry.remove_version_aliases": params("ModelRegistry", "remove_version_aliases"),
        "VersionInfo": [n.target.id for n in classes["VersionInfo"].body if isinstance(n, ast.AnnAssign)],
        "Model.properties": sorted(set(properties(classes["Model"]))),
    }
    return out


def _check(method: str, args: dict[str, Any]) -> None:
    known = sdk_signatures()[method]
    unknown = sorted(set(args) - set(known))
    if unknown:
        raise TypeError(f"aiplatform {method}() has no parameter(s) {unknown} (installed SDK: {known})")


class VersionInfo(NamedTuple):
    """``google.cloud.aiplatform.models.VersionInfo`` (same fields, same order)."""

    version_id: str
    version_create_time: Any
    version_update_time: Any
    model_display_name: str
    model_resource_name: str
    version_aliases: Any = None
    version_description: Any = None


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _matches(resource: dict[str, Any], filter: str | None) -> bool:
    """The subset of the list filter grammar the backend uses: ``labels.k="v"``, ``display_name="x"``, AND."""
    if not filter:
        return True
    for clause in re.split(r"\s+AND\s+", filter.strip()):
        m = re.fullmatch(r'labels\.([a-z0-9_-]+)\s*=\s*"([^"]*)"', clause.strip())
        if m:
            if resource.get("labels", {}).get(m.group(1)) != m.group(2):
                return False
            continue
        m = re.fullmatch(r'display_name\s*=\s*"([^"]*)"', clause.strip())
        if m:
            if resource.get("displayName") != m.group(1):
                return False
            continue
        raise gexc.InvalidArgument(f"Unsupported filter clause in the fake: {clause!r}")
    return True


class FakeVertexAI:
    """The service (a dict of Model resources per version) plus a module-like face: ``.Model`` and
    ``.models.ModelRegistry``, as the backend uses ``google.cloud.aiplatform``."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.resources: dict[str, dict[str, dict[str, Any]]] = {}  # model name -> versionId -> Model resource
        self.calls: list[tuple[str, dict[str, Any]]] = []  # (method, recorded request)
        self.errors: list[str] = []  # class names of the errors answered
        self.before_upload = None  # a hook a test can use to stage an interleaving
        sdk_signatures()  # parsed now, not first by concurrent callers
        server = self

        class Model:
            """``aiplatform.Model``: one version of a model, read with ``models.get``."""

            def __init__(self, model_name: str, project=None, location=None, credentials=None, version=None):
                _check(
                    "Model.__init__",
                    {
                        "model_name": model_name,
                        "project": project,
                        "location": location,
                        "credentials": credentials,
                        "version": version,
                    },
                )
                server.record(
                    "models.get",
                    {
                        "name": f"{model_name}@{version}" if version else model_name,
                        "credentials": type(credentials).__name__,
                    },
                )
                self._gca_resource = server.get(server.full_name(model_name, project, location), version)

            # the SDK's properties, from the resource
            resource_name = property(lambda self: self._gca_resource["name"])
            display_name = property(lambda self: self._gca_resource["displayName"])
            version_id = property(lambda self: self._gca_resource["versionId"])
            version_aliases = property(lambda self: list(self._gca_resource["versionAliases"]))
            version_description = property(lambda self: self._gca_resource.get("versionDescription", ""))
            version_create_time = property(lambda self: self._gca_resource["versionCreateTime"])
            versioned_resource_name = property(lambda self: f"{self.resource_name}@{self.version_id}")
            uri = property(lambda self: self._gca_resource.get("artifactUri") or None)
            labels = property(lambda self: dict(self._gca_resource.get("labels", {})))

            @classmethod
            def upload(cls, serving_container_image_uri=None, **kw):
                kw["serving_container_image_uri"] = serving_container_image_uri
                _check("Model.upload", kw)
                if server.before_upload is not None:
                    server.before_upload(kw)
                name, version = server.upload(**kw)
                return cls(name, version=version, credentials=kw.get("credentials"))

            @classmethod
            def list(cls, filter=None, order_by=None, project=None, location=None, credentials=None):
                _check(
                    "Model.list",
                    {
                        "filter": filter,
                        "order_by": order_by,
                        "project": project,
                        "location": location,
                        "credentials": credentials,
                    },
                )
                server.record(
                    "models.list", {"parent": f"projects/{project}/locations/{location}", "filter": filter}
                )
                out = []
                with server.lock:
                    for name, versions in sorted(server.resources.items()):
                        if not name.startswith(f"projects/{project}/locations/{location}/"):
                            continue
                        default = next(v for v in versions.values() if "default" in v["versionAliases"])
                        if _matches(default, filter):
                            out.append(cls(name, version=default["versionId"], credentials=credentials))
                return out

        class ModelRegistry:
            """``aiplatform.models.ModelRegistry``: versions and aliases of one model."""

            def __init__(self, model, location=None, project=None, credentials=None):
                _check(
                    "ModelRegistry.__init__",
                    {"model": model, "location": location, "project": project, "credentials": credentials},
                )
                self.model_resource_name = (
                    model.resource_name
                    if isinstance(model, Model)
                    else server.full_name(model, project, location)
                )

            def list_versions(self, filter=None):
                _check("ModelRegistry.list_versions", {"filter": filter})
                server.record("models.listVersions", {"name": self.model_resource_name, "filter": filter})
                with server.lock:
                    versions = server.versions(self.model_resource_name)
                    return [server.info(v) for v in versions.values() if _matches(v, filter)]

            def get_version_info(self, version):
                _check("ModelRegistry.get_version_info", {"version": version})
                return server.info(server.get(self.model_resource_name, version))

            def add_version_aliases(self, new_aliases, version):
                _check("ModelRegistry.add_version_aliases", {"new_aliases": new_aliases, "version": version})
                server.merge_aliases(self.model_resource_name, version, list(new_aliases))

            def remove_version_aliases(self, target_aliases, version):
                _check(
                    "ModelRegistry.remove_version_aliases",
                    {"target_aliases": target_aliases, "version": version},
                )
                server.merge_aliases(self.model_resource_name, version, [f"-{a}" for a in target_aliases])

        self.Model = Model
        self.models = SimpleNamespace(ModelRegistry=ModelRegistry, Model=Model, VersionInfo=VersionInfo)

    # ------------------------------------------------------------------ service side
    def record(self, method: str, request: dict[str, Any]) -> None:
        with self.lock:
            self.calls.append((method, request))

    def fail(self, error: type[Exception], message: str):
        with self.lock:
            self.errors.append(error.__name__)
        raise error(message)

    @staticmethod
    def full_name(model: str, project: str | None, location: str | None) -> str:
        return (
            model
            if model.startswith("projects/")
            else f"projects/{project}/locations/{location}/models/{model}"
        )

    def versions(self, name: str) -> dict[str, dict[str, Any]]:
        with self.lock:
            if name not in self.resources:
                self.fail(gexc.NotFound, f"Model {name} is not found.")
            return self.resources[name]

    def get(self, name: str, version: str | None) -> dict[str, Any]:
        with self.lock:
            versions = self.versions(name)
            ref = version or "default"
            for v in versions.values():
                if v["versionId"] == ref or ref in v["versionAliases"]:
                    return copy.deepcopy(v)
            self.fail(gexc.NotFound, f"Model {name}@{ref} is not found.")

    def info(self, v: dict[str, Any]) -> VersionInfo:
        return VersionInfo(
            v["versionId"],
            v["versionCreateTime"],
            v["versionUpdateTime"],
            v["displayName"],
            v["name"],
            list(v["versionAliases"]),
            v.get("versionDescription"),
        )

    def upload(
        self,
        *,
        display_name=None,
        artifact_uri=None,
        serving_container_image_uri=None,
        model_id=None,
        parent_model=None,
        is_default_version=True,
        version_aliases=None,
        version_description=None,
        labels=None,
        project=None,
        location=None,
        credentials=None,
        sync=True,
        **_,
    ):
        request = {
            "parent": f"projects/{project}/locations/{location}",
            "modelId": model_id,
            "parentModel": parent_model,
            "model": {
                "displayName": display_name,
                "artifactUri": artifact_uri,
                "labels": dict(labels or {}),
                "containerSpec": {"imageUri": serving_container_image_uri},
                "versionAliases": list(version_aliases or []) + (["default"] if is_default_version else []),
                "versionDescription": version_description,
            },
            "credentials": type(credentials).__name__,
        }
        self.record("models.upload", request)
        labels = self._checked_upload(serving_container_image_uri, artifact_uri, labels, version_aliases)
        with self.lock:
            if parent_model:
                versions = self.versions(parent_model)
                name = parent_model
            else:
                name = self._new_model(model_id, project, location)
                versions = self.resources[name] = {}
                is_default_version = True  # the first version is always the default one
            vid = str(max((int(k) for k in versions), default=0) + 1)
            aliases = list(version_aliases or [])
            for alias in aliases:
                if any(alias in v["versionAliases"] for v in versions.values()):
                    self.fail(gexc.FailedPrecondition, f"Alias {alias!r} is already used by another version.")
            if is_default_version:
                for v in versions.values():
                    if "default" in v["versionAliases"]:
                        v["versionAliases"].remove("default")
                aliases.append("default")
            now = _now()
            versions[vid] = {
                "name": name,
                "displayName": display_name,
                "versionId": vid,
                "versionAliases": aliases,
                "versionDescription": version_description or "",
                "artifactUri": artifact_uri,
                "containerSpec": {"imageUri": serving_container_image_uri},
                "labels": labels,
                "createTime": now,
                "versionCreateTime": now,
                "versionUpdateTime": now,
            }
        return name, vid  # UploadModelResponse: model, modelVersionId

    def _checked_upload(
        self, image_uri: Any, artifact_uri: Any, labels: Any, version_aliases: Any
    ) -> dict[str, Any]:
        """The checks of ``models.upload`` on its request alone; returns the labels as a dict."""
        if not image_uri:
            self.fail(gexc.InvalidArgument, "Model.containerSpec.imageUri is required.")
        if not (artifact_uri or "").startswith("gs://"):
            self.fail(
                gexc.InvalidArgument, f"Model.artifactUri must be a Cloud Storage URI; got {artifact_uri!r}."
            )
        labels = dict(labels or {})
        if len(labels) > 64:
            self.fail(gexc.InvalidArgument, "A resource can have at most 64 labels.")
        for k, v in labels.items():
            if (
                not isinstance(k, str)
                or not isinstance(v, str)
                or not _LABEL_KEY.match(k)
                or not _LABEL_VALUE.match(v)
            ):
                self.fail(gexc.InvalidArgument, f"Invalid label {k!r}: {v!r}.")
        for alias in version_aliases or []:
            if not _ALIAS.match(alias):
                self.fail(gexc.InvalidArgument, f"Invalid version alias {alias!r}.")
        return labels

    def _new_model(self, model_id: Any, project: Any, location: Any) -> str:
        """The resource name of a model ``models.upload`` creates (call with the lock held)."""
        if model_id is not None and not _MODEL_ID.match(model_id):
            self.fail(gexc.InvalidArgument, f"Invalid model id {model_id!r}.")
        name = f"projects/{project}/locations/{location}/models/{model_id or len(self.resources) + 1000}"
        if name in self.resources:
            self.fail(gexc.AlreadyExists, f"Model {name} already exists.")
        return name

    def merge_aliases(self, name: str, version: str, changes: list[str]) -> None:
        """``models.mergeVersionAliases``: ``alias`` adds, ``-alias`` removes."""
        self.record("models.mergeVersionAliases", {"name": f"{name}@{version}", "versionAliases": changes})
        with self.lock:
            versions = self.versions(name)
            target = versions.get(str(version))
            if target is None:
                self.fail(gexc.NotFound, f"Model {name}@{version} is not found.")
            for change in changes:
                alias = change.lstrip("-")
                if not _ALIAS.match(alias):
                    self.fail(gexc.InvalidArgument, f"Invalid version alias {alias!r}.")
                if change.startswith("-"):
                    if alias == "default":
                        self.fail(gexc.InvalidArgument, "The default alias cannot be removed.")
                    if alias in target["versionAliases"]:
                        target["versionAliases"].remove(alias)
                elif alias not in target["versionAliases"]:
                    holder = [v["versionId"] for v in versions.values() if alias in v["versionAliases"]]
                    if holder:
                        self.fail(
                            gexc.FailedPrecondition,
                            f"Alias {alias!r} is already used by version {holder[0]} of {name}.",
                        )
                    target["versionAliases"].append(alias)
            target["versionUpdateTime"] = _now()

    # ------------------------------------------------------------------ for assertions
    def aliases_of(self, name: str) -> dict[str, list[str]]:
        with self.lock:
            return {
                vid: sorted(v["versionAliases"])
                for vid, v in sorted(self.versions(name).items(), key=lambda x: int(x[0]))
            }

    def requests(self, method: str) -> list[dict[str, Any]]:
        with self.lock:
            return [r for m, r in self.calls if m == method]
