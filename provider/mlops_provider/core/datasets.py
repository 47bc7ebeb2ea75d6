"""Versioned dataset snapshots: Parquet + ``manifest.json`` under a content-addressed key.

Layout under the artifact root::

    datasets/<name>/<sha256>/data.parquet
    datasets/<name>/<sha256>/manifest.json     (written last: the commit marker)

The sha256 is that of the Parquet file, written with fixed settings, so extracting the same rows
again yields the same key and the existing snapshot is reused.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

from mlops_provider.core.errors import (
    CorruptArtifactError,
    EmptyDatasetError,
    IntegrityError,
    NotFoundError,
)
from mlops_provider.core.names import check_name
from mlops_provider.core.storage import ArtifactStore

MANIFEST = "manifest.json"
DATA_FILE = "data.parquet"


@dataclass
class DatasetSnapshot:
    uri: str
    name: str
    sha256: str
    rows: int
    columns: list[dict[str, str]]
    source: str
    query: str | None
    created_at: str
    size_bytes: int = 0
    reused: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def data_uri(self) -> str:
        return f"{self.uri}/{DATA_FILE}"

    @property
    def column_names(self) -> list[str]:
        return [c["name"] for c in self.columns]

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["data_uri"] = self.data_uri
        return d


def _schema_list(schema) -> list[dict[str, str]]:
    return [{"name": f.name, "type": str(f.type)} for f in schema]


def write_snapshot(
    store: ArtifactStore,
    name: str,
    batches: Iterable[Any],
    *,
    source: str,
    query: str | None = None,
    min_rows: int = 1,
    extra: dict[str, Any] | None = None,
) -> DatasetSnapshot:
    """Write record batches (pyarrow ``RecordBatch``/``Table``) as a snapshot; reuse an identical one.

    Raises :class:`EmptyDatasetError` (and leaves nothing behind) when fewer than ``min_rows``
    rows arrive.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    check_name(name, "dataset_name", "write_snapshot")
    store.sweep_temporaries(f"datasets/{name}/_staging")  # what a killed extract left there
    staging = f"datasets/{name}/_staging/{uuid.uuid4().hex}.parquet"
    rows = 0
    schema = None
    try:
        with store.open_atomic(staging) as sink:
            writer = None
            try:
                for batch in batches:
                    if isinstance(batch, pa.Table):
                        tables = [batch]
                    else:
                        tables = [pa.Table.from_batches([batch])]
                    for t in tables:
                        if writer is None:
                            schema = t.schema
                            writer = pq.ParquetWriter(
                                sink, schema, compression="zstd", write_statistics=True, store_schema=True
                            )
                        elif t.schema != schema:
                            t = t.cast(schema)
                        if t.num_rows:
                            writer.write_table(t, row_group_size=128 * 1024)
                            rows += t.num_rows
            except BaseException:
                if writer is not None:
                    with contextlib.suppress(Exception):
                        writer.close()
                raise
            if writer is None:
                raise EmptyDatasetError(
                    f"Extract for dataset {name!r} returned no data from {source}; expected at least "
                    f"{min_rows} row(s)." + (f" Query: {query}" if query else "")
                )
            writer.close()
            if rows < min_rows:
                raise EmptyDatasetError(
                    f"Extract for dataset {name!r} returned {rows} row(s) from {source}; expected at least "
                    f"{min_rows}." + (f" Query: {query}" if query else "")
                )
        sha, size = sink.sha256, sink.size
    except BaseException:
        store.delete(staging)
        raise

    key = f"datasets/{name}/{sha}"
    if store.exists(f"{key}/{MANIFEST}"):
        store.delete(staging)
        _mark_used(store, f"{key}/{MANIFEST}")
        snap = read_manifest(store, store.uri(key))
        snap.reused = True
        return snap
    store.move(staging, f"{key}/{DATA_FILE}")
    snap = DatasetSnapshot(
        uri=store.uri(key),
        name=name,
        sha256=sha,
        rows=rows,
        columns=_schema_list(schema),
        source=source,
        query=query,
        created_at=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        size_bytes=size,
        extra=dict(extra or {}),
    )
    manifest = snap.to_dict()
    manifest.pop("reused")
    store.write_json(f"{key}/{MANIFEST}", manifest)
    return snap


def _mark_used(store: ArtifactStore, manifest_key: str) -> None:
    """Give a reused snapshot's manifest a fresh modification time, so retention (``mlops gc``)
    sees the snapshot as in use by the run that just reused it (same bytes, atomic rewrite)."""
    import os

    with contextlib.suppress(OSError):
        if store.is_local:
            os.utime(store.path(manifest_key))
        else:
            store.write_bytes(manifest_key, store.read_bytes(manifest_key))


def read_manifest(store: ArtifactStore, uri: str) -> DatasetSnapshot:
    key = store.key_of(uri)
    if key.endswith(DATA_FILE):
        key = key[: -len(DATA_FILE)].rstrip("/")
    if not store.exists(f"{key}/{MANIFEST}"):
        raise NotFoundError(
            f"No dataset snapshot at {store.uri(key)} (no {MANIFEST}: missing or not committed)"
        )
    m = store.read_json(f"{key}/{MANIFEST}")
    m.pop("data_uri", None)
    try:
        return DatasetSnapshot(**m)
    except TypeError as err:
        raise CorruptArtifactError(f"{store.uri(key)}/{MANIFEST} is not a snapshot manifest: {err}") from err


def _parquet_file(store: ArtifactStore, key: str):
    import pyarrow.parquet as pq

    f = store.open_read(key)
    try:
        return pq.ParquetFile(f), f
    except Exception as err:  # pyarrow raises ArrowInvalid / OSError on a corrupt footer
        f.close()
        raise CorruptArtifactError(f"{store.uri(key)} is not a readable Parquet file: {err}") from err


def read_table(store: ArtifactStore, uri: str, columns: list[str] | None = None):
    """The whole snapshot (or a Parquet file given by URI inside the store) as a pyarrow Table."""
    key = _data_key(store, uri)
    pf, f = _parquet_file(store, key)
    with f:
        try:
            return pf.read(columns=columns)
        except Exception as err:
            raise CorruptArtifactError(f"{store.uri(key)} could not be read as Parquet: {err}") from err


def read_dataframe(store: ArtifactStore, uri: str, columns: list[str] | None = None):
    return read_table(store, uri, columns).to_pandas()


def iter_batches(
    store: ArtifactStore, uri: str, batch_size: int = 65536, columns: list[str] | None = None
) -> Iterator[Any]:
    """Stream a snapshot or Parquet file in record batches (bounded memory)."""
    key = _data_key(store, uri)
    pf, f = _parquet_file(store, key)
    with f:
        try:
            yield from pf.iter_batches(batch_size=batch_size, columns=columns)
        except Exception as err:
            if isinstance(err, (GeneratorExit, KeyboardInterrupt)):
                raise
            raise CorruptArtifactError(f"{store.uri(key)} could not be read as Parquet: {err}") from err


def read_verified_dataframe(store: ArtifactStore, uri: str, expected_sha256: str, what: str = "snapshot"):
    """The rows of the snapshot at ``uri`` as a DataFrame, once its Parquet file's sha256 is
    ``expected_sha256`` (what a model version recorded). The bytes checked are the bytes parsed (read
    once); any other sha256 raises :class:`IntegrityError` naming the snapshot, expected and got."""
    import io

    import pyarrow.parquet as pq

    from mlops_provider.core.serialization import sha256_bytes

    key = _data_key(store, uri)
    data = store.read_bytes(key)
    got = sha256_bytes(data)
    if got != expected_sha256:
        raise IntegrityError(
            f"The {what} {store.uri(key)} has sha256 {got}, but {expected_sha256} was recorded; "
            "its bytes changed since then, so it is not the data the version was made from."
        )
    try:
        return pq.read_table(io.BytesIO(data)).to_pandas()
    except Exception as err:
        raise CorruptArtifactError(f"{store.uri(key)} could not be read as Parquet: {err}") from err


def _data_key(store: ArtifactStore, uri: str) -> str:
    key = store.key_of(uri)
    if store.exists(f"{key}/{MANIFEST}"):
        return f"{key}/{DATA_FILE}"
    if not store.exists(key):
        raise NotFoundError(f"No dataset or Parquet file at {store.uri(key)}")
    return key
