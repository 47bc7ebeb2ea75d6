"""Scale-out batch scoring over input partitions: list them, split a snapshot into them (the demo's
landing step), and gather the per-partition predictions into ONE prediction set, all or nothing.

Layout (keys under the artifact root)::

    <input prefix>/part-00000.parquet ...            input partitions (one mapped scoring task each)
    <input prefix>/_SUCCESS                          the producer's completion marker, written last
    runs/<dag>/<run>/<task>/part-00003/...           a mapped task's staged part (same key on retry)
    predictions/<model>/<dag>/<run>/parts/part-00003-<sha256[:16]>.parquet    published parts
    predictions/<model>/<dag>/<run>/manifest.json    the commit marker, written last

:func:`gather_predictions` verifies EVERY part before touching the published folder (one part per
partition, its row count that of the partition, the sha256 of its file the one its scoring task
recorded, one pinned model version and sha256 for all), so a refused gather publishes nothing. Only
then are the parts moved to content-addressed names and the manifest written; a reader that goes
through the manifest (:func:`prediction_set_files`) sees the previous set or the new one, whole.
A rerun finds the parts already published under the same names and leaves the set as it is.

This module imports no Airflow; pyarrow is imported inside the functions.
"""

from __future__ import annotations

import datetime as dt
import posixpath
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from mlops_provider.core.datasets import MANIFEST, _data_key
from mlops_provider.core.errors import (
    CorruptArtifactError,
    EmptyDatasetError,
    IntegrityError,
    InvalidInputError,
    NotFoundError,
)
from mlops_provider.core.storage import ArtifactStore

SUCCESS = "_SUCCESS"
PARTS_DIR = "parts"
#: Airflow's default ``[core] max_map_length``: more partitions than this cannot be mapped.
MAX_PARTITIONS = 1024
_IO_THREADS = 8


class IncompletePredictionsError(IntegrityError):
    """The parts to gather do not add up to the partitions (missing, wrong rows, wrong sha256)."""

    def __init__(self, message: str, problems: list[str] | None = None):
        super().__init__(message)
        self.problems = list(problems or [])


def _in_store(store: ArtifactStore, uri: Any, parameter: str, owner: str) -> str:
    if not isinstance(uri, str) or not uri.strip():
        raise InvalidInputError(
            f"The {parameter!r} parameter of {owner} must be a URI or key under the artifact root. "
            f"Got {uri!r} instead."
        )
    try:
        return store.key_of(uri.strip()).strip("/")
    except ValueError as err:
        raise InvalidInputError(
            f"The {parameter!r} parameter of {owner} must be a URI under the artifact root {store.root!r} "
            f"(or a key relative to it). Got {uri!r} instead."
        ) from err


def _key_of_path(store: ArtifactStore, path: str) -> str:
    """The key of a path as the store's filesystem returns it (``bucket/...`` or ``/abs/...``)."""
    path = str(path)
    if "://" in path:
        path = path.split("://", 1)[1]
    root = store.root_path.rstrip("/")
    if store.is_local:
        path = "/" + path.lstrip("/")
    return path[len(root) :].strip("/") if path.startswith(root + "/") else path.strip("/")


def _map(fn: Callable[[Any], Any], items: list, store: ArtifactStore) -> list:
    """``fn`` over ``items``, a few at a time on an object store (each is a round trip)."""
    if store.is_local or len(items) < 2:
        return [fn(x) for x in items]
    with ThreadPoolExecutor(max_workers=min(_IO_THREADS, len(items))) as pool:
        return list(pool.map(fn, items))


def parquet_rows(store: ArtifactStore, key: str) -> int:
    """Rows of a Parquet file, from its footer (no data read)."""
    import pyarrow.parquet as pq

    try:
        with store.open_read(key) as f:
            return int(pq.read_metadata(f).num_rows)
    except FileNotFoundError as err:
        raise NotFoundError(f"No Parquet file at {store.uri(key)}") from err
    except Exception as err:
        raise CorruptArtifactError(f"{store.uri(key)} is not a readable Parquet file: {err}") from err


def _partition(store: ArtifactStore, key: str, index: int, rows: int, size: int) -> dict[str, Any]:
    return {"uri": store.uri(key), "rows": int(rows), "size": int(size), "index": index}


def list_partitions(
    store: ArtifactStore,
    uri: str,
    *,
    pattern: str = "*.parquet",
    marker: str | None = SUCCESS,
    max_partitions: int = MAX_PARTITIONS,
    owner: str = "list_partitions",
) -> list[dict[str, Any]]:
    """The Parquet files under ``uri`` matching ``pattern``, sorted by name, each as
    ``{"uri", "rows", "size", "index"}`` (rows from the file's footer).

    With ``marker`` (default ``_SUCCESS``) the listing is refused until the producer has written
    that file, which it writes last: a half-landed folder is never scored. Names starting with
    ``.`` or ``_`` (temporary files, markers) are not partitions.
    """
    prefix = _in_store(store, uri, "uri", owner)
    if not isinstance(pattern, str) or not pattern or pattern.startswith("/"):
        raise InvalidInputError(
            f"The 'pattern' parameter of {owner} must be a relative glob such as '*.parquet'. "
            f"Got {pattern!r} instead."
        )
    if isinstance(max_partitions, bool) or not isinstance(max_partitions, int) or max_partitions < 1:
        raise InvalidInputError(
            f"The 'max_partitions' parameter of {owner} must be an int >= 1. Got {max_partitions!r} instead."
        )
    if marker and not store.exists(f"{prefix}/{marker}"):
        raise NotFoundError(
            f"The 'uri' parameter of {owner} must name a complete set of partitions: "
            f"{store.uri(prefix)} has no {marker!r} marker (the producer writes it last), so its files may "
            "still be arriving."
        )
    base = store.path(prefix)
    store._fresh(base)
    found = sorted(
        k
        for k in (_key_of_path(store, p) for p in store.fs.glob(f"{base}/{pattern}"))
        if not posixpath.basename(k).startswith((".", "_")) and k != prefix
    )
    if not found:
        raise EmptyDatasetError(
            f"The 'uri' parameter of {owner} must name a folder holding files matching {pattern!r}. "
            f"Got {store.uri(prefix)!r}, where none matches."
        )
    if len(found) > max_partitions:
        raise InvalidInputError(
            f"The 'max_partitions' parameter of {owner} allows at most {max_partitions} partitions. Got "
            f"{len(found)} files under {store.uri(prefix)} (write fewer, larger files, or raise "
            f"max_partitions and Airflow's [core] max_map_length)."
        )
    rows = _map(lambda k: parquet_rows(store, k), found, store)
    sizes = _map(store.size, found, store)
    return [_partition(store, k, i, r, s) for i, (k, r, s) in enumerate(zip(found, rows, sizes, strict=True))]


def split_dataset(
    store: ArtifactStore,
    dataset_uri: str,
    output_uri: str,
    partitions: int,
    *,
    marker: str = SUCCESS,
    batch_size: int = 65_536,
    owner: str = "split_dataset",
) -> dict[str, Any]:
    """Write a snapshot (or Parquet file) as ``partitions`` Parquet files of consecutive rows under
    ``output_uri``, then the ``marker`` file listing them: what a producer landing partitioned data
    does (the partitioned template's demo input). Streams in bounded memory.

    Idempotent: if the marker already records the same source (sha256) and partition count, and
    the files it lists are there, nothing is written. Otherwise the marker is removed first (the
    folder reads as incomplete), the old files are replaced, and the marker is written last.
    """
    import pyarrow.parquet as pq

    if isinstance(partitions, bool) or not isinstance(partitions, int) or partitions < 1:
        raise InvalidInputError(
            f"The 'partitions' parameter of {owner} must be an int >= 1. Got {partitions!r} instead."
        )
    if partitions > MAX_PARTITIONS:
        raise InvalidInputError(
            f"The 'partitions' parameter of {owner} must be at most {MAX_PARTITIONS}. "
            f"Got {partitions!r} instead."
        )
    try:
        src = _data_key(store, dataset_uri)
    except ValueError as err:
        raise InvalidInputError(
            f"The 'dataset' parameter of {owner} must be a snapshot or Parquet file under the artifact root "
            f"{store.root!r}. Got {dataset_uri!r} instead."
        ) from err
    prefix = _in_store(store, output_uri, "output_uri", owner)
    folder = posixpath.dirname(src)
    snapshot = src != store.key_of(dataset_uri).strip(
        "/"
    )  # given a snapshot folder: its manifest has the sha256
    src_sha = (store.read_json(f"{folder}/{MANIFEST}").get("sha256") if snapshot else None) or store.sha256(
        src
    )
    total = parquet_rows(store, src)
    if total == 0:
        raise EmptyDatasetError(f"{store.uri(src)} has 0 rows; nothing to split into partitions.")
    if partitions > total:
        raise InvalidInputError(
            f"The 'partitions' parameter of {owner} must be at most the {total} rows of {store.uri(src)}. "
            f"Got {partitions} instead."
        )
    marker_key = f"{prefix}/{marker}"
    if store.exists(marker_key):
        done = store.read_json(marker_key)
        names = [p["name"] for p in done.get("parts", [])]
        if (
            done.get("source_sha256") == src_sha
            and len(names) == partitions
            and all(store.exists(f"{prefix}/{n}") for n in names)
        ):
            parts = [
                _partition(store, f"{prefix}/{p['name']}", i, p["rows"], p["size"])
                for i, p in enumerate(done["parts"])
            ]
            return {
                "uri": store.uri(prefix),
                "source_sha256": src_sha,
                "rows": total,
                "reused": True,
                "partitions": parts,
            }
        store.delete(marker_key)  # from here on the folder reads as incomplete
    for name in store.list_dir(prefix):
        if name.startswith("part-"):
            store.delete(f"{prefix}/{name}")
    bounds = [total * i // partitions for i in range(partitions + 1)]
    pf_file = store.open_read(src)
    written: list[dict[str, Any]] = []
    try:
        pf = pq.ParquetFile(pf_file)
        batches = pf.iter_batches(batch_size=batch_size)
        pending = None
        for i in range(partitions):
            key = f"{prefix}/part-{i:05d}.parquet"
            need = bounds[i + 1] - bounds[i]
            with store.open_atomic(key) as sink:
                writer = pq.ParquetWriter(sink, pf.schema_arrow, compression="zstd")
                while need:
                    if pending is None or pending.num_rows == 0:
                        pending = next(batches)
                    take = min(need, pending.num_rows)
                    writer.write_batch(pending.slice(0, take))
                    pending, need = pending.slice(take), need - take
                writer.close()
            written.append(
                {
                    "name": posixpath.basename(key),
                    "rows": bounds[i + 1] - bounds[i],
                    "size": sink.size,
                    "sha256": sink.sha256,
                }
            )
    except StopIteration as err:
        raise CorruptArtifactError(f"{store.uri(src)} ended before its {total} rows were read") from err
    finally:
        pf_file.close()
    store.write_json(
        marker_key,
        {
            "source_uri": store.uri(src),
            "source_sha256": src_sha,
            "rows": total,
            "parts": written,
            "created_at": _now(),
        },
    )
    parts = [
        _partition(store, f"{prefix}/{p['name']}", i, p["rows"], p["size"]) for i, p in enumerate(written)
    ]
    return {
        "uri": store.uri(prefix),
        "source_sha256": src_sha,
        "rows": total,
        "reused": False,
        "partitions": parts,
    }


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def _published_key(output_key: str, index: int, sha256: str) -> str:
    return f"{output_key}/{PARTS_DIR}/part-{index:05d}-{sha256[:16]}.parquet"


def _norm_partitions(store: ArtifactStore, partitions: Any, owner: str) -> list[dict[str, Any]]:
    if isinstance(partitions, (str, bytes, dict)) or not isinstance(partitions, Iterable):
        raise InvalidInputError(
            f"The 'partitions' parameter of {owner} must be the list of input partitions "
            f"(a ListPartitionsOperator or PartitionDatasetOperator result). Got {partitions!r} instead."
        )
    out = []
    for i, p in enumerate(list(partitions)):
        uri = p.get("uri") if isinstance(p, dict) else p
        key = _in_store(store, uri, f"partitions[{i}]", owner)
        rows = p.get("rows") if isinstance(p, dict) else None
        out.append({"uri": store.uri(key), "key": key, "rows": None if rows is None else int(rows)})
    if not out:
        raise EmptyDatasetError(
            f"The 'partitions' parameter of {owner} must list at least one partition. Got []."
        )
    dupes = sorted({p["uri"] for p in out if sum(q["uri"] == p["uri"] for q in out) > 1})
    if dupes:
        raise InvalidInputError(
            f"The 'partitions' parameter of {owner} must list each input once. Got duplicates: {dupes}"
        )
    return out


def gather_predictions(
    store: ArtifactStore,
    *,
    partitions: Any,
    parts: Any,
    output_key: str,
    model: dict[str, Any] | None = None,
    extra_manifest: dict[str, Any] | None = None,
    owner: str = "gather_predictions",
) -> dict[str, Any]:
    """Verify the scored parts against the partitions, then publish them as one prediction set.

    :param partitions: the input partitions (dicts with ``uri`` and ``rows``, or URIs).
    :param parts: the mapped scoring tasks' results (``BatchScoreOperator``: ``input_uri``,
        ``output_uri``, ``rows``, ``output_sha256``, ``model_version``, ``model_sha256``).
    :param model: the pinned version (``{"version", "model_sha256"}``) every part must have used.
    :return: the manifest, plus ``manifest_uri`` and ``reused`` (True when the same set was
        already published: nothing written).
    :raises IncompletePredictionsError: listing every problem found; nothing is published and a
        previously published set is left as it was.
    """
    output_key = _check_output_key(output_key, owner)
    wanted = _norm_partitions(store, partitions, owner)
    got = _norm_parts(parts, owner)
    by_input, problems = _index_parts(store, got)
    known = {p["uri"] for p in wanted}
    problems += [f"part for {uri} matches no partition" for uri in sorted(set(by_input) - known)]
    problems += _version_problems(by_input, _check_pin(model, owner))
    found = _map(
        lambda item: _verify_part(store, output_key, by_input, *item), list(enumerate(wanted)), store
    )
    for _, errs in found:
        problems += errs
    if problems:
        shown = "; ".join(problems[:20]) + (f"; and {len(problems) - 20} more" if len(problems) > 20 else "")
        raise IncompletePredictionsError(
            f"The 'parts' parameter of {owner} must hold one verified part per partition ({len(wanted)} "
            f"expected, {len(got)} given). Got: {shown}. Nothing was published to {store.uri(output_key)}.",
            problems,
        )
    entries = [
        _entry(store, output_key, i, p, by_input[p["uri"]], key)
        for (i, p), (key, _) in zip(enumerate(wanted), found, strict=True)
    ]
    return _publish(store, output_key, entries, by_input[wanted[0]["uri"]], extra_manifest)


def _check_output_key(output_key: Any, owner: str) -> str:
    if not isinstance(output_key, str) or not output_key.strip("/"):
        raise InvalidInputError(
            f"The 'output_key' parameter of {owner} must be a non-empty key. Got {output_key!r} instead."
        )
    return output_key.strip("/")


def _norm_parts(parts: Any, owner: str) -> list[Any]:
    if isinstance(parts, (str, bytes, dict)) or not isinstance(parts, Iterable):
        raise InvalidInputError(
            f"The 'parts' parameter of {owner} must be the list of mapped scoring results. "
            f"Got {parts!r} instead."
        )
    return list(parts)


def _index_parts(store: ArtifactStore, got: list[Any]) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """The scoring results by the URI of the partition they scored, and the problems found."""
    problems: list[str] = []
    by_input: dict[str, dict[str, Any]] = {}
    for j, r in enumerate(got):
        if (
            not isinstance(r, dict)
            or not isinstance(r.get("input_uri"), str)
            or not isinstance(r.get("output_uri"), str)
        ):
            problems.append(
                f"parts[{j}] is not a scoring result with 'input_uri' and 'output_uri' (got {r!r})"
            )
            continue
        try:
            uri = store.uri(store.key_of(r["input_uri"]))
        except ValueError:
            problems.append(f"parts[{j}] scored {r['input_uri']!r}, outside the artifact root")
            continue
        if uri in by_input:
            problems.append(
                f"{uri} was scored twice (parts {by_input[uri].get('map_index')} and {r.get('map_index')})"
            )
        by_input[uri] = r
    return by_input, problems


def _version_problems(by_input: dict[str, dict[str, Any]], pin: tuple[int, str] | None) -> list[str]:
    """One model version for every part, and the pinned one if there is a pin."""
    problems = []
    versions = {(r.get("model_version"), r.get("model_sha256")) for r in by_input.values()}
    if len(versions) > 1:
        problems.append(f"the parts were scored with different model versions: {sorted(map(str, versions))}")
    if pin is not None:
        for uri, r in sorted(by_input.items()):
            if (r.get("model_version"), r.get("model_sha256")) != pin:
                problems.append(
                    f"part for {uri} used v{r.get('model_version')} sha256 {r.get('model_sha256')}, "
                    f"not the pinned v{pin[0]} sha256 {pin[1]}"
                )
    return problems


def _verify_part(
    store: ArtifactStore, output_key: str, by_input: dict[str, dict[str, Any]], i: int, p: dict[str, Any]
) -> tuple[str | None, list[str]]:
    """(the key of partition ``i``'s verified part -- published already, or staged -- or None, the
    problems found)."""
    r = by_input.get(p["uri"])
    if r is None:
        return None, [f"partition {i} ({p['uri']}): no scored part (missing)"]
    sha = r.get("output_sha256")
    if not isinstance(sha, str) or len(sha) != 64:
        return None, [f"partition {i} ({p['uri']}): its part records no sha256 (got {sha!r})"]
    try:
        staged = store.key_of(r["output_uri"])
    except ValueError:
        return None, [f"partition {i} ({p['uri']}): its part {r['output_uri']} is outside the artifact root"]
    errs: list[str] = []
    for key in (_published_key(output_key, i, sha), staged):
        if not store.exists(key):
            continue
        err = _file_problem(store, key, i, p, r)
        if err is None:
            return key, []
        errs = [err]
    return None, errs or [f"partition {i} ({p['uri']}): its part is missing (no file at {r['output_uri']})"]


def _file_problem(store: ArtifactStore, key: str, i: int, p: dict[str, Any], r: dict[str, Any]) -> str | None:
    """What is wrong with the part file at ``key`` (rows, sha256), or None."""
    sha, rows = r.get("output_sha256"), r.get("rows")
    try:
        n = parquet_rows(store, key)
    except CorruptArtifactError as err:
        return f"partition {i} ({p['uri']}): {err}"
    if n != rows or (p["rows"] is not None and n != p["rows"]):
        return (
            f"partition {i} ({p['uri']}): {n} predicted rows at {store.uri(key)}, expected "
            f"{p['rows'] if p['rows'] is not None else rows} (its part recorded {rows})"
        )
    actual = store.sha256(key)
    if actual != sha:
        return (
            f"partition {i} ({p['uri']}): sha256 of {store.uri(key)} is {actual}, its scoring task "
            f"recorded {sha}"
        )
    return None


def _entry(
    store: ArtifactStore, output_key: str, i: int, p: dict[str, Any], r: dict[str, Any], at: str
) -> dict[str, Any]:
    """Partition ``i``'s line of the manifest (``_at``: where its file is now, ``_staged``: where its
    scoring task wrote it; both private)."""
    return {
        "index": i,
        "partition": p["uri"],
        "rows": int(r["rows"]),
        "sha256": r["output_sha256"],
        "uri": store.uri(_published_key(output_key, i, r["output_sha256"])),
        "_at": at,
        "_staged": store.key_of(r["output_uri"]),
    }


def _publish(
    store: ArtifactStore,
    output_key: str,
    entries: list[dict[str, Any]],
    first: dict[str, Any],
    extra_manifest: dict[str, Any] | None,
) -> dict[str, Any]:
    """Move the verified parts to their published names and commit the manifest (or, when the same
    set is already published, leave it)."""
    manifest_key = f"{output_key}/{MANIFEST}"
    public = [{k: v for k, v in e.items() if not k.startswith("_")} for e in entries]
    if store.exists(manifest_key):
        old = store.read_json(manifest_key)
        if old.get("parts") == public and all(
            e["_at"] == _published_key(output_key, e["index"], e["sha256"]) for e in entries
        ):
            _drop_staging(store, entries, output_key)
            return {**old, "manifest_uri": store.uri(manifest_key), "reused": True}
    for e in entries:
        dst = _published_key(output_key, e["index"], e["sha256"])
        if e["_at"] != dst:
            _publish_part(store, e["_at"], dst)
    manifest = {
        "model": first.get("model"),
        "model_version": first.get("model_version"),
        "model_sha256": first.get("model_sha256"),
        "rows": sum(e["rows"] for e in entries),
        "partitions": len(entries),
        "parts": public,
        "columns": first.get("columns"),
        "output_uri": store.uri(f"{output_key}/{PARTS_DIR}"),
        "created_at": _now(),
        **(extra_manifest or {}),
    }
    store.write_json(manifest_key, manifest)  # the commit: readers now see the new set, whole
    keep = {posixpath.basename(store.key_of(e["uri"])) for e in entries}
    for name in store.list_dir(f"{output_key}/{PARTS_DIR}"):
        if name not in keep and not name.startswith(".tmp-"):
            store.delete(f"{output_key}/{PARTS_DIR}/{name}")  # the previous set's parts
    _drop_staging(store, entries, output_key)
    return {**manifest, "manifest_uri": store.uri(manifest_key), "reused": False}


def _publish_part(store: ArtifactStore, src: str, dst: str) -> None:
    """Rename on a local filesystem; a server-side copy then delete on an object store (what an
    S3 "move" is anyway; gcsfs would first try GCS's moveTo, which emulators reject slowly)."""
    if store.is_local:
        store.move(src, dst)
        return
    store.fs.copy(store.path(src), store.path(dst))
    store.delete(src)


def _check_pin(model: Any, owner: str) -> tuple[int, str] | None:
    if model is None:
        return None
    if (
        not isinstance(model, dict)
        or not isinstance(model.get("model_sha256"), str)
        or model.get("version") is None
    ):
        raise InvalidInputError(
            f"The 'model' parameter of {owner} must be the pinned version "
            f"({{'version': int, 'model_sha256': str}}, a ResolveModelVersionOperator result) or None. "
            f"Got {model!r} instead."
        )
    return int(model["version"]), model["model_sha256"]


def _drop_staging(store: ArtifactStore, entries: list[dict[str, Any]], output_key: str) -> None:
    """Remove the staged parts once the set is published: a mapped task's folder holds only its
    part and that part's manifest (anything else, or a folder inside the set, is left alone)."""
    for e in entries:
        folder = posixpath.dirname(e["_staged"])
        if folder == output_key or folder.startswith(output_key + "/"):
            continue
        if set(store.list_dir(folder)) <= {posixpath.basename(e["_staged"]), MANIFEST}:
            store.delete(folder, recursive=True)


def prediction_set_files(store: ArtifactStore, uri: str) -> list[str]:
    """The Parquet file URIs of a committed prediction set (a folder with ``manifest.json``): its
    parts in partition order, or the single ``predictions.parquet`` of an unpartitioned run."""
    key = store.key_of(uri).strip("/")
    if key.endswith(MANIFEST):
        key = posixpath.dirname(key)
    if not store.exists(f"{key}/{MANIFEST}"):
        raise NotFoundError(
            f"No prediction set at {store.uri(key)} (no {MANIFEST}: missing or not committed)"
        )
    m = store.read_json(f"{key}/{MANIFEST}")
    if "parts" in m:
        return [p["uri"] for p in sorted(m["parts"], key=lambda p: p["index"])]
    return [m["output_uri"]]


def key_time(store: ArtifactStore, key: str) -> float:
    """When ``key`` was written (local mtime, S3 LastModified, GCS generation) as a sortable number."""
    from mlops_provider.core.storage import creation_order

    return creation_order(store.fs.info(store.path(key)))


def latest_scored_window(store: ArtifactStore, model_name: str) -> list[Any] | None:
    """The ``window`` of the most recently written prediction set of ``model_name`` (the manifests
    under ``predictions/<model>/<dag>/<run>/``) that records one; None if none does."""
    folder = f"predictions/{model_name}"
    latest: tuple[float, Any] | None = None
    for dag_folder in store.list_dir(folder):
        for run in store.list_dir(f"{folder}/{dag_folder}"):
            key = f"{folder}/{dag_folder}/{run}/{MANIFEST}"
            if not store.exists(key):
                continue
            window = store.read_json(key).get("window")
            if not window:
                continue
            written = key_time(store, key)
            if latest is None or written > latest[0]:
                latest = (written, window)
    return None if latest is None else list(latest[1])
