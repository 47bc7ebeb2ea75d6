"""ExtractOperator: SQL through any Airflow DB-API connection, a BigQuery query job, or CSV/Parquet
files on any store (S3, GCS, local...), into a content-addressed dataset snapshot."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from mlops_provider.links.report import SnapshotLink
from mlops_provider.operators._base import MlopsBaseOperator

if TYPE_CHECKING:
    from airflow.sdk import Context

BIGQUERY_CONN_TYPES = ("google_cloud_platform", "gcpbigquery")
# the connection types that can open each object store (others are a mistake worth naming)
STORE_CONN_TYPES = {
    "s3": ("aws",),
    "s3a": ("aws",),
    "gs": ("google_cloud_platform",),
    "gcs": ("google_cloud_platform",),
}


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
    operator_extra_links = (SnapshotLink(),)
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
        from mlops_provider.core.steps.extract import ExtractParams, extract_snapshot

        params = self.params_for(
            ExtractParams,
            dataset_name=self.dataset_name,
            sql=self.sql,
            source_uri=self.source_uri,
            source_kind=self.source_kind,
            file_format=self.file_format,
            partition_column=self.partition_column,
            partition_format=self.partition_format,
            bigquery_config=self.bigquery_config,
            bigquery_storage_api=self.bigquery_storage_api,
            min_rows=self.min_rows,
            fetch_batch_size=self.fetch_batch_size,
        )
        from mlops_provider.links.report import snapshot_url

        params, conn = self._resolve_kind(params)
        source = getattr(self, f"_{params.source_kind}_source")(params, conn)
        store = self.store()
        result = extract_snapshot(
            params,
            source=source,
            store=store,
            run=self.run_info(context),
            interval=(context.get("data_interval_start"), context.get("data_interval_end")),
            caller=self.caller,
        )
        self.mlops_links[SnapshotLink.name] = snapshot_url(store, result.uri)
        self.lineage_record = result.lineage()
        return result.to_dict()

    def _resolve_kind(self, params):
        """(the parameters with their source kind settled, the SQL connection or None)."""
        if params.source_uri is not None or params.source_kind == "bigquery":
            kind, conn = params.source_kind or "files", None
        else:
            if not self.conn_id:
                raise self.param_error(
                    "conn_id", "an Airflow connection id when 'sql' is given", self.conn_id
                )
            from airflow.sdk.bases.hook import BaseHook

            conn = BaseHook.get_connection(self.conn_id)
            kind = params.source_kind or ("bigquery" if conn.conn_type in BIGQUERY_CONN_TYPES else "sql")
        if kind != params.source_kind:  # checked again for that kind (bigquery_config)
            params = self.params_for(type(params), **{**params.to_dict(), "source_kind": kind})
        return params, conn

    # ------------------------------------------------------------------ SQL (common-sql DbApiHook)
    def _sql_source(self, params, conn):
        from airflow.providers.common.sql.hooks.sql import DbApiHook

        from mlops_provider.core.steps.extract import SqlSource

        hook_params = self.as_dict(self.hook_params, "hook_params") or {}
        try:
            hook = conn.get_hook(hook_params=hook_params)
        except TypeError as err:
            raise self.param_error(
                "hook_params", f"keyword arguments the {conn.conn_type!r} hook accepts ({err})", hook_params
            ) from err
        if not isinstance(hook, DbApiHook):
            raise self.param_error(
                "conn_id",
                "a connection whose hook is a common-sql DbApiHook (Postgres, MySQL, SQLite, Redshift, "
                "Athena, Snowflake, Trino...; for BigQuery source_kind='bigquery')",
                f"{self.conn_id!r} of type {conn.conn_type!r} ({type(hook).__name__})",
            )
        self.log.info("Reading %r through %s", self.conn_id, type(hook).__name__)
        return SqlSource(
            connect=hook.get_conn,
            label=self.conn_id,
            uri=f"{conn.conn_type}://{conn.host or ''}/{conn.schema or ''}",
            extra={"conn_id": self.conn_id, "conn_type": conn.conn_type, "hook": type(hook).__name__},
        )

    # ------------------------------------------------------------------ BigQuery
    def _bigquery_source(self, params, conn):
        from mlops_provider.core.errors import InvalidInputError
        from mlops_provider.core.steps.extract import BigQuerySource

        try:
            from airflow.providers.google.cloud.hooks.bigquery import BigQueryHook
        except ImportError as err:
            raise InvalidInputError(
                "A BigQuery source needs the google provider: pip install 'airflow-provider-mlops[google]' "
                f"({err})"
            ) from err
        conn_id = self.conn_id or "google_cloud_default"
        hook_params = {"use_legacy_sql": False, **(self.as_dict(self.hook_params, "hook_params") or {})}
        try:
            hook = BigQueryHook(gcp_conn_id=conn_id, **hook_params)
        except TypeError as err:
            raise self.param_error(
                "hook_params", f"keyword arguments BigQueryHook accepts ({err})", hook_params
            ) from err
        return BigQuerySource(hook, label=conn_id)

    # ------------------------------------------------------------------ files
    def _files_source(self, params, conn):
        """The filesystem for ``source_uri``: an object store's through ``ObjectStoragePath`` and
        ``source_conn_id``."""
        from mlops_provider.core.sources import split_uri
        from mlops_provider.core.steps.extract import FileSource
        from mlops_provider.core.storage import filesystem_for

        uri = params.source_uri.strip()
        protocol, path = split_uri(uri)
        if protocol in ("file", "local"):
            if self.source_conn_id:
                raise self.param_error("source_conn_id", "None for a local path", self.source_conn_id)
            return FileSource(filesystem_for(uri))
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
        fs = ObjectStoragePath(f"{protocol}://{bucket}/", conn_id=self.source_conn_id).fs
        return FileSource(fs, conn_id=self.source_conn_id)
