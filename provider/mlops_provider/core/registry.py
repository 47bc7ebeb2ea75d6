"""The model registry: one contract (:class:`BaseModelRegistry`) and the backend kept on the
artifact store (:class:`ModelRegistry`, the default).

**The contract.** Every backend (this one; MLflow, SageMaker and Vertex AI in
:mod:`mlops_provider.integrations`) has the same API: ``register``, ``list_models``,
``list_versions``, ``get_version``, ``resolve``, ``load``, ``promote``, ``rollback``,
``aliases``, ``history``. :class:`BaseModelRegistry` implements what they share, once:

* ``register`` (a template method): name and bytes validated, sha256 computed, a rerun of the same
  ``run_key`` with the same bytes returns the existing version (and repairs the aliases' mirror),
  the full record built; the backend only creates the version (:meth:`~BaseModelRegistry._create_version`);
* ``load``: the bytes (:meth:`~BaseModelRegistry._read_model_bytes`) through skops with the sha256 pin;
* aliases: an append-only **alias log** on the artifact store, authoritative for every backend:

  ``registry/<model>/alias-log/<alias>/<seq>.json``  one file per move, seq 1, 2, ... claimed with the
  store's create-if-absent write, so concurrent promotions are serialized, each records the
  version it replaced, exactly one version holds the alias, and ``expected_current`` makes a move
  compare-and-set. A backend with an alias of its own (an MLflow alias, SageMaker's ``Approved``
  status, a Vertex version alias) mirrors the head of the log into it
  (:meth:`~BaseModelRegistry._mirror_alias`), repeated until the head did not move meanwhile.

**The artifact-store backend** keeps versions next to the log::

    registry/<model>/versions/<n>/claim.json      version number taken (exclusive create)
    registry/<model>/versions/<n>/model.skops     the model (skops, reproducible bytes)
    registry/<model>/versions/<n>/metadata.json   lineage, metrics, verdict, sha256 (commit marker)
    registry/<model>/aliases/<alias>.json         the latest move, for people browsing the store

A version exists once its ``metadata.json`` does. Registries written before the log existed
(``aliases/<alias>.json`` and ``events/``) are still read.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from mlops_provider.core.errors import (
    ConcurrentUpdateError,
    CorruptArtifactError,
    IntegrityError,
    InvalidInputError,
    NotFoundError,
)
from mlops_provider.core.names import CHAMPION, check_name, check_version, is_name, parse_ref
from mlops_provider.core.serialization import load_model, sha256_bytes
from mlops_provider.core.storage import ArtifactStore

MAX_ALIAS_ATTEMPTS = 50
ANY = object()  # "whatever the alias points at" for set_alias(expected_current=...)
CARD = "model_card.md"
_DIGITS = re.compile(r"[0-9]{1,9}")


class StaleAliasError(ConcurrentUpdateError):
    """A conditional alias move found the alias pointing at another version than expected."""

    def __init__(self, message: str, current: int | None = None):
        super().__init__(message)
        self.current = current


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="microseconds")


@dataclass
class ModelVersion:
    model: str
    version: int
    uri: str
    model_uri: str
    model_sha256: str
    created_at: str
    run_key: str | None = None
    estimator: str | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    verdict: dict[str, Any] | None = None
    lineage: dict[str, Any] = field(default_factory=dict)
    spec: dict[str, Any] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    tags: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class AliasEvent:
    model: str
    alias: str
    version: int
    previous_version: int | None
    updated_at: str
    actor: str
    reason: str
    action: str  # "promote" | "rollback" | "set"
    sequence: int | None = None  # position in the alias log (None: written before the log existed)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


BLOB_FIELDS = ("metrics", "verdict", "lineage", "spec", "params", "tags")
MIRROR_ATTEMPTS = 20


def now_iso() -> str:
    return _now()


def short_hash(text: str, n: int = 40) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:n]


def upload_id(run_key: str | None, sha256: str) -> str:
    """The folder id of one registration's files: stable for a run (a rerun rewrites the same
    folder instead of leaving a second copy), random without a run key."""
    return short_hash(f"{run_key}\n{sha256}", 32) if run_key else uuid.uuid4().hex


def check_model_bytes(model_bytes: Any, owner: str) -> bytes:
    if not isinstance(model_bytes, (bytes, bytearray)) or not model_bytes:
        size = len(model_bytes) if hasattr(model_bytes, "__len__") else "?"
        raise InvalidInputError(
            f"The 'model_bytes' parameter of {owner} must be the non-empty bytes of a skops model file. "
            f"Got {type(model_bytes).__name__} of length {size}."
        )
    return bytes(model_bytes)


def record_for(
    name: str, *, model_uri: str, sha256: str, run_key: str | None, **fields: Any
) -> dict[str, Any]:
    """A :class:`ModelVersion` as a dict, before the backend has given it a number and a URI."""
    mv = ModelVersion(
        model=name,
        version=0,
        uri="",
        model_uri=model_uri,
        model_sha256=sha256,
        created_at=_now(),
        run_key=run_key,
        estimator=fields.get("estimator"),
        verdict=fields.get("verdict"),
        **{f: dict(fields.get(f) or {}) for f in ("metrics", "lineage", "spec", "params", "tags")},
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


class BaseModelRegistry(ABC):
    """The contract every registry backend fulfils (see the module docstring).

    A backend implements :meth:`list_models`, :meth:`list_versions`, :meth:`get_version` and
    :meth:`_create_version`; it may refine :meth:`find_by_run_key` (a faster lookup),
    :meth:`_read_model_bytes` (where the file is), :meth:`_check_alias` (its alias rules) and, with
    ``mirrors = True``, :meth:`_mirror_alias` (its own alias state).
    """

    kind = "base"
    #: Whether the backend keeps an alias state of its own, brought to the head of the log.
    mirrors = False

    def __init__(self, store: ArtifactStore):
        self.store = store

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._label()}, aliases on {self.store.root})"

    def _label(self) -> str:
        return self.kind

    # ----------------------------------------------------------------- what a backend implements
    @abstractmethod
    def list_models(self) -> list[str]: ...

    @abstractmethod
    def list_versions(self, name: str) -> list[ModelVersion]: ...

    @abstractmethod
    def get_version(self, name: str, version: int) -> ModelVersion:
        """The version, or :class:`NotFoundError` naming the registered ones."""

    @abstractmethod
    def _create_version(self, name: str, data: bytes, record: dict[str, Any]) -> ModelVersion:
        """Store a new version of ``name`` (``record``: :func:`record_for`'s fields, ``model_uri``
        still unset) and return it, numbered."""

    def find_by_run_key(self, name: str, run_key: str) -> ModelVersion | None:
        for mv in reversed(self.list_versions(name)):
            if mv.run_key == run_key:
                return mv
        return None

    def _read_model_bytes(self, mv: ModelVersion) -> bytes:
        """The model file's bytes (default: on the artifact store)."""
        return self.store.read_bytes(self.store.key_of(mv.model_uri))

    def _check_alias(self, alias: str) -> None:
        check_name(alias, "alias", f"{type(self).__name__}.set_alias")

    def _mirror_alias(self, name: str, alias: str, version: int, record: dict[str, Any]) -> None:
        """Point the backend's own ``alias`` of ``name`` at ``version`` (backends with ``mirrors``)."""
        return None

    # ----------------------------------------------------------------- registering and loading
    def register(
        self,
        name: str,
        model_bytes: bytes,
        *,
        run_key: str | None = None,
        estimator: str | None = None,
        metrics: dict[str, Any] | None = None,
        verdict: dict[str, Any] | None = None,
        lineage: dict[str, Any] | None = None,
        spec: dict[str, Any] | None = None,
        params: dict[str, Any] | None = None,
        tags: dict[str, Any] | None = None,
        card: Callable[[ModelVersion], str] | None = None,
    ) -> tuple[ModelVersion, bool]:
        """Add a version; returns ``(version, created)``. The same ``run_key`` with the same bytes
        returns the existing version (a rerun registers nothing twice; a mirror is repaired).

        ``card`` makes the version's model card (:mod:`mlops_provider.core.model_card`) from the
        numbered version; it is stored as ``model_card.md`` next to it, before the version is
        committed where the backend allows (the artifact store's ``metadata.json``)."""
        owner = f"{type(self).__name__}.register"
        check_name(name, "model_name", owner)
        data = check_model_bytes(model_bytes, owner)
        sha = sha256_bytes(data)
        if run_key:
            existing = self.find_by_run_key(name, run_key)
            if existing is not None and existing.model_sha256 == sha:
                if self.mirrors:
                    self.sync_aliases(name)
                return existing, False
        record = record_for(
            name,
            model_uri="",
            sha256=sha,
            run_key=run_key,
            estimator=estimator,
            metrics=metrics,
            verdict=verdict,
            lineage=lineage,
            spec=spec,
            params=params,
            tags=tags,
        )
        if card is not None and self.card_before_commit:
            return self._create_version(name, data, record, card=card), True
        mv = self._create_version(name, data, record)
        if card is not None:
            self.write_card(name, mv.version, card(mv))
        return mv, True

    # ----------------------------------------------------------------- model cards
    #: whether :meth:`_create_version` takes ``card=`` and writes it before committing the version
    card_before_commit = False

    def card_key(self, name: str, version: int) -> str:
        """The store key of a version's model card (in the version's folder on the artifact store)."""
        number = check_version(version, "version", "the model registry")
        return f"{self._model_key(name)}/versions/{number}/{CARD}"

    def write_card(self, name: str, version: int, text: str) -> None:
        self.store.write_bytes(self.card_key(name, version), text.encode("utf-8"))

    def read_card(self, name: str, version: int) -> str | None:
        """The version's model card (Markdown), or None for a version registered without one."""
        key = self.card_key(name, version)
        return self.store.read_bytes(key).decode("utf-8", "replace") if self.store.exists(key) else None

    def load(self, name: str, ref: int | str = CHAMPION, trusted_types=()) -> tuple[Any, ModelVersion]:
        """Load a version's model safely: sha256 pinned by its metadata, skops trusted list."""
        mv = self.resolve(name, ref)
        suffix = "" if self.kind == "artifacts" else f", {self.kind} registry"
        source = f"{mv.model_uri} ({name} v{mv.version}{suffix})"
        if not mv.model_sha256:
            raise IntegrityError(
                f"{source} has no valid sha256 pin recorded with the version (it was not registered through "
                "mlops); refusing to load a model file that nothing pins."
            )
        model = load_model(
            self._read_model_bytes(mv),
            expected_sha256=mv.model_sha256,
            source=source,
            trusted_types=trusted_types,
        )
        return model, mv

    # ----------------------------------------------------------------- the alias log
    @staticmethod
    def _model_key(name: str) -> str:
        return f"registry/{check_name(name, 'model_name', 'the model registry')}"

    def _log_key(self, name: str, alias: str) -> str:
        return f"{self._model_key(name)}/alias-log/{check_name(alias, 'alias', 'the model registry')}"

    def _log_sequences(self, name: str, alias: str) -> list[int]:
        names = self.store.list_dir(self._log_key(name, alias))
        return sorted(int(n[:-5]) for n in names if n.endswith(".json") and _DIGITS.fullmatch(n[:-5]))

    def _log_head(self, name: str, alias: str) -> tuple[int, dict[str, Any] | None]:
        """(sequence, record) of the alias log's head; (0, None) for an empty log.

        An entry is never removed once listed, but an object store may list a just-created object
        a moment before it serves it: the listing is read again then (a few times)."""
        for attempt in range(5):
            seqs = self._log_sequences(name, alias)
            if not seqs:
                return 0, None
            try:
                return seqs[-1], self.store.read_json(f"{self._log_key(name, alias)}/{seqs[-1]:08d}.json")
            except FileNotFoundError:
                if attempt == 4:
                    raise
                time.sleep(0.05 * (attempt + 1))
        raise AssertionError("unreachable")  # pragma: no cover

    def alias_record(self, name: str, alias: str = CHAMPION) -> dict[str, Any] | None:
        """The latest move of ``alias`` (an :class:`AliasEvent` as a dict) or None."""
        head, record = self._log_head(name, alias)
        if head:
            return record
        legacy = f"{self._model_key(name)}/aliases/{alias}.json"
        return self.store.read_json(legacy) if self.store.exists(legacy) else None

    def aliases(self, name: str) -> dict[str, dict[str, Any]]:
        names = {n for n in self.store.list_dir(f"{self._model_key(name)}/alias-log") if is_name(n)}
        names |= {
            f[:-5]
            for f in self.store.list_dir(f"{self._model_key(name)}/aliases")
            if f.endswith(".json") and is_name(f[:-5])
        }
        out = {}
        for alias in sorted(names):
            rec = self.alias_record(name, alias)
            if rec is not None:
                out[alias] = rec
        return out

    def get_alias(self, name: str, alias: str = CHAMPION) -> int | None:
        rec = self.alias_record(name, alias)
        return None if rec is None else int(rec["version"])

    def resolve(self, name: str, ref: int | str = CHAMPION) -> ModelVersion:
        """A version by number, or by alias (``"champion"``, ``"@champion"``)."""
        ref = parse_ref(ref, "model_ref", "the model registry")
        if isinstance(ref, int):
            return self.get_version(name, ref)
        v = self.get_alias(name, ref)
        if v is None:
            raise NotFoundError(f"Model {name!r} has no {ref!r} alias yet")
        return self.get_version(name, v)

    def history(self, name: str) -> list[AliasEvent]:
        """Every alias move of the model, oldest first."""
        legacy = f"{self._model_key(name)}/events"
        events = [
            AliasEvent(**self.store.read_json(f"{legacy}/{f}"))
            for f in self.store.list_dir(legacy)
            if f.endswith(".json")
        ]
        for alias in filter(is_name, self.store.list_dir(f"{self._model_key(name)}/alias-log")):
            key = self._log_key(name, alias)
            events += [
                AliasEvent(**self.store.read_json(f"{key}/{n:08d}.json"))
                for n in self._log_sequences(name, alias)
            ]
        return sorted(events, key=lambda e: (e.updated_at, e.sequence or 0))

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
        """Point ``alias`` at ``version`` (which must exist) and record who did it and why; then
        bring the backend's own alias to the head of the log (:meth:`sync_alias`).

        ``expected_current`` (a version number, or None for "no alias yet") makes the move
        conditional: if the alias points elsewhere when the move is made, :class:`StaleAliasError`
        is raised and nothing changes (compare-and-set, atomic against concurrent moves).
        """
        self._check_alias(alias)
        self.get_version(name, version)  # raises NotFoundError for a missing version
        if not reason:
            raise InvalidInputError(f"Moving alias {alias!r} of {name!r} needs a reason (got an empty one).")
        log = self._log_key(name, alias)
        for _ in range(MAX_ALIAS_ATTEMPTS):
            head, record = self._log_head(name, alias)
            previous = self.get_alias(name, alias) if not head else int(record["version"])
            if expected_current is not ANY and previous != expected_current:
                raise StaleAliasError(
                    f"Alias {alias!r} of {name!r} is v{previous}, "
                    f"not v{expected_current} as expected; not moved",
                    current=previous,
                )
            event = AliasEvent(name, alias, int(version), previous, _now(), actor, reason, action, head + 1)
            body = json.dumps(event.to_dict(), indent=2, sort_keys=True).encode()
            if self.store.create_exclusive(f"{log}/{head + 1:08d}.json", body):
                self.store.write_json(f"{self._model_key(name)}/aliases/{alias}.json", event.to_dict())
                if self.mirrors:
                    self.sync_alias(name, alias)
                return event
            # another writer moved the alias first: re-read the head and record what we replace
        raise ConcurrentUpdateError(
            f"Could not move alias {alias!r} of {name!r}: {MAX_ALIAS_ATTEMPTS} concurrent moves won first"
        )

    def promote(
        self,
        name: str,
        version: int,
        *,
        actor: str,
        reason: str,
        alias: str = CHAMPION,
        expected_current: Any = ANY,
    ) -> AliasEvent:
        return self.set_alias(
            name,
            version,
            alias=alias,
            actor=actor,
            reason=reason,
            action="promote",
            expected_current=expected_current,
        )

    def rollback(
        self, name: str, *, actor: str, reason: str, to_version: int | None = None, alias: str = CHAMPION
    ) -> AliasEvent:
        """Move ``alias`` back: to ``to_version``, or to the version it pointed at before the current one."""
        self._check_alias(alias)
        current = self.get_alias(name, alias)
        if current is None:
            raise NotFoundError(f"Model {name!r} has no {alias!r} alias to roll back")
        if to_version is None:
            events = [e for e in self.history(name) if e.alias == alias]
            # walk back past the current version to the most recent different one
            candidates = [
                e.previous_version for e in reversed(events) if e.version == current and e.previous_version
            ]
            candidates = [c for c in candidates if c != current]
            if not candidates:
                raise NotFoundError(
                    f"Model {name!r}: {alias!r} (v{current}) has no earlier version to roll back to; "
                    "pass a version"
                )
            to_version = candidates[0]
        return self.set_alias(
            name, int(to_version), alias=alias, actor=actor, reason=reason, action="rollback"
        )

    def sync_alias(self, name: str, alias: str = CHAMPION) -> int | None:
        """Bring the backend's ``alias`` to the head of the log; returns the version it holds.

        The head is re-read after each pass and the pass repeated until it did not move meanwhile,
        so whatever order concurrent writers finish in, the mirror ends at the head of the log."""
        for _ in range(MIRROR_ATTEMPTS):
            head = self.alias_record(name, alias)
            if head is None:
                return None
            self._mirror_alias(name, alias, int(head["version"]), head)
            if not self.mirrors or self.alias_record(name, alias) == head:
                return int(head["version"])
        raise ConcurrentUpdateError(
            f"Could not mirror alias {alias!r} of {name!r} into the {self.kind} registry: it moved "
            f"{MIRROR_ATTEMPTS} times while being mirrored"
        )

    def sync_aliases(self, name: str) -> dict[str, int | None]:
        """Re-mirror every alias of ``name`` (repairs a mirror update that failed)."""
        return {alias: self.sync_alias(name, alias) for alias in self.aliases(name)}


class ModelRegistry(BaseModelRegistry):
    """The registry on the artifact store: versions next to the alias log (the default backend)."""

    kind = "artifacts"

    def _label(self) -> str:
        return f"artifact store {self.store.root}"

    def _version_key(self, name: str, version: int) -> str:
        return f"{self._model_key(name)}/versions/{check_version(version, 'version', 'the model registry')}"

    def list_models(self) -> list[str]:
        """Model names in the registry (folders whose name is not a valid model name are skipped)."""
        return [n for n in self.store.list_dir("registry") if is_name(n)]

    def _version_numbers(self, name: str) -> list[int]:
        return sorted(
            int(n) for n in self.store.list_dir(f"{self._model_key(name)}/versions") if _DIGITS.fullmatch(n)
        )

    def list_versions(self, name: str) -> list[ModelVersion]:
        out = []
        for n in self._version_numbers(name):
            key = f"{self._version_key(name, n)}/metadata.json"
            if self.store.exists(key):
                out.append(self._read_version(key))
        return out

    def _read_version(self, key: str) -> ModelVersion:
        record = self.store.read_json(key)
        if isinstance(record, dict):
            record.setdefault("model_sha256", None)  # listed, but never loaded: load_model needs the pin
        try:
            return ModelVersion(**record)
        except TypeError as err:
            raise CorruptArtifactError(f"{self.store.uri(key)} is not a model version record: {err}") from err

    def get_version(self, name: str, version: int) -> ModelVersion:
        key = f"{self._version_key(name, version)}/metadata.json"
        if not self.store.exists(key):
            known = [v.version for v in self.list_versions(name)]
            raise NotFoundError(
                f"Model {name!r} has no version {version}; registered versions: {known or 'none'}"
            )
        return self._read_version(key)

    card_before_commit = True

    def _create_version(
        self,
        name: str,
        data: bytes,
        record: dict[str, Any],
        card: Callable[[ModelVersion], str] | None = None,
    ) -> ModelVersion:
        version = self._claim(name, record.get("run_key"))
        vkey = self._version_key(name, version)
        self.store.write_bytes(f"{vkey}/model.skops", data)
        record.update(
            version=version, uri=self.store.uri(vkey), model_uri=self.store.uri(f"{vkey}/model.skops")
        )
        mv = ModelVersion(**record)
        if card is not None:  # before the commit marker: a visible version always has its card
            self.write_card(name, version, card(mv))
        self.store.write_json(f"{vkey}/metadata.json", mv.to_dict())
        return mv

    def _claim(self, name: str, run_key: str | None) -> int:
        # A claim left by a crashed attempt of the same run is taken over rather than skipped.
        for n in self._version_numbers(name):
            vkey = self._version_key(name, n)
            if (
                run_key
                and not self.store.exists(f"{vkey}/metadata.json")
                and self.store.exists(f"{vkey}/claim.json")
            ):
                if self.store.read_json(f"{vkey}/claim.json").get("run_key") == run_key:
                    return n
        n = (self._version_numbers(name) or [0])[-1] + 1
        while True:
            claim = json.dumps({"run_key": run_key, "claimed_at": _now(), "id": uuid.uuid4().hex}).encode()
            if self.store.create_exclusive(f"{self._version_key(name, n)}/claim.json", claim):
                return n
            n += 1
