"""What the registry backends share: the alias log on the artifact store, alias mirroring, loading.

Every backend keeps its versions in its own service (MLflow model versions, SageMaker model
packages, Vertex AI model versions) and the *alias log* on the artifact store, exactly where the
default registry keeps it (``registry/<model>/alias-log/<alias>/<seq>.json``, see
:mod:`mlops_provider.core.registry`):

* The log is authoritative for aliases. A move claims the next sequence number with the store's
  create-if-absent write, so concurrent promotions are serialized, each records the version it
  replaced (history and rollback work), and ``promote(..., expected_current=...)`` is a
  compare-and-set that raises :class:`~mlops_provider.core.registry.StaleAliasError`.
* The backend's own alias state (an MLflow alias, SageMaker's ``Approved`` status, a Vertex AI
  version alias) is a mirror, brought to the head of the log after every move by
  :meth:`BackendRegistry.sync_alias`: it re-reads the head after each pass and repeats until the
  head did not move meanwhile, so whatever order concurrent writers finish in, the mirror ends at
  the head of the log (one holder of the alias). A mirror update that failed (network) is repaired
  by the next move, by :meth:`BackendRegistry.sync_aliases`, or by re-running the registering task
  (a rerun that finds its version re-syncs the model's aliases).

Reads of aliases (``get_alias``, ``alias_record``, ``aliases``, ``history``) come from the log,
so a change made directly in the service's UI is not seen (and is overwritten by the next move
through this API). Because the log is where the default registry keeps it, a reader of the log
such as ``ChampionChangedTrigger`` follows promotions made through any backend; the version
listings of the CLI, the registry page and ``ModelVersionSensor`` read the artifact-store
registry's versions, which these backends do not write.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from typing import Any

from mlops_provider.core.errors import ConcurrentUpdateError, IntegrityError, InvalidInputError
from mlops_provider.core.names import check_name
from mlops_provider.core.registry import ANY, CHAMPION, AliasEvent, ModelRegistry, ModelVersion
from mlops_provider.core.serialization import load_model

MIRROR_ATTEMPTS = 20
BLOB_FIELDS = ("metrics", "verdict", "lineage", "spec", "params", "tags")


def now_iso() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="microseconds")


def short_hash(text: str, n: int = 40) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:n]


def upload_id(run_key: str | None, sha256: str) -> str:
    """The folder id of one registration's files: stable for a run (a rerun rewrites the same
    folder instead of leaving a second copy), random without a run key."""
    return short_hash(f"{run_key}\n{sha256}", 32) if run_key else uuid.uuid4().hex


def check_model_bytes(model_bytes: Any, owner: str) -> bytes:
    if not isinstance(model_bytes, (bytes, bytearray)) or not model_bytes:
        raise InvalidInputError(
            f"The 'model_bytes' parameter of {owner} must be the non-empty bytes of a skops model file. "
            f"Got {type(model_bytes).__name__} of length {len(model_bytes) if hasattr(model_bytes, '__len__') else '?'}."
        )
    return bytes(model_bytes)


def record_for(
    name: str,
    *,
    model_uri: str,
    sha256: str,
    run_key: str | None,
    estimator: str | None,
    metrics: dict | None,
    verdict: dict | None,
    lineage: dict | None,
    spec: dict | None,
    params: dict | None,
    tags: dict | None,
) -> dict[str, Any]:
    """A :class:`ModelVersion` as a dict, before the backend has given it a number and a URI."""
    mv = ModelVersion(
        model=name, version=0, uri="", model_uri=model_uri, model_sha256=sha256, created_at=now_iso(),
        run_key=run_key, estimator=estimator, metrics=dict(metrics or {}), verdict=verdict,
        lineage=dict(lineage or {}), spec=dict(spec or {}), params=dict(params or {}), tags=dict(tags or {}),
    ).to_dict()
    mv["version"] = None  # given by the backend
    mv["uri"] = None
    return mv


def version_from(record: dict[str, Any] | None, **fixed: Any) -> ModelVersion:
    """A :class:`ModelVersion` from a stored record, with the backend's own fields (``fixed``) winning."""
    data = {k: v for k, v in (record or {}).items() if k in ModelVersion.__dataclass_fields__}
    data.update({k: v for k, v in fixed.items() if v is not None or k not in data})
    data.setdefault("model_sha256", "")
    data.setdefault("created_at", "")
    for f in ("metrics", "lineage", "spec", "params", "tags"):
        if data.get(f) is None:
            data[f] = {}
    return ModelVersion(**data)


class AliasLog(ModelRegistry):
    """The default registry's alias log, for a backend whose versions live elsewhere: the version
    checks of :meth:`set_alias` / :meth:`resolve` ask the backend."""

    def __init__(self, store, backend: BackendRegistry):
        super().__init__(store)
        self._backend = backend

    def get_version(self, name: str, version: int) -> ModelVersion:
        return self._backend.get_version(name, version)


class BackendRegistry:
    """The alias half of the :class:`~mlops_provider.core.registry.ModelRegistry` API, on the log.

    Subclasses implement ``list_models``, ``list_versions``, ``get_version``, ``find_by_run_key``,
    ``register``, ``_read_model_bytes(mv)``, ``_mirror_alias(name, alias, version, record)`` and
    may refine ``_check_alias``.
    """

    kind = "backend"

    def __init__(self, store):
        self.store = store
        self._log = AliasLog(store, self)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._label()}, aliases on {self.store.root})"

    def _label(self) -> str:  # pragma: no cover - overridden
        return self.kind

    # ----------------------------------------------------------------- aliases (from the log)
    def alias_record(self, name: str, alias: str = CHAMPION) -> dict[str, Any] | None:
        return self._log.alias_record(name, alias)

    def aliases(self, name: str) -> dict[str, dict[str, Any]]:
        return self._log.aliases(name)

    def get_alias(self, name: str, alias: str = CHAMPION) -> int | None:
        return self._log.get_alias(name, alias)

    def history(self, name: str) -> list[AliasEvent]:
        return self._log.history(name)

    def resolve(self, name: str, ref: int | str = CHAMPION) -> ModelVersion:
        """A version by number, or by alias (``"champion"``, ``"@champion"``)."""
        return self._log.resolve(name, ref)

    # ----------------------------------------------------------------- models
    def load(self, name: str, ref: int | str = CHAMPION, trusted_types=()) -> tuple[Any, ModelVersion]:
        """Load a version's model safely: sha256 pinned by its metadata, skops trusted list."""
        mv = self.resolve(name, ref)
        source = f"{mv.model_uri} ({name} v{mv.version}, {self.kind} registry)"
        if not mv.model_sha256:
            raise IntegrityError(
                f"{source} has no sha256 recorded with the version (it was not registered through mlops); "
                "refusing to load a model file that nothing pins."
            )
        data = self._read_model_bytes(mv)
        model = load_model(data, expected_sha256=mv.model_sha256, source=source, trusted_types=trusted_types)
        return model, mv

    def _read_model_bytes(self, mv: ModelVersion) -> bytes:
        """Default: the model file is on the artifact store."""
        return self.store.read_bytes(self.store.key_of(mv.model_uri))

    # ----------------------------------------------------------------- alias moves
    def _check_alias(self, alias: str) -> None:
        check_name(alias, "alias", f"{type(self).__name__}.set_alias")

    def set_alias(
        self,
        name: str,
        version: int,
        *,
        alias: str = CHAMPION,
        actor: str = "unknown",
        reason: str = "",
        action: str = "set",
        expected_current: Any = ANY,
    ) -> AliasEvent:
        """Point ``alias`` at ``version``: a log entry (compare-and-set with ``expected_current``),
        then the backend's own alias state brought to the head of the log."""
        self._check_alias(alias)
        event = self._log.set_alias(
            name, version, alias=alias, actor=actor, reason=reason, action=action, expected_current=expected_current
        )
        self.sync_alias(name, alias)
        return event

    def promote(
        self, name: str, version: int, *, actor: str, reason: str, alias: str = CHAMPION, expected_current: Any = ANY
    ) -> AliasEvent:
        return self.set_alias(
            name, version, alias=alias, actor=actor, reason=reason, action="promote", expected_current=expected_current
        )

    def rollback(
        self, name: str, *, actor: str, reason: str, to_version: int | None = None, alias: str = CHAMPION
    ) -> AliasEvent:
        """Move ``alias`` back: to ``to_version``, or to the version it pointed at before the current one."""
        self._check_alias(alias)
        event = self._log.rollback(name, actor=actor, reason=reason, to_version=to_version, alias=alias)
        self.sync_alias(name, alias)
        return event

    def sync_alias(self, name: str, alias: str = CHAMPION) -> int | None:
        """Bring the backend's ``alias`` to the head of the log; returns the version it holds."""
        for _ in range(MIRROR_ATTEMPTS):
            head = self._log.alias_record(name, alias)
            if head is None:
                return None
            self._mirror_alias(name, alias, int(head["version"]), head)
            if self._log.alias_record(name, alias) == head:
                return int(head["version"])
            # the alias moved while we mirrored: mirror the new head (it may have been overwritten by us)
        raise ConcurrentUpdateError(
            f"Could not mirror alias {alias!r} of {name!r} into the {self.kind} registry: it moved "
            f"{MIRROR_ATTEMPTS} times while being mirrored"
        )

    def sync_aliases(self, name: str) -> dict[str, int | None]:
        """Re-mirror every alias of ``name`` (repairs a mirror update that failed)."""
        return {alias: self.sync_alias(name, alias) for alias in self.aliases(name)}

    def _mirror_alias(self, name: str, alias: str, version: int, record: dict[str, Any]) -> None:
        raise NotImplementedError  # pragma: no cover
