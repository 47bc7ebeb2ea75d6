"""Where snapshots come from: SQL through any DB-API connection, or CSV/Parquet files at any URI.

Both produce pyarrow record batches for :func:`mlops_provider.core.datasets.write_snapshot`.

Files are selected first (:func:`list_source_objects`: a file, a folder/prefix, a glob, optionally
narrowed to the Hive-style partitions of a time interval), then read in path order
(:func:`iter_object_batches`) into one schema unified across all of them, and finally listed again
to make sure none changed while it was read. The selected objects, with their sizes and
etags/generations, are what the snapshot manifest records.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import posixpath
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from mlops_provider.core.errors import CorruptArtifactError, InvalidInputError, NotFoundError
from mlops_provider.core.storage import StorageError

FILE_FORMATS = ("parquet", "csv")
DEFAULT_PARTITION_FORMAT = "%Y-%m-%d"
_GLOB_CHARS = "*?["
_COMPRESSION = {".gz": "gzip", ".bz2": "bz2", ".zst": "zstd"}
_CSV_BLOCK = 1 << 24
_CSV_PROBE_BLOCK = 1 << 20
# I/O failures that say nothing about the file's content: they propagate (the task may retry)
_NOT_CORRUPT = (FileNotFoundError, PermissionError, ConnectionError, TimeoutError)


def iter_sql_batches(connect: Callable[[], Any], query: str, batch_size: int = 50_000) -> Iterator[Any]:
    """Run ``query`` on a DB-API connection from ``connect()`` and yield pyarrow tables.

    Column types are inferred on the first batch that has a non-null value in each column and
    held for the rest, so every batch shares one schema.
    """
    import pandas as pd
    import pyarrow as pa

    if not isinstance(query, str) or not query.strip():
        raise InvalidInputError(f"The 'sql' parameter must be a non-empty SQL string. Got {query!r} instead.")
    conn = connect()
    try:
        cur = conn.cursor()
        try:
            cur.execute(query)
            if cur.description is None:
                raise InvalidInputError(f"The query returned no result set (is it a SELECT?). Query: {query}")
            names = [d[0] for d in cur.description]
            dupes = sorted({n for n in names if names.count(n) > 1})
            if dupes:
                raise InvalidInputError(
                    f"The query returns duplicate column names {dupes}; alias them. Query: {query}"
                )
            schema: pa.Schema | None = None
            while True:
                rows = cur.fetchmany(batch_size)
                if not rows:
                    break
                frame = pd.DataFrame.from_records(rows, columns=names)
                table = pa.Table.from_pandas(frame, preserve_index=False)
                if schema is None:
                    schema = table.schema
                elif table.schema != schema:
                    schema = _widen(schema, table.schema)
                    table = table.cast(schema)
                yield table
        finally:
            cur.close()
    finally:
        conn.close()


def _widen(held, new):
    """Schema where columns that were all-null so far take the type seen now."""
    import pyarrow as pa

    fields = []
    for f in held:
        nf = new.field(f.name)
        if pa.types.is_null(f.type):
            fields.append(nf)
        elif pa.types.is_integer(f.type) and pa.types.is_floating(nf.type):
            fields.append(nf)
        else:
            fields.append(f)
    return pa.schema(fields)


# ------------------------------------------------------------------------------------------ files
@dataclass
class SourceObject:
    """One file selected for a snapshot, with what identifies its exact content."""

    path: str  # path on the filesystem (no protocol), what ``fs.open`` takes
    uri: str  # protocol://path, what the manifest records
    size: int
    format: str
    fingerprint: dict[str, Any] = field(
        default_factory=dict
    )  # etag / generation / version_id / md5 / modified
    partition: dict[str, str] = field(default_factory=dict)  # Hive partition values from the path

    def identity(self) -> tuple:
        """What must not change between listing and reading (content version, else mtime)."""
        fp = self.fingerprint
        keys = [k for k in ("etag", "generation", "version_id") if k in fp] or ["modified"]
        return (self.size, *[(k, fp.get(k)) for k in keys])

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"uri": self.uri, "size": self.size, "format": self.format, **self.fingerprint}
        if self.partition:
            d["partition"] = dict(self.partition)
        return d


@dataclass
class PartitionFilter:
    """Keep files whose Hive-style partition value(s) fall in ``[start, end)``.

    ``columns``: the partition folder name(s) (``month`` for ``.../month=2013-07/...``); with several
    (``["year", "month"]``) their values are joined with ``/`` before parsing. ``format``: the
    ``strptime`` format of the (joined) value. Values without a time zone are taken as UTC.
    """

    columns: list[str]
    format: str
    start: dt.datetime
    end: dt.datetime

    def describe(self) -> str:
        cols = self.columns[0] if len(self.columns) == 1 else self.columns
        return f"partition {cols!r} (format {self.format!r}) in [{_iso(self.start)}, {_iso(self.end)})"


def split_uri(uri: str) -> tuple[str, str]:
    """(protocol, filesystem path) of a URI; a bare path is a local path."""
    from mlops_provider.core.storage import _strip_protocol

    return _strip_protocol(str(uri))


def object_uri(protocol: str, path: str) -> str:
    return f"file://{path}" if protocol == "file" else f"{protocol}://{path.lstrip('/')}"


def list_source_objects(
    uri: str,
    fs: Any = None,
    file_format: str | None = None,
    partition: PartitionFilter | None = None,
    interval: tuple[Any, Any] | None = None,
) -> list[SourceObject]:
    """The CSV/Parquet files at ``uri`` (a file, a folder or prefix, or a glob), sorted by path.

    In a folder or a glob's matches, hidden files and folders (``_SUCCESS``, ``_temporary/``,
    ``.crc``) and files of other types are skipped; with ``file_format`` given, extension-less files
    (Hive's ``000000_0``) are read as that format. ``partition`` narrows the selection to the
    partitions of a time interval.
    ``interval`` only names the run's data interval in the error when nothing matches.
    Raises :class:`NotFoundError` (naming the URI and the interval) when nothing is selected.
    """
    from mlops_provider.core.storage import filesystem_for

    if file_format is not None and file_format not in FILE_FORMATS:
        raise InvalidInputError(
            f"The 'file_format' parameter must be one of {list(FILE_FORMATS)} or None (inferred from file "
            f"names). Got {file_format!r} instead."
        )
    protocol, path = split_uri(uri)
    fs = fs or filesystem_for(uri)
    entries = _list_entries(fs, path, protocol)
    objects: list[SourceObject] = []
    base = _glob_base(path) if any(c in path for c in _GLOB_CHARS) else path
    for p, (info, named) in sorted(entries.items()):
        fmt = _data_format(p, file_format, base=None if named else base)
        if fmt is None:
            if named:
                raise InvalidInputError(
                    f"The 'file_format' parameter must be one of {list(FILE_FORMATS)} (or inferable from the "
                    f"file name). Got {file_format!r} for {object_uri(protocol, p)!r} instead."
                )
            continue
        objects.append(
            SourceObject(
                path=p,
                uri=object_uri(protocol, p),
                size=int(info.get("size") or 0),
                format=fmt,
                fingerprint=_fingerprint(info),
            )
        )
    window = ""
    if partition is not None:
        window = f" with a {partition.describe()}"
    elif interval and interval[0] is not None:
        window = f" (data interval [{_iso(interval[0])}, {_iso(interval[1])}))"
    if not objects:
        if not entries:
            raise NotFoundError(f"No file at {uri}{window}: nothing matches that path, folder or glob")
        other = object_uri(protocol, sorted(entries)[0])
        raise NotFoundError(
            f"No CSV or Parquet file at {uri}{window}: {len(entries)} other file(s) there, e.g. {other} "
            "(hidden "
            f"files are skipped; give 'file_format' to read files named without .csv/.parquet)"
        )
    if partition is None:
        return objects
    return _select_partitions(uri, objects, partition, window)


def _list_entries(fs: Any, path: str, protocol: str) -> dict[str, tuple[dict, bool]]:
    """path -> (info, named): ``named`` when the URI names that very file (not a folder or glob)."""
    if protocol != "file":  # another worker (or the upstream job) may have written since the last listing
        with contextlib.suppress(Exception):
            fs.invalidate_cache(_glob_base(path) if any(c in path for c in _GLOB_CHARS) else path)
    out: dict[str, tuple[dict, bool]] = {}
    if any(c in path for c in _GLOB_CHARS):
        for p, info in sorted(fs.glob(path, detail=True).items()):
            if info.get("type") == "directory":
                out.update((q, (qi, False)) for q, qi in fs.find(p, detail=True).items())
            else:
                out[p] = (info, False)  # a glob selects like a folder listing: litter is skipped
    elif fs.isdir(path):
        for q, qi in fs.find(path, detail=True).items():
            out[q] = (qi, False)
    else:
        try:
            info = fs.info(path)
        except FileNotFoundError:
            return {}
        out[info.get("name", path)] = (info, True)
    return {p.rstrip("/"): v for p, v in out.items() if v[0].get("type", "file") != "directory"}


def _glob_base(path: str) -> str:
    parts = []
    for seg in path.split("/"):
        if any(c in seg for c in _GLOB_CHARS):
            break
        parts.append(seg)
    return "/".join(parts) or "/"


def _data_format(path: str, file_format: str | None, base: str | None) -> str | None:
    """The format to read ``path`` as, or None to skip it (found by listing a folder)."""
    name = posixpath.basename(path)
    inferred = _format_of(name)
    if base is None:  # named explicitly: read it (an unknown type is an error raised by the caller)
        return file_format or inferred
    rel = path[len(base.rstrip("/")) + 1 :] if path.startswith(base.rstrip("/") + "/") else name
    if any(seg.startswith(("_", ".")) for seg in rel.split("/")):
        return None
    if file_format is None:
        return inferred
    if inferred == file_format or (inferred is None and "." not in name):
        return file_format
    return None


def _fingerprint(info: dict) -> dict[str, Any]:
    fp: dict[str, Any] = {}
    for src, dst in (
        ("ETag", "etag"),
        ("etag", "etag"),
        ("generation", "generation"),
        ("VersionId", "version_id"),
        ("md5Hash", "md5"),
        ("crc32c", "crc32c"),
    ):
        value = info.get(src)
        if value not in (None, "", "null") and dst not in fp:
            fp[dst] = str(value).strip('"')
    modified = info.get("LastModified") or info.get("updated") or info.get("mtime")
    if modified is not None:
        if isinstance(modified, (int, float)):
            modified = dt.datetime.fromtimestamp(modified, dt.timezone.utc)
        fp["modified"] = _iso(modified) if isinstance(modified, dt.datetime) else str(modified)
    return fp


def _iso(value: Any) -> str:
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def partition_values(path: str, columns: Sequence[str]) -> dict[str, str] | None:
    """``{column: value}`` from ``col=value`` folders of ``path`` (the innermost wins); None if one
    is missing."""
    found: dict[str, str] = {}
    for seg in path.split("/")[:-1]:
        key, eq, value = seg.partition("=")
        if eq and key in columns:
            found[key] = unquote(value)
    return found if all(c in found for c in columns) else None


def _select_partitions(
    uri: str, objects: list[SourceObject], pf: PartitionFilter, window: str
) -> list[SourceObject]:
    parsed: dict[str, dt.datetime] = {}
    selected, unpartitioned, seen = [], [], set()
    for obj in objects:
        values = partition_values(obj.path, pf.columns)
        if values is None:
            unpartitioned.append(obj.uri)
            continue
        raw = "/".join(values[c] for c in pf.columns)
        seen.add(raw)
        if raw not in parsed:
            try:
                when = dt.datetime.strptime(raw, pf.format)
            except ValueError as err:
                raise InvalidInputError(
                    f"The 'partition_format' parameter {pf.format!r} must parse every {pf.columns} partition "
                    f"value under {uri}. Got the value {raw!r} in {obj.uri} ({err})."
                ) from err
            parsed[raw] = when if when.tzinfo else when.replace(tzinfo=dt.timezone.utc)
        if pf.start <= parsed[raw] < pf.end:
            obj.partition = values
            selected.append(obj)
    if not selected:
        found = sorted(seen)
        hint = (
            f"partitions found: {found[0]} .. {found[-1]} ({len(found)} in all)"
            if found
            else "no partition found"
        )
        if unpartitioned:
            cols = ", ".join(f"'{c}=...'" for c in pf.columns)
            hint += (
                f"; {len(unpartitioned)} file(s) have no {cols} folder in their path, e.g. {unpartitioned[0]}"
            )
        raise NotFoundError(f"No CSV or Parquet file at {uri}{window}: {hint}")
    return selected


def _format_of(path: str) -> str | None:
    p = path.lower()
    for suffix in _COMPRESSION:
        if p.endswith(suffix):
            p = p[: -len(suffix)]
    if p.endswith((".parquet", ".pq")):
        return "parquet"
    if p.endswith((".csv", ".txt")):
        return "csv"
    return None


# ------------------------------------------------------------------------------------------ reading
def iter_object_batches(
    objects: Sequence[SourceObject],
    fs: Any,
    batch_size: int = 65536,
    verify: Callable[[], None] | None = None,
) -> Iterator[Any]:
    """Read the selected files, in order, as record batches of one schema.

    With several files, their schemas (Parquet footers; the first MiB of each CSV) are unified first,
    widening types where needed (int32 -> int64, int -> float, null -> any); a file whose columns
    cannot take the common type fails naming the file and the column. Partition columns that are
    not in the files (Hive writers leave them out) are added as string columns. ``verify`` runs after
    the last batch (before the snapshot is committed), e.g. to check nothing changed meanwhile.
    """
    import pyarrow as pa

    schema = _unified_schema(objects, fs) if len(objects) > 1 else None
    for obj in objects:
        for batch, file_schema in _read_object(obj, fs, batch_size, schema):
            if schema is None:
                schema = _with_partition_fields(file_schema, objects)
            yield _conform(batch, schema, obj, pa)
    if verify is not None:
        verify()


def verify_unchanged(uri: str, fs: Any, objects: Sequence[SourceObject]) -> None:
    """List ``uri`` again; raise :class:`StorageError` (a retry reads again) if a selected file changed."""
    protocol, path = split_uri(uri)
    now = _list_entries(fs, path, protocol)
    for obj in objects:
        entry = now.get(obj.path)
        if entry is None:
            raise StorageError(
                f"{obj.uri} was deleted while the snapshot was being read; nothing was written."
            )
        current = SourceObject(
            obj.path, obj.uri, int(entry[0].get("size") or 0), obj.format, _fingerprint(entry[0])
        )
        if current.identity() != obj.identity():
            raise StorageError(
                f"{obj.uri} changed while the snapshot was being read (listed as {obj.identity()}, now "
                f"{current.identity()}); nothing was written, a retry reads it again."
            )


def iter_file_batches(uri: str, file_format: str | None = None, fs: Any = None, batch_size: int = 65536):
    """Yield pyarrow batches from a CSV/Parquet file, a folder of them, or a glob, at any fsspec URI."""
    from mlops_provider.core.storage import filesystem_for

    fs = fs or filesystem_for(uri)
    objects = list_source_objects(uri, fs, file_format)
    yield from iter_object_batches(objects, fs, batch_size, verify=lambda: verify_unchanged(uri, fs, objects))


def _with_partition_fields(schema, objects: Sequence[SourceObject]):
    import pyarrow as pa

    names = set(schema.names)
    extra = []
    for obj in objects:
        for col in obj.partition:
            if col not in names:
                names.add(col)
                extra.append(pa.field(col, pa.string()))
    return pa.schema(list(schema) + extra) if extra else schema


def _unified_schema(objects: Sequence[SourceObject], fs: Any):
    import pyarrow as pa

    schemas = [_probe_schema(obj, fs) for obj in objects]
    unified, origin = schemas[0], {f.name: objects[0].uri for f in schemas[0]}
    for obj, schema in zip(objects[1:], schemas[1:], strict=True):
        try:
            unified = pa.unify_schemas([unified, schema], promote_options="permissive")
        except (pa.ArrowTypeError, pa.ArrowInvalid) as err:
            clashes = [
                f"{f.name!r} is {unified.field(f.name).type} in {origin[f.name]} but {f.type} in {obj.uri}"
                for f in schema
                if unified.get_field_index(f.name) >= 0 and not _compatible(unified.field(f.name), f)
            ]
            raise InvalidInputError(
                "The selected files do not share a schema: " + ("; ".join(clashes) or str(err))
            ) from err
        for f in schema:
            origin.setdefault(f.name, obj.uri)
    # a CSV column empty in every probe has no type yet: read it as text rather than fail later
    unified = pa.schema([pa.field(f.name, pa.string()) if pa.types.is_null(f.type) else f for f in unified])
    return _with_partition_fields(unified, objects)


def _compatible(a, b) -> bool:
    import pyarrow as pa

    try:
        pa.unify_schemas([pa.schema([a]), pa.schema([b])], promote_options="permissive")
    except (pa.ArrowTypeError, pa.ArrowInvalid):
        return False
    return True


def _probe_schema(obj: SourceObject, fs: Any):
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    with _open(obj, fs) as f:
        try:
            if obj.format == "parquet":
                return pq.read_schema(f)
            return pacsv.open_csv(f, read_options=pacsv.ReadOptions(block_size=_CSV_PROBE_BLOCK)).schema
        except _NOT_CORRUPT:
            raise
        except (OSError, ValueError) as err:
            raise CorruptArtifactError(f"{obj.uri} could not be read as {obj.format}: {err}") from err


@contextlib.contextmanager
def _open(obj: SourceObject, fs: Any):
    import pyarrow as pa

    try:
        f = fs.open(obj.path, "rb")
    except FileNotFoundError as err:
        raise StorageError(f"{obj.uri} was deleted after it was listed; nothing was written.") from err
    with f:
        codec = next((c for s, c in _COMPRESSION.items() if obj.path.lower().endswith(s)), None)
        if codec and obj.format == "csv":
            with pa.CompressedInputStream(f, codec) as stream:
                yield stream
        else:
            yield f


def _read_object(obj: SourceObject, fs: Any, batch_size: int, schema):
    """(batch, file schema) pairs of one file; CSV columns are parsed straight into ``schema``'s types."""
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    with _open(obj, fs) as f:
        try:
            if obj.format == "parquet":
                pf = pq.ParquetFile(f)
                for b in pf.iter_batches(batch_size=batch_size):
                    yield b, pf.schema_arrow
            else:
                convert = pacsv.ConvertOptions(
                    column_types={fl.name: fl.type for fl in schema} if schema else None
                )
                reader = pacsv.open_csv(
                    f, read_options=pacsv.ReadOptions(block_size=_CSV_BLOCK), convert_options=convert
                )
                for b in reader:
                    yield b, reader.schema
        except FileNotFoundError as err:
            raise StorageError(
                f"{obj.uri} was deleted while it was being read; nothing was written."
            ) from err
        except (StorageError, InvalidInputError, *_NOT_CORRUPT):
            raise
        except (OSError, ValueError) as err:
            raise CorruptArtifactError(f"{obj.uri} could not be read as {obj.format}: {err}") from err


def _conform(batch, schema, obj: SourceObject, pa):
    """``batch`` with ``schema``'s columns in its order: cast, partition values, or nulls when absent."""
    if batch.schema.equals(schema):
        return batch
    n = batch.num_rows
    names = batch.schema.names
    arrays = []
    for f in schema:
        if f.name in names:
            arr = batch.column(names.index(f.name))
            if arr.type != f.type:
                try:
                    arr = arr.cast(f.type)
                except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as err:
                    raise InvalidInputError(
                        f"Column {f.name!r} of {obj.uri} cannot be read as {f.type} (the type it has in the "
                        "other "
                        f"selected files): it is {arr.type} there ({err})."
                    ) from err
        elif f.name in obj.partition:
            arr = pa.array([obj.partition[f.name]] * n, pa.string()).cast(f.type)
        else:
            arr = pa.nulls(n, f.type)
        arrays.append(arr)
    extra = [c for c in names if schema.get_field_index(c) < 0]
    if extra:
        raise InvalidInputError(f"{obj.uri} has column(s) {extra} that the other selected files lack.")
    return pa.RecordBatch.from_arrays(arrays, schema=schema)
