"""The artifact store: one root URI (file://, s3://, gs://, ...) over an fsspec filesystem.

Every write is atomic from a reader's point of view:

* on a local filesystem a file is written under a temporary name in the same folder and renamed
  into place (``os.replace``), so a reader sees the old file, the new file, or nothing;
* on an object store a single object upload is already all-or-nothing, so the object is written
  under its final key directly (a rename there would be a copy and a delete).

Multi-file artifacts (dataset snapshots, model versions) write a JSON file last as their commit
marker; readers treat an artifact without it as absent. :meth:`ArtifactStore.create_exclusive`
(create-if-absent, enforced by the store's conditional writes) is what concurrent writers
coordinate through.

This module imports no Airflow: the Airflow shell builds the filesystem (for example from an
``ObjectStoragePath`` with a connection id) and hands it in.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import posixpath
import re
import time
import uuid
from collections.abc import Iterator
from typing import Any, BinaryIO

from mlops_provider.core.errors import InvalidInputError
from mlops_provider.core.names import check_key

CHUNK = 1 << 20
EXCLUSIVE_ENV = "MLOPS_EXCLUSIVE_WRITES"
_EXCLUSIVE_CACHE: dict[tuple, str] = {}
#: Temporary files (local stores) are named ``.tmp-<12 hex>-<final name>`` next to their target.
TMP_PREFIX = ".tmp-"
_TMP_RE = re.compile(r"\.tmp-[0-9a-f]{12}-.+")
#: A temporary untouched for this long belongs to a writer that died (SIGKILL, power loss): a
#: live writer touches its file with every block. Override with ``MLOPS_STALE_TEMPORARY_SECONDS``.
STALE_SECONDS = 3600.0
#: A folder is swept at most this often per process (writes into it trigger the sweep).
_SWEEP_INTERVAL = 300.0
_SWEPT: dict[str, float] = {}


def stale_seconds() -> float:
    raw = os.environ.get("MLOPS_STALE_TEMPORARY_SECONDS", "").strip()
    try:
        value = float(raw) if raw else STALE_SECONDS
    except ValueError:
        raise InvalidInputError(
            f"MLOPS_STALE_TEMPORARY_SECONDS must be a number of seconds. Got {raw!r} instead."
        ) from None
    return max(value, 0.0)


class StorageError(OSError):
    """An artifact could not be read or written; the message names its URI."""


def _strip_protocol(uri: str) -> tuple[str, str]:
    """Return (protocol, path) of a URI; a bare path is a local file path."""
    if "://" not in uri:
        return "file", os.path.abspath(os.path.expanduser(uri))
    protocol, rest = uri.split("://", 1)
    if protocol in ("file", "local"):
        return "file", "/" + rest.lstrip("/") if rest else "/"
    return protocol, rest


def filesystem_for(uri: str, **storage_options: Any):
    """An fsspec filesystem for ``uri`` (no Airflow connection involved)."""
    import fsspec

    protocol, _ = _strip_protocol(uri)
    return fsspec.filesystem(protocol, **storage_options)


class ArtifactStore:
    """Reads and writes artifacts under one root URI.

    ``key`` arguments are paths relative to the root (``"datasets/flights/ab12.../manifest.json"``);
    :meth:`uri` turns a key into the full URI recorded in manifests and XComs, and
    :meth:`key_of` turns such a URI back into a key (refusing URIs outside the root).
    """

    def __init__(self, root: str, fs: Any = None, **storage_options: Any):
        protocol, path = _strip_protocol(str(root))
        self.protocol = protocol
        self.root_path = path.rstrip("/") or "/"
        self.root = f"{protocol}://{self.root_path}" if protocol != "file" else f"file://{self.root_path}"
        self.fs = fs if fs is not None else filesystem_for(self.root, **storage_options)
        self.is_local = protocol == "file"

    def __repr__(self) -> str:
        return f"ArtifactStore({self.root!r})"

    # ----------------------------------------------------------------- addressing
    def path(self, key: str = "") -> str:
        """The filesystem path of ``key``; a key that could leave the root is refused
        (:func:`~mlops_provider.core.names.check_key`), whoever the caller."""
        key = check_key(key, allow_root=True)
        return f"{self.root_path}/{key}" if key else self.root_path

    def uri(self, key: str = "") -> str:
        key = check_key(key, allow_root=True)
        return f"{self.root}/{key}" if key else self.root

    def key_of(self, uri: str) -> str:
        """The key of ``uri`` inside this store; a ValueError (:class:`InvalidInputError`) naming
        both if it is outside, or if what follows the root has ``.``/``..`` segments."""
        uri = str(uri)
        protocol, path = _strip_protocol(uri) if "://" in uri or uri.startswith("/") else ("", "")
        if protocol == self.protocol and (path == self.root_path or path.startswith(self.root_path + "/")):
            rel = path[len(self.root_path) :].lstrip("/")
            try:
                return check_key(rel, allow_root=True)
            except InvalidInputError as err:
                raise InvalidInputError(
                    f"URI {uri!r} does not name a key inside the artifact root {self.root!r}: "
                    f"{str(err).split('; ', 1)[-1]}"
                ) from None
        if not protocol:
            return check_key(uri, "key", allow_root=True)  # already a key
        raise InvalidInputError(f"URI {uri!r} is outside the artifact root {self.root!r}")

    # ----------------------------------------------------------------- reads
    def _fresh(self, path: str) -> None:
        """Drop the filesystem's listing cache for ``path``: another worker may have written."""
        if not self.is_local:
            with contextlib.suppress(Exception):
                self.fs.invalidate_cache(path)

    def exists(self, key: str) -> bool:
        self._fresh(self.path(key))
        return bool(self.fs.exists(self.path(key)))

    def read_bytes(self, key: str) -> bytes:
        try:
            with self.fs.open(self.path(key), "rb") as f:
                return f.read()
        except FileNotFoundError as err:
            raise FileNotFoundError(f"No artifact at {self.uri(key)}") from err
        except OSError as err:
            raise StorageError(f"Could not read {self.uri(key)}: {err}") from err

    def read_json(self, key: str) -> Any:
        data = self.read_bytes(key)
        try:
            return json.loads(data)
        except ValueError as err:
            raise StorageError(f"{self.uri(key)} is not valid JSON: {err}") from err

    def open_read(self, key: str) -> BinaryIO:
        try:
            return self.fs.open(self.path(key), "rb")
        except FileNotFoundError as err:
            raise FileNotFoundError(f"No artifact at {self.uri(key)}") from err

    def sha256(self, key: str) -> str:
        h = hashlib.sha256()
        with self.open_read(key) as f:
            for chunk in iter(lambda: f.read(CHUNK), b""):
                h.update(chunk)
        return h.hexdigest()

    def size(self, key: str) -> int:
        return int(self.fs.size(self.path(key)))

    def list_dir(self, key: str) -> list[str]:
        """Names (not keys) directly under ``key``; empty if it does not exist."""
        p = self.path(key)
        self._fresh(p)
        try:
            entries = self.fs.ls(p, detail=False)
        except FileNotFoundError:
            return []
        names = []
        for e in entries:
            name = posixpath.basename(str(e).rstrip("/"))
            if name and str(e).rstrip("/") != p.rstrip("/"):
                names.append(name)
        return sorted(set(names))

    # ----------------------------------------------------------------- writes
    def _tmp_path(self, key: str) -> str:
        folder, name = posixpath.split(self.path(key))
        return f"{folder}/{TMP_PREFIX}{uuid.uuid4().hex[:12]}-{name}"

    def _makedirs(self, key: str) -> None:
        if self.is_local:
            folder = posixpath.dirname(self.path(key))
            self.fs.makedirs(folder, exist_ok=True)
            now = time.monotonic()
            if now - _SWEPT.get(folder, -_SWEEP_INTERVAL) >= _SWEEP_INTERVAL:
                _SWEPT[folder] = now
                self._sweep_folder(folder, stale_seconds())

    @staticmethod
    def _sweep_folder(folder: str, older_than: float, dry_run: bool = False) -> list[str]:
        """Remove the stale temporaries of one local folder; returns their paths."""
        removed = []
        cutoff = time.time() - older_than
        try:
            entries = list(os.scandir(folder))
        except OSError:
            return removed
        for entry in entries:
            if not _TMP_RE.fullmatch(entry.name):
                continue
            try:
                if (
                    entry.is_file(follow_symlinks=False)
                    and entry.stat(follow_symlinks=False).st_mtime < cutoff
                ):
                    if not dry_run:
                        os.unlink(entry.path)
                    removed.append(entry.path)
            except OSError:  # removed meanwhile by another sweeper
                continue
        return removed

    def sweep_temporaries(
        self, key: str = "", *, older_than: float | None = None, dry_run: bool = False
    ) -> list[str]:
        """Remove what dead writers left under ``key`` (the whole root by default): local temporary
        files (``.tmp-*``) and dataset staging files (``datasets/<name>/_staging/``), each only when
        untouched for ``older_than`` seconds (default :func:`stale_seconds`). Returns their URIs."""
        older_than = stale_seconds() if older_than is None else float(older_than)
        base = self.path(key)
        removed: list[str] = []
        if self.is_local:
            for folder, dirs, _files in os.walk(base):
                dirs[:] = [d for d in dirs if not d.startswith(".")]
                removed += [self._uri_of_path(p) for p in self._sweep_folder(folder, older_than, dry_run)]
        cutoff = time.time() - older_than
        key = key.strip("/")
        for name in self.list_dir("datasets"):
            staging = f"datasets/{name}/_staging"
            if key and not (f"{staging}/".startswith(f"{key}/") or key.startswith(f"{staging}/")):
                continue
            try:
                entries = self.fs.ls(self.path(staging), detail=True)
            except (FileNotFoundError, InvalidInputError):
                continue
            for ent in entries:
                if ent.get("type") == "directory" or not (0 < modified_time(ent) < cutoff):
                    continue
                child = f"{staging}/{posixpath.basename(str(ent['name']).rstrip('/'))}"
                if not dry_run:
                    self.delete(child)
                removed.append(self.uri(child))
        return removed

    def _uri_of_path(self, path: str) -> str:
        return self.uri(path[len(self.root_path) :].lstrip("/"))

    @contextlib.contextmanager
    def open_atomic(self, key: str) -> Iterator[HashingWriter]:
        """A binary writer whose content appears at ``key`` only if the block exits cleanly.

        The writer hashes what passes through it: ``writer.sha256`` and ``writer.size`` are set
        when the block ends.
        """
        self._makedirs(key)
        final = self.path(key)
        target = self._tmp_path(key) if self.is_local else final
        try:
            raw = self.fs.open(target, "wb")
        except OSError as err:
            raise StorageError(f"Could not write {self.uri(key)}: {err}") from err
        writer = HashingWriter(raw)
        ok = False
        try:
            yield writer
            raw.close()
            if self.is_local:
                os.replace(target, final)
            ok = True
        finally:
            if not ok:
                with contextlib.suppress(Exception):
                    if not self.is_local and hasattr(raw, "discard"):
                        raw.discard()  # an object-store upload: abort it instead of committing it
                    raw.close()
                with contextlib.suppress(Exception):
                    if self.fs.exists(target):
                        self.fs.rm(target)

    def write_bytes(self, key: str, data: bytes) -> str:
        """Write atomically; returns the sha256 of ``data``."""
        with self.open_atomic(key) as f:
            f.write(data)
        return f.sha256

    def write_json(self, key: str, obj: Any) -> str:
        return self.write_bytes(key, json_dumps(obj).encode())

    def create_exclusive(self, key: str, data: bytes) -> bool:
        """Create ``key`` only if nothing is there; True if this call created it.

        This is the one primitive the registry's concurrency rests on (version numbers, alias
        moves). How it is made safe against concurrent writers, by store:

        * local filesystem: ``os.link`` of a fully written temporary file (atomic, fails if the
          name exists);
        * S3: ``PutObject`` with ``If-None-Match: *`` (HTTP 412 if the key exists);
        * GCS: an upload with the precondition ``ifGenerationMatch=0``;
        * a store that ignores those preconditions (some emulators; detected once per bucket by
          a probe, or forced with ``MLOPS_EXCLUSIVE_WRITES=claims``): a claim lock, see
          :meth:`_create_by_claims`.
        """
        self._makedirs(key)
        final = self.path(key)
        if self.is_local:
            tmp = self._tmp_path(key)
            with open(tmp, "wb") as f:
                f.write(data)
            try:
                os.link(tmp, final)
                return True
            except FileExistsError:
                return False
            finally:
                os.unlink(tmp)
        if self.exclusive_mode == "native":
            try:
                self.fs.pipe_file(final, data, mode="create")
                return True
            except FileExistsError:
                return False
            except OSError as err:
                raise StorageError(f"Could not create {self.uri(key)}: {err}") from err
        return self._create_by_claims(key, data)

    @property
    def exclusive_mode(self) -> str:
        """``"native"`` (the store enforces create-if-absent) or ``"claims"`` (the claim lock)."""
        if self.is_local:
            return "native"
        forced = os.environ.get(EXCLUSIVE_ENV, "auto").strip().lower()
        if forced in ("native", "claims"):
            return forced
        if forced != "auto":
            raise ValueError(f"{EXCLUSIVE_ENV} must be 'auto', 'native' or 'claims'. Got {forced!r} instead.")
        cache_key = (self.protocol, self.root_path.split("/", 1)[0], _fs_identity(self.fs))
        if cache_key not in _EXCLUSIVE_CACHE:
            _EXCLUSIVE_CACHE[cache_key] = "native" if self._probe_conditional_writes() else "claims"
        return _EXCLUSIVE_CACHE[cache_key]

    def _probe_conditional_writes(self) -> bool:
        """Does the store refuse a second create of the same key? (One probe object, removed.)"""
        probe = self.path(f".mlops-probe/{uuid.uuid4().hex}")
        try:
            self.fs.pipe_file(probe, b"1", mode="create")
            try:
                self.fs.pipe_file(probe, b"2", mode="create")
            except FileExistsError:
                return True
            return False
        except (TypeError, NotImplementedError):  # a filesystem without the "create" mode
            return False
        finally:
            with contextlib.suppress(Exception):
                self.fs.rm(probe)

    def _create_by_claims(self, key: str, data: bytes) -> bool:
        """Create-if-absent on a store without preconditions: the earliest claim wins.

        Each writer uploads a claim object with a unique name under ``<key>.claims/`` and then
        lists that folder. The winner is the claim the store created first (GCS generation,
        else last-modified time; the name breaks ties). A writer that lists after another's claim
        exists sees it, and a claim created later always orders after it, so two writers never
        both win; the loser deletes its claim. Winning claims stay, so a late writer that missed
        the final object still loses. Requirements, met by GCS and S3 and their emulators:
        read-after-write consistent listings and store-assigned ordering at a finer grain than
        the time between two writers' claim and list (GCS generations are microseconds).
        """
        final = self.path(key)
        if self.fs.exists(final):
            return False
        claims = f"{final}.claims"
        mine = f"{claims}/{uuid.uuid4().hex}"
        try:
            self.fs.pipe_file(mine, b"")
            self.fs.invalidate_cache(claims)
            entries = self.fs.ls(claims, detail=True)
        except OSError as err:
            raise StorageError(f"Could not claim {self.uri(key)}: {err}") from err
        winner = min(entries, key=lambda e: (creation_order(e), str(e["name"])))
        if str(winner["name"]).rstrip("/").endswith(mine.rsplit("/", 1)[1]):
            self.fs.pipe_file(final, data)
            return True
        with contextlib.suppress(Exception):
            self.fs.rm(mine)
        return False

    def move(self, src_key: str, dst_key: str) -> None:
        """Rename within the store (atomic on a local filesystem, copy+delete on object stores)."""
        self._makedirs(dst_key)
        if self.is_local:
            os.replace(self.path(src_key), self.path(dst_key))
        else:
            # a server-side copy, then delete: works on every object store (gcsfs' mv tries GCS's
            # moveTo first, which emulators lack, and backs off ~30 s before falling back)
            self.fs.copy(self.path(src_key), self.path(dst_key))
            self.fs.rm(self.path(src_key))

    def delete(self, key: str, recursive: bool = False) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.fs.rm(self.path(key), recursive=recursive)


def _fs_identity(fs: Any) -> str:
    """Which server a filesystem talks to (an endpoint), for the per-store capability cache."""
    opts = getattr(fs, "storage_options", {}) or {}
    endpoint = opts.get("endpoint_url") or (opts.get("client_kwargs") or {}).get("endpoint_url")
    endpoint = (
        endpoint or getattr(fs, "_endpoint", None) or getattr(getattr(fs, "s3", None), "_endpoint", None)
    )
    return f"{type(fs).__name__}:{endpoint}"


def creation_order(entry: dict) -> float:
    """When an fsspec listing entry was written, as a sortable number (GCS generation, S3
    LastModified, local mtime)."""
    if entry.get("generation"):
        return float(entry["generation"])
    return modified_time(entry)


def modified_time(entry: dict) -> float:
    """When a listing entry was last written, as epoch seconds (0.0 if the store does not say)."""
    for k in ("LastModified", "mtime", "created", "updated"):
        v = entry.get(k)
        if v is None:
            continue
        if hasattr(v, "timestamp"):
            return float(v.timestamp())
        try:
            return float(v)
        except (TypeError, ValueError):
            import datetime as _dt

            try:
                return _dt.datetime.fromisoformat(str(v).replace("Z", "+00:00")).timestamp()
            except ValueError:
                continue
    return 0.0


class HashingWriter:
    """A write-only binary stream that hashes and counts what goes through it."""

    def __init__(self, raw: BinaryIO):
        self._raw = raw
        self._h = hashlib.sha256()
        self.size = 0
        self.closed = False

    def write(self, data) -> int:
        b = bytes(data) if not isinstance(data, bytes) else data
        self._h.update(b)
        self.size += len(b)
        self._raw.write(b)
        return len(b)

    def tell(self) -> int:
        return self.size

    def flush(self) -> None:
        self._raw.flush()

    def writable(self) -> bool:
        return True

    def readable(self) -> bool:
        return False

    def seekable(self) -> bool:
        return False

    def close(self) -> None:  # the store closes the underlying stream itself
        self.closed = True

    @property
    def sha256(self) -> str:
        return self._h.hexdigest()


def json_dumps(obj: Any) -> str:
    return json.dumps(obj, indent=2, sort_keys=True, default=_json_default)


def _json_default(o: Any):
    import datetime as _dt

    if isinstance(o, (_dt.datetime, _dt.date)):
        return o.isoformat()
    if hasattr(o, "to_dict"):
        return o.to_dict()
    if hasattr(o, "item"):  # numpy scalars
        return o.item()
    if isinstance(o, (set, frozenset)):
        return sorted(o)
    return str(o)
