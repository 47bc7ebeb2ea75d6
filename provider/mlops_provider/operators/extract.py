"""ExtractOperator: SQL through any Airflow DB-API connection, or CSV/Parquet files at any URI,
into a content-addressed dataset snapshot."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from mlops_provider.operators._base import MlopsBaseOperator

if TYPE_CHECKING:
    from airflow.sdk import Context


class ExtractOperator(MlopsBaseOperator):
    """Extract rows into a versioned snapshot (Parquet + manifest.json) on the artifact store.

    :param dataset_name: snapshot family name (``datasets/<name>/<sha256>/``).
    :param sql: a query (templated; ``{{ data_interval_start }}`` windows; a ``.sql`` file works too)
        run through the DB-API hook of ``conn_id`` (Postgres, MySQL, SQLite, Redshift, Snowflake...).
    :param conn_id: the Airflow connection for ``sql``.
    :param source_uri: instead of ``sql``: a CSV/Parquet file, folder or glob at any fsspec URI.
    :param source_conn_id: Airflow connection for ``source_uri`` on an object store.
    :param file_format: ``"csv"`` or ``"parquet"``; inferred from file names if omitted.
    :param min_rows: fewer rows than this fails the task and writes nothing.
    :return: the snapshot's ``to_dict()``: ``uri``, ``sha256``, ``rows``, ``columns``, ``reused``...
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
        min_rows: int = 1,
        fetch_batch_size: int = 50_000,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        self.dataset_name = dataset_name
        self.sql = sql
        self.conn_id = conn_id
        self.source_uri = source_uri
        self.source_conn_id = source_conn_id
        self.file_format = file_format
        self.min_rows = min_rows
        self.fetch_batch_size = fetch_batch_size

    def execute_step(self, context: Context) -> dict[str, Any]:
        from mlops_provider.core.datasets import check_name, write_snapshot

        check_name(self.dataset_name, "dataset_name", self.owner_name())
        if (self.sql is None) == (self.source_uri is None):
            raise self.param_error("sql / source_uri", "exactly one of the two", {"sql": self.sql, "source_uri": self.source_uri})
        if isinstance(self.min_rows, bool) or not isinstance(self.min_rows, int) or self.min_rows < 1:
            raise self.param_error("min_rows", "an int >= 1", self.min_rows)
        store = self.store()
        extra = {
            "dag_id": context["ti"].dag_id,
            "run_id": context["ti"].run_id,
            "data_interval_start": str(context.get("data_interval_start")),
            "data_interval_end": str(context.get("data_interval_end")),
        }
        if self.sql is not None:
            if not self.conn_id:
                raise self.param_error("conn_id", "an Airflow connection id when 'sql' is given", self.conn_id)
            from airflow.sdk.bases.hook import BaseHook

            from mlops_provider.core.sources import iter_sql_batches

            conn = BaseHook.get_connection(self.conn_id)
            hook = conn.get_hook()
            if not hasattr(hook, "get_conn"):
                raise self.param_error("conn_id", "a connection whose hook speaks DB-API (get_conn)", self.conn_id)
            source_uri = f"{conn.conn_type}://{conn.host or ''}/{conn.schema or ''}"
            source = f"sql:{self.conn_id} ({source_uri})"
            self.log.info("Extracting %r from %s", self.dataset_name, source)
            batches = iter_sql_batches(hook.get_conn, self.sql, self.fetch_batch_size)
            snap = write_snapshot(store, self.dataset_name, batches, source=source, query=self.sql,
                                  min_rows=self.min_rows, extra=extra)
            self.lineage_record = {"inputs": [source_uri], "sql": self.sql}
        else:
            from mlops_provider.core.sources import iter_file_batches

            self.lineage_record = {"inputs": [self.source_uri]}

            fs = None
            if self.source_conn_id:
                from airflow.sdk import ObjectStoragePath

                fs = ObjectStoragePath(self.source_uri, conn_id=self.source_conn_id).fs
            batches = iter_file_batches(self.source_uri, self.file_format, fs=fs)
            snap = write_snapshot(store, self.dataset_name, batches, source=self.source_uri,
                                  min_rows=self.min_rows, extra=extra)
        self.lineage_record.update(outputs=[(snap.data_uri, snap.columns)], step="extract",
                                   details={"rows": snap.rows, "sha256": snap.sha256, "reused": snap.reused})
        self.log.info(
            "Snapshot %s: %d rows, sha256 %s%s", snap.uri, snap.rows, snap.sha256,
            " (identical data: reused)" if snap.reused else "",
        )
        return snap.to_dict()
