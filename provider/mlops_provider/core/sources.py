"""Where snapshots come from: SQL through any DB-API connection, or CSV/Parquet files at any URI.

Both produce pyarrow record batches for :func:`mlops_provider.core.datasets.write_snapshot`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from mlops_provider.core.errors import CorruptArtifactError, InvalidInputError, NotFoundError

FILE_FORMATS = ("parquet", "csv")


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
                raise InvalidInputError(f"The query returns duplicate column names {dupes}; alias them. Query: {query}")
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


def iter_file_batches(uri: str, file_format: str | None = None, fs: Any = None, batch_size: int = 65536):
    """Yield pyarrow tables from a CSV/Parquet file, a folder of them, or a glob, at any fsspec URI."""
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    from mlops_provider.core.storage import filesystem_for

    fs = fs or filesystem_for(uri)
    path = uri.split("://", 1)[1] if "://" in uri else uri
    if any(ch in path for ch in "*?["):
        files = sorted(fs.glob(path))
    elif fs.isdir(path):
        files = sorted(p for p in fs.find(path) if _format_of(p) is not None)
    elif fs.exists(path):
        files = [path]
    else:
        raise NotFoundError(f"No file at {uri}")
    if not files:
        raise NotFoundError(f"No CSV or Parquet file matches {uri}")
    for p in files:
        fmt = file_format or _format_of(p)
        if fmt not in FILE_FORMATS:
            raise InvalidInputError(
                f"The 'file_format' parameter must be one of {list(FILE_FORMATS)} (or inferable from the "
                f"file name). Got {fmt!r} for {p!r} instead."
            )
        with fs.open(p, "rb") as f:
            try:
                if fmt == "parquet":
                    pf = pq.ParquetFile(f)
                    for b in pf.iter_batches(batch_size=batch_size):
                        yield b
                else:
                    reader = pacsv.open_csv(f, read_options=pacsv.ReadOptions(block_size=1 << 24))
                    for b in reader:
                        yield b
            except (OSError, ValueError) as err:
                raise CorruptArtifactError(f"{p} could not be read as {fmt}: {err}") from err


def _format_of(path: str) -> str | None:
    p = path.lower()
    for suffix in (".gz", ".zst", ".bz2"):
        if p.endswith(suffix):
            p = p[: -len(suffix)]
    if p.endswith((".parquet", ".pq")):
        return "parquet"
    if p.endswith((".csv", ".txt")):
        return "csv"
    return None
