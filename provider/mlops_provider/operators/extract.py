"""ExtractOperator: SQL through any Airflow DB-API connection, a BigQuery query job, or CSV/Parquet
files on any store (S3, GCS, local...), into a content-addressed dataset snapshot."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from mlops_provider.operators._base import MlopsBaseOperator

if TYPE_CHECKING:
    from airflow.sdk import Context

SOURCE_KINDS = ("sql", "bigquery", "files")
BIGQUERY_CONN_TYPES = ("google_cloud_platform", "gcpbigquery")
# the connection types that can open each object store (others are a mistake worth naming)
STORE_CONN_TYPES = {
    "s3": ("aws",),
    "s3a": ("aws",),
    "gs": ("google_cloud_platform",),
    "gcs": ("google_cloud_platform",),
}
FILE_BATCH_ROWS = 65536
_XCOM_DROP = ("source_objects",)  # the full object list lives in the manifest, not in XCom


class ExtractOperator(MlopsBaseOperator):
    """Extract rows into a versioned snapshot (Parquet + manifest.json) on the artifact store.

    One of three sources (``source_kind``; inferred when omitted):

    * ``"sql"``: ``sql`` run through the common-sql ``DbApiHook`` of ``conn_id`` (Postgres, MySQL,
      SQLite, Redshift, Athena, Snowflake, Trino...).
    * ``"bigquery"``: ``sql`` run as a BigQuery query job through the google provider's
      ``BigQueryHook`` (chosen by default when ``conn_id`` is a ``google_cloud_platform``
      connection). The manifest records the job: ``extra.bigquery_job`` = ``job_id``, ``project``,
      ``location``, ``total_bytes_processed``, ``total_bytes_billed``, ``cache_hit``,
      ``referenced_tables``...
    * ``"files"``: the CSV/Parquet files at ``source_uri`` (when it is given): a file, a folder or
      prefix (``s3://bkt/flights/``), or a glob (``gs://bkt/flights/month=2013-0[6-8]/*.parquet``).
      ``source_uri`` is templated, so ``s3://bkt/flights/date={{ ds }}/`` reads one partition. To read
      every Hive-style partition of the run's data interval, give ``partition_column`` (and
      ``partition_format``): with ``partition_column="month", partition_format="%Y-%m"`` a run for
      ``[2013-07-01, 2013-08-01)`` reads exactly ``.../month=2013-07/...``; a partition is selected
      when its value (parsed with the format, UTC unless it has a zone) is >= ``data_interval_start``
      and < ``data_interval_end``. Partition columns absent from the files are added as text
      columns. The manifest records every file read with its size and etag / generation
      (``extra.source_objects``) and the selection (``extra.source_selection``); a file changed
      while it was read fails the try (and nothing is written) so a retry reads it again.

    :param dataset_name: snapshot family name (``datasets/<name>/<sha256>/``).
    :param sql: a query (templated; ``{{ data_interval_start }}`` windows; a ``.sql`` file works too).
    :param conn_id: the Airflow connection for ``sql`` (for BigQuery default ``google_cloud_default``).
    :param hook_params: keyword arguments for the connection's hook (e.g. ``{"location": "EU"}`` for
        BigQuery, ``{"schema": "analytics"}`` for some DB-API hooks).
    :param bigquery_config: more fields of the BigQuery query job configuration, e.g.
        ``{"maximumBytesBilled": "10000000000"}`` or ``{"queryParameters": [...]}``.
    :param bigquery_storage_api: read BigQuery results through the Storage Read API (faster, needs
        ``bigquery.readsessions.create``); ``False`` pages through the REST API.
    :param source_uri: instead of ``sql``: CSV/Parquet file(s) at any fsspec URI (templated).
    :param source_conn_id: Airflow connection for ``source_uri`` on an object store (an ``aws``
        connection for ``s3://``, a ``google_cloud_platform`` one for ``gs://``); applied through
        ``ObjectStoragePath``, so credentials stay in the connection.
    :param file_format: ``"csv"`` or ``"parquet"``; inferred from file names if omitted.
    :param partition_column: Hive partition folder name(s) selecting the data interval's partitions.
    :param partition_format: ``strptime`` format of the partition value (default ``"%Y-%m-%d"``);
        with several columns, their values joined by ``/`` (``["year", "month"]`` and ``"%Y/%m"``).
    :param source_kind: ``"sql"``, ``"bigquery"`` or ``"files"``; inferred if omitted.
    :param min_rows: fewer rows than this fails the task and writes nothing.
    :return: the snapshot's ``to_dict()``: ``uri``, ``sha256``, ``rows``, ``columns``, ``reused``...
        (``extra.source_objects`` only in the manifest; XCom keeps its count and total bytes).
    """

    template_fields: Sequence[str] = ("dataset_name", "sql", "source_uri", "artifact_root")
    template_ext: Sequence[str] = (".sql",)
    template_fields_renderers = {"sql": "sql"}
    ui_color = "#d6ecf3"

    def __init__(
        self,
        *,
        dataset_name: str,
        sql: str | None = None,
        conn_id: str | None = None,
        source_uri: str | None = None,
        source_conn_id: str | None = None,
        file_format: str | None = None,
        partition_column: str | list[str] | None = None,
        partition_format: str = "%Y-%m-%d",
        source_kind: str | None = None,
        hook_params: dict[str, Any] | None = None,
        bigquery_config: dict[str, Any] | None = None,
        bigquery_storage_api: bool = True,
        min_rows: int = 1,
        fetch_batch_size: int = 50_000,
        artifact_root: str | None = None,
        **kwargs: Any,
    ):
        super().__init__(artifact_root=artifact_root, **kwargs)
        self.dataset_name = dataset_name
        self.sql = sql
        self.conn_id = conn_id
        self.source_uri = source_uri
        self.source_conn_id = source_conn_id
        self.file_format = file_format
        self.partition_column = partition_column
        self.partition_format = partition_format
        self.source_kind = source_kind
        self.hook_params = hook_params
        self.bigquery_config = bigquery_config
        self.bigquery_storage_api = bigquery_storage_api
        self.min_rows = min_rows
        self.fetch_batch_size = fetch_batch_size

    # ------------------------------------------------------------------ run
    def execute_step(self, context: Context) -> dict[str, Any]:
        from mlops_provider.core.names import check_name

        check_name(self.dataset_name, "dataset_name", self.owner_name())
        if (self.sql is None) == (self.source_uri is None):
            raise self.param_error(
                "sql / source_uri", "exactly one of the two", {"sql": self.sql, "source_uri": self.source_uri}
            )
        if isinstance(self.min_rows, bool) or not isinstance(self.min_rows, int) or self.min_rows < 1:
            raise self.param_error("min_rows", "an int >= 1", self.min_rows)
        kind, conn = self._kind()
        if kind != "files" and self.partition_column is not None:
            raise self.param_error(
                "partition_column",
                "None unless 'source_uri' is given (it selects file partitions)",
                self.partition_column,
            )
        if kind != "bigquery" and self.bigquery_config is not None:
            raise self.param_error(
                "bigquery_config", "None unless the source is BigQuery", self.bigquery_config
            )
        store = self.store()
        extra = {
            "dag_id": context["ti"].dag_id,
            "run_id": context["ti"].run_id,
            "data_interval_start": str(context.get("data_interval_start")),
            "data_interval_end": str(context.get("data_interval_end")),
            "source_kind": kind,
        }
        if kind == "files":
            snap = self._extract_files(store, context, extra)
        elif kind == "bigquery":
            snap = self._extract_bigquery(store, context, extra)
        else:
            snap = self._extract_sql(store, conn, extra)
        self.lineage_record.update(
            outputs=[(snap.data_uri, snap.columns)],
            step="extract",
            details={
                **self.lineage_record.get("details", {}),
                "rows": snap.rows,
                "sha256": snap.sha256,
                "reused": snap.reused,
            },
        )
        self.log.info(
            "Snapshot %s: %d rows, sha256 %s%s",
            snap.uri,
            snap.rows,
            snap.sha256,
            " (identical data: reused)" if snap.reused else "",
        )
        result = snap.to_dict()
        result["extra"] = {k: v for k, v in result["extra"].items() if k not in _XCOM_DROP}
        return result

    def _kind(self):
        """(source kind, the SQL connection or None)."""
        kind = self.source_kind
        if kind is not None and kind not in SOURCE_KINDS:
            raise self.param_error("source_kind", f"one of {list(SOURCE_KINDS)} or None (inferred)", kind)
        if self.source_uri is not None:
            if kind not in (None, "files"):
                raise self.param_error("source_kind", "'files' or None when 'source_uri' is given", kind)
            return "files", None
        if kind == "files":
            raise self.param_error(
                "source_uri", "a file, folder or glob URI when source_kind='files'", self.source_uri
            )
        if kind == "bigquery":
            return "bigquery", None
        if not self.conn_id:
            raise self.param_error("conn_id", "an Airflow connection id when 'sql' is given", self.conn_id)
        from airflow.sdk.bases.hook import BaseHook

        conn = BaseHook.get_connection(self.conn_id)
        if kind is None and conn.conn_type in BIGQUERY_CONN_TYPES:
            return "bigquery", conn
        return "sql", conn

    # ------------------------------------------------------------------ SQL (common-sql DbApiHook)
    def _extract_sql(self, store, conn, extra):
        from airflow.providers.common.sql.hooks.sql import DbApiHook

        from mlops_provider.core.datasets import write_snapshot
        from mlops_provider.core.sources import iter_sql_batches

        params = self.as_dict(self.hook_params, "hook_params") or {}
        try:
            hook = conn.get_hook(hook_params=params)
        except TypeError as err:
            raise self.param_error(
                "hook_params", f"keyword arguments the {conn.conn_type!r} hook accepts ({err})", params
            ) from err
        if not isinstance(hook, DbApiHook):
            raise self.param_error(
                "conn_id",
                "a connection whose hook is a common-sql DbApiHook (Postgres, MySQL, SQLite, Redshift, Athena, "
                "Snowflake, Trino...; for BigQuery source_kind='bigquery')",
                f"{self.conn_id!r} of type {conn.conn_type!r} ({type(hook).__name__})",
            )
        source_uri = f"{conn.conn_type}://{conn.host or ''}/{conn.schema or ''}"
        source = f"sql:{self.conn_id} ({source_uri})"
        self.log.info("Extracting %r from %s through %s", self.dataset_name, source, type(hook).__name__)
        extra.update(conn_id=self.conn_id, conn_type=conn.conn_type, hook=type(hook).__name__)
        batches = iter_sql_batches(hook.get_conn, self.sql, self.fetch_batch_size)
        snap = write_snapshot(
            store,
            self.dataset_name,
            batches,
            source=source,
            query=self.sql,
            min_rows=self.min_rows,
            extra=extra,
        )
        self.lineage_record = {"inputs": [source_uri], "sql": self.sql}
        return snap

    # ------------------------------------------------------------------ BigQuery
    def _extract_bigquery(self, store, context, extra):
        import uuid

        from mlops_provider.core.datasets import write_snapshot
        from mlops_provider.core.errors import InvalidInputError
        from mlops_provider.integrations.bigquery.source import job_id_for, run_query

        try:
            from airflow.providers.google.cloud.hooks.bigquery import BigQueryHook
        except ImportError as err:
            raise InvalidInputError(
                "A BigQuery source needs the google provider: pip install 'airflow-provider-mlops[google]' "
                f"({err})"
            ) from err
        conn_id = self.conn_id or "google_cloud_default"
        params = {"use_legacy_sql": False, **(self.as_dict(self.hook_params, "hook_params") or {})}
        job_config = self.as_dict(self.bigquery_config, "bigquery_config")
        try:
            hook = BigQueryHook(gcp_conn_id=conn_id, **params)
        except TypeError as err:
            raise self.param_error(
                "hook_params", f"keyword arguments BigQueryHook accepts ({err})", params
            ) from err
        ti = context["ti"]
        job_id = job_id_for(ti.dag_id, ti.task_id, uuid.uuid4().hex[:12])
        labels = {"airflow-dag": ti.dag_id, "airflow-task": ti.task_id, "mlops-dataset": self.dataset_name}
        self.log.info(
            "Extracting %r from BigQuery (connection %s) as job %s", self.dataset_name, conn_id, job_id
        )
        job, batches = run_query(
            hook,
            self.sql,
            job_id=job_id,
            job_config=job_config,
            labels=labels,
            use_storage_api=bool(self.bigquery_storage_api),
        )
        self.log.info(
            "BigQuery job %s in %s (%s): %s bytes processed, %s billed%s",
            job["job_id"],
            job["project"],
            job["location"],
            job["total_bytes_processed"],
            job["total_bytes_billed"],
            " (cache hit)" if job["cache_hit"] else "",
        )
        extra.update(conn_id=conn_id, bigquery_job=job)
        source = f"bigquery:{conn_id} ({job['project']})"
        snap = write_snapshot(
            store,
            self.dataset_name,
            batches,
            source=source,
            query=self.sql,
            min_rows=self.min_rows,
            extra=extra,
        )
        if snap.reused:
            self.log.info(
                "Job %s returned the rows of the existing snapshot (its manifest names job %s)",
                job["job_id"],
                snap.extra.get("bigquery_job", {}).get("job_id"),
            )
        self.lineage_record = {
            "inputs": [f"bigquery:{t}" for t in job["referenced_tables"]] or [source],
            "sql": self.sql,
            "details": {"bigquery_job_id": job["job_id"], "total_bytes_billed": job["total_bytes_billed"]},
        }
        return snap

    # ------------------------------------------------------------------ files
    def _extract_files(self, store, context, extra):
        from mlops_provider.core.datasets import write_snapshot
        from mlops_provider.core.sources import (
            FILE_FORMATS,
            iter_object_batches,
            list_source_objects,
            verify_unchanged,
        )

        uri = self.source_uri
        if not isinstance(uri, str) or not uri.strip():
            raise self.param_error("source_uri", "a file, folder or glob URI", uri)
        uri = uri.strip()
        if self.file_format is not None and self.file_format not in FILE_FORMATS:
            raise self.param_error(
                "file_format",
                f"one of {list(FILE_FORMATS)} or None (inferred from file names)",
                self.file_format,
            )
        partition = self._partition_filter(context)
        fs = self._source_fs(uri)
        interval = (context.get("data_interval_start"), context.get("data_interval_end"))
        objects = list_source_objects(uri, fs, self.file_format, partition=partition, interval=interval)
        total = sum(o.size for o in objects)
        self.log.info(
            "Extracting %r from %d file(s), %d bytes, at %s", self.dataset_name, len(objects), total, uri
        )
        extra.update(
            source_selection={
                "uri": uri,
                "conn_id": self.source_conn_id,
                "file_format": self.file_format,
                "partition_column": self.partition_column,
                "partition_format": self.partition_format if partition else None,
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
            store, self.dataset_name, batches, source=uri, min_rows=self.min_rows, extra=extra
        )
        folders = sorted({o.uri.rsplit("/", 1)[0] for o in objects})
        self.lineage_record = {
            "inputs": folders if len(folders) <= 100 else [uri],
            "details": {"files": len(objects), "bytes": total},
        }
        return snap

    def _partition_filter(self, context):
        from mlops_provider.core.errors import InvalidInputError
        from mlops_provider.core.sources import PartitionFilter

        if self.partition_column is None:
            return None
        cols = [self.partition_column] if isinstance(self.partition_column, str) else self.partition_column
        if (
            not isinstance(cols, (list, tuple))
            or not cols
            or not all(isinstance(c, str) and c.strip() and not set(c) & set("=/") for c in cols)
        ):
            raise self.param_error(
                "partition_column",
                "a Hive partition folder name such as 'month' (for .../month=2013-07/...) or a list of them",
                self.partition_column,
            )
        fmt = self.partition_format
        probe = dt.datetime(2013, 7, 1, 13, 45, 10)
        try:
            ok = isinstance(fmt, str) and "%" in fmt and bool(dt.datetime.strptime(probe.strftime(fmt), fmt))
        except ValueError:
            ok = False
        if not ok or fmt.count("/") < len(cols) - 1:
            raise self.param_error(
                "partition_format",
                "a strptime format such as '%Y-%m' or '%Y-%m-%d' (with several partition "
                "columns, one part per column joined by '/', e.g. '%Y/%m')",
                fmt,
            )
        start, end = context.get("data_interval_start"), context.get("data_interval_end")
        if start is None or end is None:
            raise InvalidInputError(
                f"The 'partition_column' parameter of {self.owner_name()} (task {self.task_id!r}) selects the "
                f"partitions of the run's data interval, but this run has none (data_interval_start={start!r}, "
                f"data_interval_end={end!r}). Template 'source_uri' instead, or schedule the DAG with a timetable "
                f"that has data intervals."
            )

        def aware(value):
            return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)

        return PartitionFilter(
            columns=[c.strip() for c in cols], format=fmt, start=aware(start), end=aware(end)
        )

    def _source_fs(self, uri: str):
        """The filesystem for ``uri``: an object store through ``ObjectStoragePath`` and the connection."""
        from mlops_provider.core.sources import split_uri
        from mlops_provider.core.storage import filesystem_for

        protocol, path = split_uri(uri)
        if protocol in ("file", "local"):
            if self.source_conn_id:
                raise self.param_error("source_conn_id", "None for a local path", self.source_conn_id)
            return filesystem_for(uri)
        if self.source_conn_id:
            from airflow.sdk.bases.hook import BaseHook

            conn_type = BaseHook.get_connection(self.source_conn_id).conn_type
            expected = STORE_CONN_TYPES.get(protocol)
            if expected and conn_type not in expected:
                raise self.param_error(
                    "source_conn_id",
                    f"an {' or '.join(expected)} connection for {protocol}:// URIs",
                    f"{self.source_conn_id!r} of type {conn_type!r}",
                )
        from airflow.sdk import ObjectStoragePath

        bucket = path.split("/", 1)[0]
        return ObjectStoragePath(f"{protocol}://{bucket}/", conn_id=self.source_conn_id).fs
