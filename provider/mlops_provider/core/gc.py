"""Retention of the artifact store: what ``mlops gc`` keeps and what it removes.

The store holds five areas (``datasets/ runs/ registry/ predictions/ drift/``). gc reasons about
**units**, the things that are written and read as a whole:

=============  ==========================================  ===========================
category       unit                                        retention group
=============  ==========================================  ===========================
snapshots      ``datasets/<name>/<sha256>/``               -
runs           ``runs/<dag>/<run>/``                        the DAG
predictions    ``predictions/<model>/<dag>/<run>/``         (model, DAG)
drift_history  ``drift/<model>/history/<stamp>-<sha>.json`` (model, champion version)
drift_reports  ``drift/<model>/<window sha256>.json``       -
=============  ==========================================  ===========================

plus **temporaries** (``.tmp-*`` files and ``datasets/<name>/_staging/`` files untouched for the
sweep age, found by :meth:`ArtifactStore.sweep_temporaries`, the logic of ``mlops maintenance sweep``).

**Kept** (everything else in those units is removed):

* ``registry/`` as a whole, never touched: every registered version is a record (not only the
  aliased ones), and so is the alias log;
* every unit a registered version references: a string in its record (lineage, metrics, verdict,
  spec, ...) naming a unit's key (its training and evaluation snapshots, its run folder's files),
  and its run folder ``runs/<lineage dag_id>/<lineage run_id>``;
* per DAG, the ``keep_runs`` most recent run folders (by their newest file);
* per model that is still in the registry, the ``keep_runs`` most recent prediction sets of each
  DAG that scores it, and the ``keep_runs`` most recent drift history entries of each champion
  version (what the persistence policy reads); a model no longer in the registry keeps none;
* every unit with a file modified within ``older_than_days`` days, and within the grace period
  (:func:`~mlops_provider.core.storage.stale_seconds`, an hour by default) whatever
  ``older_than_days`` says: a writer may be busy there;
* transitively, every unit a kept unit references: its ``*.json`` files are scanned for keys of
  other units (a run's ``train.json`` names its snapshot, a prediction manifest its input, a drift
  entry its report and window).

A reference is recognized by the key inside the layout it contains (``datasets/<name>/<sha256>``,
``runs/<dag>/<run>``, ...), whatever root prefix it was written with: a store copied or mounted
elsewhere keeps its references. Unknown entries (other top-level folders, files that match no unit)
are never touched. On a local store symlinks are never followed: a symlinked folder is not entered,
a symlink inside a removed unit is removed as a link (its target is untouched), and nothing is
deleted whose real path is not under the root's real path.

Deleting is safe against concurrent writers: just before a unit is removed its files are listed
again and the unit is skipped if one was modified within the grace period; a unit's commit marker
(``manifest.json``) is deleted first, so readers see the unit as absent before its data goes.
If any reference cannot be read (a registry that does not answer, an unreadable file in a kept
unit), nothing is removed.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from mlops_provider.core.errors import InvalidInputError, MlopsError
from mlops_provider.core.storage import ArtifactStore, modified_time, stale_seconds

CATEGORIES = ("runs", "snapshots", "predictions", "drift_history", "drift_reports", "temporaries")
AREAS = ("datasets", "runs", "predictions", "drift")
DEFAULT_KEEP_RUNS = 10
DEFAULT_OLDER_THAN_DAYS = 30.0
COMMIT_MARKER = "manifest.json"
_SHA = re.compile(r"[0-9a-f]{64}")
_SEG = r"[A-Za-z0-9_.+-]+"
_NAME = r"[A-Za-z0-9][A-Za-z0-9_.-]*"
_REF_RE = re.compile(
    rf"(?<![A-Za-z0-9_.+-])(?:"
    rf"(datasets/{_NAME}/[0-9a-f]{{64}})"
    rf"|(runs/{_SEG}/{_SEG})"
    rf"|(predictions/{_NAME}/{_SEG}/{_SEG})"
    rf"|(drift/{_NAME}/(?:history/)?[A-Za-z0-9_.+-]+\.json)"
    rf")"
)


class GcError(MlopsError):
    """gc cannot decide safely (a reference could not be read): nothing was removed."""


@dataclass(frozen=True)
class FileInfo:
    key: str
    size: int
    mtime: float
    link: bool = False


@dataclass
class Unit:
    key: str
    category: str
    group: tuple
    files: list[FileInfo] = field(default_factory=list)
    single: bool = False  # a unit that is one file (drift entries and reports)

    @property
    def size(self) -> int:
        return sum(f.size for f in self.files)

    @property
    def modified(self) -> float:
        return max((f.mtime for f in self.files), default=0.0)

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "bytes": self.size,
            "files": len(self.files),
            "modified": _iso(self.modified),
        }


@dataclass
class GcPlan:
    """What a gc pass found: the units, which are kept and why, and what is removable."""

    root: str
    keep_runs: int
    older_than_days: float
    grace_seconds: float
    units: dict[str, Unit]
    kept: dict[str, str]
    temporaries: list[dict[str, Any]]
    symlinks: list[str]
    seconds: float = 0.0

    @property
    def orphans(self) -> list[Unit]:
        return sorted((u for k, u in self.units.items() if k not in self.kept), key=lambda u: u.key)

    def by_category(self) -> dict[str, list[dict[str, Any]]]:
        out: dict[str, list[dict[str, Any]]] = {c: [] for c in CATEGORIES}
        for u in self.orphans:
            out[u.category].append(u.to_dict())
        out["temporaries"] = list(self.temporaries)
        return out


def _iso(t: float) -> str | None:
    import datetime as dt

    if not t:
        return None
    return dt.datetime.fromtimestamp(t, dt.timezone.utc).isoformat(timespec="seconds")


# --------------------------------------------------------------------------- parameters
def check_keep_runs(value: Any, parameter: str = "--keep-runs") -> int:
    text = str(value).strip()
    if isinstance(value, bool) or not re.fullmatch(r"[0-9]{1,9}", text):
        raise InvalidInputError(
            f"{parameter} must be a whole number of runs >= 0 (e.g. 10). Got {str(value)[:40]!r} instead."
        )
    return int(text)


def check_days(value: Any, parameter: str = "--older-than") -> float:
    try:
        days = float(str(value).strip())
    except ValueError:
        days = float("nan")
    if isinstance(value, bool) or not (days >= 0) or days == float("inf"):
        raise InvalidInputError(
            f"{parameter} must be a number of days >= 0 (e.g. 30 or 0.5). Got {str(value)[:40]!r} instead."
        )
    return days


# --------------------------------------------------------------------------- listing
def _walk_local(store: ArtifactStore, key: str, symlinks: list[str]) -> list[FileInfo]:
    """Files under ``key`` on a local store, never entering a symlinked folder."""
    base = store.path(key)
    prefix = store.root_path.rstrip("/") + "/"
    if os.path.islink(base):
        symlinks.append(key)
        return []
    out: list[FileInfo] = []
    stack = [base]
    while stack:
        folder = stack.pop()
        try:
            entries = list(os.scandir(folder))
        except (FileNotFoundError, NotADirectoryError):
            continue
        for e in entries:
            try:
                st = e.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue
            k = e.path[len(prefix) :]
            if e.is_symlink():
                symlinks.append(k)
                out.append(FileInfo(k, int(st.st_size), float(st.st_mtime), link=True))
            elif e.is_dir(follow_symlinks=False):
                stack.append(e.path)
            elif e.is_file(follow_symlinks=False):
                out.append(FileInfo(k, int(st.st_size), float(st.st_mtime)))
    return out


def _walk_remote(store: ArtifactStore, key: str) -> list[FileInfo]:
    path = store.path(key)
    store._fresh(path)
    try:
        found = store.fs.find(path, detail=True)
    except FileNotFoundError:
        return []
    prefix = store.root_path.rstrip("/") + "/"
    out = []
    for name, info in found.items():
        name = str(name).rstrip("/")
        if info.get("type") == "directory" or not name.startswith(path.rstrip("/") + "/"):
            continue
        out.append(FileInfo(name[len(prefix) :], int(info.get("size") or 0), modified_time(info)))
    return out


def list_files(store: ArtifactStore, key: str, single: bool = False) -> list[FileInfo]:
    """Every file under ``key`` (a folder, or with ``single`` one file) with its size and time."""
    if store.is_local:
        path = store.path(key)
        if single or os.path.islink(path) or not os.path.isdir(path):
            try:
                st = os.lstat(path)
            except FileNotFoundError:
                return []
            return [FileInfo(key, int(st.st_size), float(st.st_mtime), link=os.path.islink(path))]
        return _walk_local(store, key, [])
    if single:
        path = store.path(key)
        store._fresh(path)
        try:
            info = store.fs.info(path)
        except FileNotFoundError:
            return []
        return [FileInfo(key, int(info.get("size") or 0), modified_time(info))]
    return _walk_remote(store, key)


def classify(key: str) -> tuple[str, str, tuple, bool] | None:
    """``(unit key, category, retention group, single file)`` of a file key; None: not gc's."""
    parts = key.split("/")
    top, n = parts[0], len(parts)
    if top == "datasets" and n >= 4 and _SHA.fullmatch(parts[2]):
        return "/".join(parts[:3]), "snapshots", (parts[1],), False
    if top == "runs" and n >= 4:
        return "/".join(parts[:3]), "runs", (parts[1],), False
    if top == "predictions" and n >= 5:
        return "/".join(parts[:4]), "predictions", (parts[1], parts[2]), False
    if top == "drift" and n == 4 and parts[2] == "history" and _own_json(parts[3]):
        return key, "drift_history", (parts[1],), True
    if top == "drift" and n == 3 and _own_json(parts[2]):
        return key, "drift_reports", (parts[1],), True
    return None


def _own_json(name: str) -> bool:
    return name.endswith(".json") and not name.startswith(".")


def inventory(store: ArtifactStore, symlinks: list[str]) -> dict[str, Unit]:
    units: dict[str, Unit] = {}
    for area in AREAS:
        for f in _walk_local(store, area, symlinks) if store.is_local else _walk_remote(store, area):
            c = classify(f.key)
            if c is None:
                continue
            ukey, category, group, single = c
            if single and f.link:
                continue  # a symlinked drift file: not ours, left as it is
            unit = units.setdefault(ukey, Unit(ukey, category, group, single=single))
            unit.files.append(f)
    return units


# --------------------------------------------------------------------------- references
def refs_in_text(text: str, root: str | None = None) -> set[str]:
    """Unit keys named in ``text`` (URIs or keys; any root prefix)."""
    out = set()
    for m in _REF_RE.finditer(text):
        out.add(next(g for g in m.groups() if g))
    return out


def _read_text(store: ArtifactStore, f: FileInfo) -> str:
    if store.is_local:
        flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0)
        fd = os.open(store.path(f.key), flags)
        with os.fdopen(fd, "rb") as fh:
            return fh.read().decode("utf-8", "replace")
    return store.read_bytes(f.key).decode("utf-8", "replace")


def version_refs(mv: Any) -> set[str]:
    """Unit keys a registered version references: strings in its record, and its run folder."""
    from mlops_provider.core.names import run_folder

    record = mv.to_dict() if hasattr(mv, "to_dict") else dict(mv)
    refs = refs_in_text(json.dumps(record, default=str))
    lineage = record.get("lineage") or {}
    pairs = []
    if isinstance(lineage, dict) and lineage.get("dag_id") and lineage.get("run_id"):
        pairs.append((lineage["dag_id"], lineage["run_id"]))
    run_key = record.get("run_key")
    if isinstance(run_key, str) and run_key.count("/") >= 2:
        dag, run = run_key.split("/")[:2]
        pairs.append((dag, run))
    for dag, run in pairs:
        try:
            refs.add(f"runs/{run_folder(str(dag), str(run))}")
        except InvalidInputError:
            continue
    return refs


def registry_refs(registry) -> tuple[dict[str, str], set[str]]:
    """``({unit key: why}, model names)`` for every version of every model; a registry that cannot
    be read completely is a :class:`GcError` (nothing may be removed on partial knowledge)."""
    seeds: dict[str, str] = {}
    try:
        models = list(registry.list_models())
        for name in models:
            versions = registry.list_versions(name)
            known = {v.version for v in versions}
            for mv in versions:
                for ref in version_refs(mv):
                    seeds.setdefault(ref, f"referenced by {name} v{mv.version}")
            for event in registry.history(name):  # the alias log: every version it names must exist
                for v in (event.version, event.previous_version):
                    if v is not None and v not in known:
                        raise GcError(
                            f"the alias log of {name!r} names v{v}, which the registry does not list; "
                            "refusing to remove anything until the registry is consistent"
                        )
    except GcError:
        raise
    except Exception as err:
        raise GcError(f"cannot read the model registry ({err}); nothing removed") from err
    return seeds, set(models)


# --------------------------------------------------------------------------- planning
def _latest(units: Iterable[Unit], n: int, key=None) -> list[Unit]:
    return sorted(units, key=key or (lambda u: (u.modified, u.key)), reverse=True)[:n]


def _drift_version(store: ArtifactStore, unit: Unit) -> Any:
    try:
        entry = json.loads(_read_text(store, unit.files[0]))
        return entry.get("champion_version") if isinstance(entry, dict) else None
    except (OSError, ValueError):
        return None


def plan(
    store: ArtifactStore,
    registry,
    *,
    keep_runs: int = DEFAULT_KEEP_RUNS,
    older_than_days: float = DEFAULT_OLDER_THAN_DAYS,
    grace_seconds: float | None = None,
    now: float | None = None,
) -> GcPlan:
    """Decide what is kept (and why) and what is removable; removes nothing."""
    t0 = time.perf_counter()
    keep_runs = check_keep_runs(keep_runs, "keep_runs")
    older_than_days = check_days(older_than_days, "older_than_days")
    grace = stale_seconds() if grace_seconds is None else float(grace_seconds)
    now = time.time() if now is None else now
    seeds, models = registry_refs(registry)
    symlinks: list[str] = []
    units = inventory(store, symlinks)
    kept: dict[str, str] = {k: why for k, why in seeds.items() if k in units}
    _keep_recent(units, kept, now - older_than_days * 86400.0, now - grace, older_than_days, grace)
    _keep_latest(store, units, kept, models, keep_runs)
    _keep_referenced(store, units, kept)
    orphan_keys = {k for k in units if k not in kept}
    temporaries = []
    for uri in store.sweep_temporaries(older_than=grace, dry_run=True):
        key = store.key_of(uri)
        if _prefixes(key) & orphan_keys:
            continue  # removed with its unit
        temporaries.append({"key": key, "bytes": _size(store, key), "modified": None})
    return GcPlan(
        root=store.root,
        keep_runs=keep_runs,
        older_than_days=older_than_days,
        grace_seconds=grace,
        units=units,
        kept=kept,
        temporaries=temporaries,
        symlinks=sorted(set(symlinks)),
        seconds=time.perf_counter() - t0,
    )


def _keep_recent(units, kept, young: float, fresh: float, days: float, grace: float) -> None:
    for u in units.values():
        if u.key in kept:
            continue
        if u.modified >= fresh:
            kept[u.key] = f"modified within the last {grace:g} s (a writer may be busy)"
        elif u.modified >= young:
            kept[u.key] = f"newer than {days:g} days"


_GROUP_OF = {"runs": "DAG", "predictions": "model and DAG", "drift_history": "model and champion version"}


def _keep_latest(store, units, kept, models: set[str], keep_runs: int) -> None:
    """The ``keep_runs`` most recent runs per DAG, prediction sets per (model, DAG) and drift
    entries per (model, champion version) of models still in the registry."""
    groups: dict[tuple, list[Unit]] = {}
    for u in units.values():
        if u.category == "drift_history" and u.group[0] in models:
            groups.setdefault(("drift_history", u.group[0], _drift_version(store, u)), []).append(u)
        elif u.category == "runs" or (u.category == "predictions" and u.group[0] in models):
            groups.setdefault((u.category, *u.group), []).append(u)
    for (category, *group), members in groups.items():
        # a drift entry's name starts with its UTC stamp: the order the policy reads them in
        order = (lambda u: (u.key.rsplit("/", 1)[-1], u.modified)) if category == "drift_history" else None
        for u in _latest(members, keep_runs, order):
            kept.setdefault(u.key, f"one of the {keep_runs} most recent of its {_GROUP_OF[category]} {group}")


def _keep_referenced(store, units, kept) -> None:
    """Close ``kept`` over references: the ``*.json`` files of kept units name other units."""
    queue = list(kept)
    while queue:
        unit = units[queue.pop()]
        for f in unit.files:
            if f.link or not f.key.endswith(".json"):
                continue
            try:
                text = _read_text(store, f)
            except FileNotFoundError:
                continue
            except OSError as err:
                raise GcError(
                    f"cannot read {store.uri(f.key)} of kept {unit.key} ({err}); nothing removed"
                ) from err
            for ref in refs_in_text(text):
                if ref in units and ref not in kept:
                    kept[ref] = f"referenced by {unit.key}"
                    queue.append(ref)


def _prefixes(key: str) -> set[str]:
    parts = key.split("/")
    return {"/".join(parts[:i]) for i in range(1, len(parts) + 1)}


def _size(store: ArtifactStore, key: str) -> int:
    try:
        if store.is_local:
            return int(os.lstat(store.path(key)).st_size)
        return store.size(key)
    except (OSError, ValueError):
        return 0


# --------------------------------------------------------------------------- removing
@dataclass
class GcOutcome:
    removed: dict[str, list[dict[str, Any]]]
    skipped: list[dict[str, str]]


def _inside_root(store: ArtifactStore, key: str) -> bool:
    """Whether the folder holding ``key`` is, by its real path, where the key says (no symlink on
    the way out of the root)."""
    root = os.path.realpath(store.root_path)
    folder = os.path.dirname(store.path(key))
    expected = os.path.normpath(os.path.join(root, os.path.dirname(key)))
    return os.path.realpath(folder) == expected and expected.startswith(root + os.sep)


def _order(files: list[FileInfo]) -> list[FileInfo]:
    """Commit markers first (readers then see the unit as absent), then the rest."""
    return sorted(files, key=lambda f: (not f.key.endswith("/" + COMMIT_MARKER), f.key))


def remove_unit(store: ArtifactStore, unit: Unit, fresh_cutoff: float) -> str | None:
    """Remove one unit; returns why it was skipped, or None once removed."""
    files = list_files(store, unit.key, unit.single)
    if not files:
        return None
    if max(f.mtime for f in files) >= fresh_cutoff:
        return "modified since it was listed (a writer is busy there)"
    files = _order(files)
    if store.is_local:
        for f in files:
            if not _inside_root(store, f.key):
                return f"{f.key} is reached through a symlink; not removed"
        for f in files:
            try:
                os.unlink(store.path(f.key))  # a symlink is removed as a link; its target stays
            except FileNotFoundError:
                pass
        _prune_empty(store, unit.key)
    else:
        markers = [store.path(f.key) for f in files if f.key.endswith("/" + COMMIT_MARKER)]
        rest = [store.path(f.key) for f in files if not f.key.endswith("/" + COMMIT_MARKER)]
        for batch in (markers, rest):
            if batch:
                try:
                    store.fs.rm(batch)
                except FileNotFoundError:
                    pass
    return None


def _prune_empty(store: ArtifactStore, key: str) -> None:
    """Remove the now empty folders of a removed local unit, up to (not including) its area."""
    base = store.path(key)
    if os.path.isdir(base) and not os.path.islink(base):
        for folder, _dirs, _files in sorted(os.walk(base, topdown=False), key=lambda w: -len(w[0])):
            try:
                os.rmdir(folder)
            except OSError:
                pass
    parts = key.split("/")
    for i in range(len(parts) - 1, 1, -1):
        try:
            os.rmdir(store.path("/".join(parts[:i])))
        except OSError:
            break


def apply(store: ArtifactStore, p: GcPlan) -> GcOutcome:
    """Remove what ``p`` found removable (re-checking each unit just before), then the stale
    temporaries (the sweep)."""
    removed: dict[str, list[dict[str, Any]]] = {c: [] for c in CATEGORIES}
    skipped: list[dict[str, str]] = []
    fresh_cutoff = time.time() - p.grace_seconds
    for unit in p.orphans:
        why = remove_unit(store, unit, fresh_cutoff)
        if why is None:
            removed[unit.category].append(unit.to_dict())
        else:
            skipped.append({"key": unit.key, "reason": why})
    sizes = {t["key"]: t["bytes"] for t in p.temporaries}
    for uri in store.sweep_temporaries(older_than=p.grace_seconds):
        key = store.key_of(uri)
        removed["temporaries"].append({"key": key, "bytes": sizes.get(key, 0), "modified": None})
    return GcOutcome(removed, skipped)


def summarize(items: dict[str, list[dict[str, Any]]]) -> dict[str, dict[str, int]]:
    return {c: {"count": len(v), "bytes": sum(int(i.get("bytes") or 0) for i in v)} for c, v in items.items()}
