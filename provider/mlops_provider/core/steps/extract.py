"""Extract rows into a versioned dataset snapshot (Parquet + manifest) on the artifact store.

Three kinds of source:

* ``"sql"``: a query through a DB-API connection (a SQLAlchemy engine or connection, a DB-API
  connection such as ``sqlite3.connect(...)``, a function returning one, or a :class:`SqlSource`);
* ``"bigquery"``: a query job through the google provider's ``BigQueryHook`` (:class:`BigQuerySource`);
* ``"files"``: the CSV/Parquet files at ``params.source_uri`` (a file, a folder or prefix, a glob),
  optionally narrowed to the Hive-style partitions of a time interval (:class:`FileSource` carries
  the filesystem when the URI alone does not give the credentials).

A notebook::

    snap = extract_snapshot(
        ExtractParams("churn", sql="SELECT * FROM customers"),
        source=sqlalchemy.create_engine("postgresql://..."),
        store=ArtifactStore("s3://bucket/mlops"),
        run=RunInfo.local("extract"),
    )
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from mlops_provider.core.errors import InvalidInputError, InvalidParameterError
from mlops_provider.core.params import (
    Constraint,
    Interval,
    Name,
    Params,
    Text,
    parameter_error,
)
from mlops_provider.core.steps.run import RunInfo

log = logging.getLogger(__name__)

SOURCE_KINDS = ("sql", "bigquery", "files")
FILE_BATCH_ROWS = 65536
_XCOM_DROP = ("source_objects",)  # the full object list lives in the manifest, not in XCom
_PARTITION_FORMAT_RULE = (
    "a strptime format such as '%Y-%m' or '%Y-%m-%d' (with several partition "
    "columns, one part per column joined by '/', e.g. '%Y/%m')"
)


class PartitionColumns(Constraint):
    """One Hive partition folder name, or a non-empty list of them."""

    def is_satisfied_by(self, value: Any) -> bool:
        cols = [value] if isinstance(value, str) else value
        return (
            isinstance(cols, (list, tuple))
            and bool(cols)
            and all(isinstance(c, str) and c.strip() and not set(c) & set("=/") for c in cols)
        )

    def __str__(self) -> str:
        return "a Hive partition folder name such as 'month' (for .../month=2013-07/...) or a list of them"


def _strptime_format(fmt: Any, columns: int) -> bool:
    probe = dt.datetime(2013, 7, 1, 13, 45, 10)
    try:
        ok = isinstance(fmt, str) and "%" in fmt and bool(dt.datetime.strptime(probe.strftime(fmt), fmt))
    except ValueError:
        return False
    return ok and fmt.count("/") >= columns - 1


@dataclass(frozen=True)
class ExtractParams(Params):
    """:param dataset_name: snapshot family name (``datasets/<name>/<sha256>/``).
    :param sql: a query (for a ``"sql"`` or ``"bigquery"`` source). :param source_uri: instead,
    CSV/Parquet file(s) at any fsspec URI: a file, a folder or prefix, or a glob.
    :param source_kind: ``"sql"``, ``"bigquery"`` or ``"files"``; None: inferred (``"files"`` with
    ``source_uri``, else from the source given to :func:`extract_snapshot`).
    :param file_format: ``"csv"`` or ``"parquet"``; None: inferred from the file names.
    :param partition_column: Hive partition folder name(s) selecting the partitions of the interval.
    :param partition_format: ``strptime`` format of the partition value (several columns: their
    values joined by ``/``). :param bigquery_config: more fields of the BigQuery query job
    configuration. :param bigquery_storage_api: read BigQuery results through the Storage Read API.
    :param min_rows: fewer rows fail the step and write nothing. :param fetch_batch_size: rows per
    DB-API ``fetchmany``."""

    _step: ClassVar[str] = "extract_snapshot"
    _parameter_constraints: ClassVar = {
        "dataset_name": [Name()],
        "sql": [Text("a non-empty SQL string")],
        "source_uri": [Text("a file, folder or glob URI")],
        "partition_column": [PartitionColumns()],
        "min_rows": [Interval(int, 1, None)],
        "fetch_batch_size": [Interval(int, 1, None)],
    }

    dataset_name: str
    sql: str | None = None
    source_uri: str | None = None
    source_kind: Literal["sql", "bigquery", "files"] | None = None
    file_format: Literal["parquet", "csv"] | None = None
    partition_column: str | list[str] | None = None
    partition_format: str = "%Y-%m-%d"
    bigquery_config: dict[str, Any] | None = None
    bigquery_storage_api: bool = True
    min_rows: int = 1
    fetch_batch_size: int = 50_000

    def validate(self, caller: str) -> None:
        super().validate(caller)
        if (self.sql is None) == (self.source_uri is None):
            got = {"sql": self.sql, "source_uri": self.source_uri}
            raise parameter_error("sql / source_uri", "exactly one of the two", got, caller)
        kind, files = self.source_kind, self.source_uri is not None
        if files and kind not in (None, "files"):
            raise parameter_error("source_kind", "'files' or None when 'source_uri' is given", kind, caller)
        if not files and kind == "files":
            raise parameter_error(
                "source_uri", "a file, folder or glob URI when source_kind='files'", None, caller
            )
        if not files and self.partition_column is not None:
            expected = "None unless 'source_uri' is given (it selects file partitions)"
            raise parameter_error("partition_column", expected, self.partition_column, caller)
        if self.bigquery_config is not None and (files or kind == "sql"):
            raise parameter_error(
                "bigquery_config", "None unless the source is BigQuery", self.bigquery_config, caller
            )
        if self.partition_column is not None and not _strptime_format(
            self.partition_format, len(self.partition_columns)
        ):
            raise parameter_error("partition_format", _PARTITION_FORMAT_RULE, self.partition_format, caller)

    @property
    def partition_columns(self) -> list[str]:
        cols = self.partition_column
        return [] if cols is None else [cols.strip()] if isinstance(cols, str) else [c.strip() for c in cols]


# --------------------------------------------------------------------------- sources
@dataclass
class SqlSource:
    """A SQL database. ``connect()`` opens a DB-API connection (closed after the read); ``label``
    and ``uri`` name it in the manifest (``source = "sql:<label> (<uri>)"``) and in lineage; ``extra``
    goes into the manifest's ``extra``."""

    connect: Callable[[], Any]
    label: str
    uri: str
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class BigQuerySource:
    """A ``BigQueryHook`` (google provider): the query job runs in its project and location."""

    hook: Any
    label: str = "bigquery"


@dataclass
class FileSource:
    """The filesystem to list and read ``source_uri`` with (None: fsspec's default for the URI);
    ``conn_id`` is recorded in the manifest's ``source_selection``."""

    fs: Any = None
    conn_id: str | None = None


class _Borrowed:
    """A connection the caller owns: the read uses it and leaves it open."""

    def __init__(self, conn: Any) -> None:
        self._conn = conn

    def cursor(self):
        return self._conn.cursor()

    def close(self) -> None:
        pass


def sql_source(connection: Any, label: str | None = None) -> SqlSource:
    """A :class:`SqlSource` from a SQLAlchemy engine or connection, a DB-API connection, or a
    function returning a new DB-API connection. A connection passed in is left open."""
    url = getattr(connection, "url", None) or getattr(getattr(connection, "engine", None), "url", None)
    if url is not None and hasattr(url, "get_backend_name"):  # SQLAlchemy
        name, uri = (
            url.get_backend_name(),
            f"{url.get_backend_name()}://{url.host or ''}/{url.database or ''}",
        )
        if hasattr(connection, "raw_connection"):  # an Engine: a pooled connection per read
            return SqlSource(connection.raw_connection, label or name, uri, {"driver": url.get_driver_name()})
        borrowed = _Borrowed(connection.connection)  # a Connection: its DB-API connection, kept open
        return SqlSource(lambda: borrowed, label or name, uri, {"driver": url.get_driver_name()})
    if hasattr(connection, "cursor"):
        module = type(connection).__module__.split(".")[0]
        borrowed = _Borrowed(connection)
        return SqlSource(lambda: borrowed, label or module, f"{module}://", {"driver": module})
    if callable(connection):
        name = label or getattr(connection, "__name__", "dbapi")
        return SqlSource(connection, name, f"{name}://", {})
    raise InvalidParameterError(
        "The 'source' argument of extract_snapshot must be a SQLAlchemy engine or connection, a DB-API "
        f"connection or a function returning one for a SQL extract. Got {connection!r} instead."
    )


def _resolve(params: ExtractParams, source: Any) -> tuple[str, Any]:
    """(source kind, the source as a SqlSource / BigQuerySource / FileSource); no I/O."""
    if params.source_uri is not None:
        if isinstance(source, FileSource):
            return "files", source
        return "files", FileSource(fs=source)  # None or an fsspec filesystem
    is_bigquery = isinstance(source, BigQuerySource) or hasattr(source, "insert_job")
    kind = params.source_kind or ("bigquery" if is_bigquery else "sql")
    if kind == "bigquery":
        if isinstance(source, BigQuerySource):
            return kind, source
        if hasattr(source, "insert_job"):
            return kind, BigQuerySource(source, getattr(source, "gcp_conn_id", None) or "bigquery")
        raise InvalidParameterError(
            "The 'source' argument of extract_snapshot must be a BigQueryHook or a BigQuerySource for a "
            f"BigQuery extract. Got {source!r} instead."
        )
    return kind, source if isinstance(source, SqlSource) else sql_source(source)


def _run_interval(run: RunInfo) -> tuple[Any, Any]:
    def parse(value: Any) -> Any:
        if value is None or isinstance(value, dt.datetime):
            return value
        text = str(value).strip()
        return None if text in ("", "None") else dt.datetime.fromisoformat(text)

    return parse(run.data_interval_start), parse(run.data_interval_end)


# --------------------------------------------------------------------------- result
@dataclass
class SnapshotResult:
    snapshot: Any  # core.datasets.DatasetSnapshot
    kind: str
    inputs: list[Any]
    sql: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def uri(self) -> str:
        return self.snapshot.uri

    def to_dict(self) -> dict[str, Any]:
        """The snapshot's record (``extra.source_objects`` only in the manifest: XCom stays small)."""
        out = self.snapshot.to_dict()
        out["extra"] = {k: v for k, v in out["extra"].items() if k not in _XCOM_DROP}
        return out

    def lineage(self) -> dict[str, Any]:
        snap = self.snapshot
        record: dict[str, Any] = {"inputs": self.inputs}
        if self.sql is not None:
            record["sql"] = self.sql
        record.update(
            outputs=[(snap.data_uri, snap.columns)],
            step="extract",
            details={**self.details, "rows": snap.rows, "sha256": snap.sha256, "reused": snap.reused},
        )
        return record


# --------------------------------------------------------------------------- the step
def extract_snapshot(
    params: ExtractParams,
    *,
    store,
    run: RunInfo,
    source: Any = None,
    interval: tuple[Any, Any] | None = None,
    caller: str | None = None,
) -> SnapshotResult:
    """Read ``params.sql`` through ``source`` (or the files at ``params.source_uri``) into the
    snapshot ``datasets/<dataset_name>/<sha256>/`` on ``store``; identical rows reuse the existing
    snapshot (``reused``). Fewer than ``min_rows`` rows, or a file changed while it was read, write
    nothing.

    ``interval``: the ``[start, end)`` whose partitions ``partition_column`` selects (default: the
    run's data interval). ``caller`` names the step in errors (default ``extract_snapshot``)."""
    caller = caller or ExtractParams._step
    kind, src = _resolve(params, source)
    if params.source_kind != kind:  # validated again: bigquery_config needs BigQuery
        params = ExtractParams.build(caller, **{**params.to_dict(), "source_kind": kind})
    extra = {
        "dag_id": run.dag_id,
        "run_id": run.run_id,
        "data_interval_start": run.data_interval_start,
        "data_interval_end": run.data_interval_end,
        "source_kind": kind,
    }
    if kind == "files":
        result = _extract_files(params, src, store, interval or _run_interval(run), extra, caller)
    elif kind == "bigquery":
        result = _extract_bigquery(params, src, store, run, extra)
    else:
        result = _extract_sql(params, src, store, extra)
    snap = result.snapshot
    log.info(
        "Snapshot %s: %d rows, sha256 %s%s",
        snap.uri,
        snap.rows,
        snap.sha256,
        " (identical data: reused)" if snap.reused else "",
    )
    return result


def _extract_sql(params: ExtractParams, src: SqlSource, store, extra: dict[str, Any]) -> SnapshotResult:
    from mlops_provider.core.datasets import write_snapshot
    from mlops_provider.core.sources import iter_sql_batches

    source = f"sql:{src.label} ({src.uri})"
    log.info("Extracting %r from %s", params.dataset_name, source)
    extra.update(src.extra)
    batches = iter_sql_batches(src.connect, params.sql, params.fetch_batch_size)
    snap = write_snapshot(
        store,
        params.dataset_name,
        batches,
        source=source,
        query=params.sql,
        min_rows=params.min_rows,
        extra=extra,
    )
    return SnapshotResult(snap, "sql", inputs=[src.uri], sql=params.sql)


def _extract_bigquery(
    params: ExtractParams, src: BigQuerySource, store, run: RunInfo, extra: dict[str, Any]
) -> SnapshotResult:
    import uuid

    from mlops_provider.core.datasets import write_snapshot
    from mlops_provider.integrations.bigquery.source import job_id_for, run_query

    job_id = job_id_for(run.dag_id, run.task_id, uuid.uuid4().hex[:12])
    labels = {"airflow-dag": run.dag_id, "airflow-task": run.task_id, "mlops-dataset": params.dataset_name}
    log.info("Extracting %r from BigQuery (%s) as job %s", params.dataset_name, src.label, job_id)
    job, batches = run_query(
        src.hook,
        params.sql,
        job_id=job_id,
        job_config=dict(params.bigquery_config) if params.bigquery_config is not None else None,
        labels=labels,
        use_storage_api=params.bigquery_storage_api,
    )
    log.info(
        "BigQuery job %s in %s (%s): %s bytes processed, %s billed%s",
        job["job_id"],
        job["project"],
        job["location"],
        job["total_bytes_processed"],
        job["total_bytes_billed"],
        " (cache hit)" if job["cache_hit"] else "",
    )
    extra.update(conn_id=src.label, bigquery_job=job)
    source = f"bigquery:{src.label} ({job['project']})"
    snap = write_snapshot(
        store,
        params.dataset_name,
        batches,
        source=source,
        query=params.sql,
        min_rows=params.min_rows,
        extra=extra,
    )
    if snap.reused:
        log.info(
            "Job %s returned the rows of the existing snapshot (its manifest names job %s)",
            job["job_id"],
            snap.extra.get("bigquery_job", {}).get("job_id"),
        )
    return SnapshotResult(
        snap,
        "bigquery",
        inputs=[f"bigquery:{t}" for t in job["referenced_tables"]] or [source],
        sql=params.sql,
        details={"bigquery_job_id": job["job_id"], "total_bytes_billed": job["total_bytes_billed"]},
    )


def _partition_filter(params: ExtractParams, interval: tuple[Any, Any], caller: str):
    from mlops_provider.core.sources import PartitionFilter

    if params.partition_column is None:
        return None
    start, end = interval
    if start is None or end is None:
        raise InvalidInputError(
            f"The 'partition_column' parameter of {caller} selects the partitions of the run's data "
            f"interval, but this run has none (data_interval_start={start!r}, data_interval_end={end!r}). "
            f"Template 'source_uri' instead, or schedule the DAG with a timetable that has data intervals."
        )

    def aware(value):
        return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)

    return PartitionFilter(
        columns=params.partition_columns, format=params.partition_format, start=aware(start), end=aware(end)
    )


def _extract_files(
    params: ExtractParams,
    src: FileSource,
    store,
    interval: tuple[Any, Any],
    extra: dict[str, Any],
    caller: str,
) -> SnapshotResult:
    from mlops_provider.core.datasets import write_snapshot
    from mlops_provider.core.sources import iter_object_batches, list_source_objects, verify_unchanged
    from mlops_provider.core.storage import filesystem_for

    uri = params.source_uri.strip()
    partition = _partition_filter(params, interval, caller)
    fs = src.fs if src.fs is not None else filesystem_for(uri)
    objects = list_source_objects(uri, fs, params.file_format, partition=partition, interval=interval)
    total = sum(o.size for o in objects)
    log.info("Extracting %r from %d file(s), %d bytes, at %s", params.dataset_name, len(objects), total, uri)
    extra.update(
        source_selection={
            "uri": uri,
            "conn_id": src.conn_id,
            "file_format": params.file_format,
            "partition_column": params.partition_column,
            "partition_format": params.partition_format if partition else None,
            "partitions": sorted({"/".join(o.partition[c] for c in partition.columns) for o in objects})
            if partition
            else None,
        },
        source_object_count=len(objects),
        source_bytes=total,
        source_objects=[o.to_dict() for o in objects],
    )
    batches = iter_object_batches(
        objects, fs, FILE_BATCH_ROWS, verify=lambda: verify_unchanged(uri, fs, objects)
    )
    snap = write_snapshot(
        store, params.dataset_name, batches, source=uri, min_rows=params.min_rows, extra=extra
    )
    folders = sorted({o.uri.rsplit("/", 1)[0] for o in objects})
    return SnapshotResult(
        snap,
        "files",
        inputs=folders if len(folders) <= 100 else [uri],
        details={"files": len(objects), "bytes": total},
    )
