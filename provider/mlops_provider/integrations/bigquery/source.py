"""BigQuery as a snapshot source: one query job through the google provider's ``BigQueryHook``.

The hook is handed in (this module imports no Airflow): :func:`run_query` inserts the query job,
waits for it, and returns what the manifest records about it (job id, project, location, bytes
processed and billed, tables read) together with the result as a stream of pyarrow record batches
(through the BigQuery Storage Read API when available, else the REST pages).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from mlops_provider.core.errors import InvalidInputError

_LABEL_RE = re.compile(r"[^a-z0-9_-]")


def job_id_for(dag_id: str, task_id: str, unique: str) -> str:
    """A job id BigQuery accepts (letters, digits, ``_``, ``-``) that names the DAG and task."""
    raw = f"airflow_mlops_{dag_id}_{task_id}_{unique}"
    return re.sub(r"[^A-Za-z0-9_-]", "_", raw)[-1024:]


def label_value(value: str) -> str:
    """A BigQuery label value: lower-case letters, digits, ``_`` and ``-``, at most 63 characters."""
    return _LABEL_RE.sub("_", str(value).lower())[:63]


def run_query(
    hook: Any,
    sql: str,
    *,
    job_id: str | None = None,
    job_config: dict[str, Any] | None = None,
    labels: dict[str, str] | None = None,
    use_storage_api: bool = True,
) -> tuple[dict[str, Any], Iterator[Any]]:
    """Run ``sql`` as a query job and return ``(job facts, record batches)``.

    ``hook`` is an ``airflow.providers.google.cloud.hooks.bigquery.BigQueryHook``; the job runs in
    its project and location. ``job_config``: more fields of the job's ``query`` configuration
    (``maximumBytesBilled``, ``queryParameters``, ``defaultDataset``...). A query BigQuery rejects
    (HTTP 400: syntax, unknown table, bytes-billed limit) raises :class:`InvalidInputError` naming
    the job; other API errors propagate so the task can retry.
    """
    if not isinstance(sql, str) or not sql.strip():
        raise InvalidInputError(f"The 'sql' parameter must be a non-empty SQL string. Got {sql!r} instead.")
    query = {
        "query": sql,
        "useLegacySql": bool(getattr(hook, "use_legacy_sql", False)),
        "priority": getattr(hook, "priority", None) or "INTERACTIVE",
        **(job_config or {}),
    }
    configuration: dict[str, Any] = {"query": query}
    all_labels = {**(getattr(hook, "labels", None) or {}), **(labels or {})}
    if all_labels:
        configuration["labels"] = {label_value(k): label_value(v) for k, v in all_labels.items()}
    from google.api_core.exceptions import BadRequest

    try:
        job = hook.insert_job(configuration=configuration, job_id=job_id, nowait=False)
    except BadRequest as err:
        raise InvalidInputError(
            f"BigQuery rejected the query of the 'sql' parameter (job {job_id}): "
            f"{getattr(err, 'message', err)}. "
            f"Query: {sql}"
        ) from err
    facts = job_facts(job)
    return facts, _batches(hook, job, use_storage_api)


def job_facts(job: Any) -> dict[str, Any]:
    """What identifies and prices a finished query job, as JSON-ready values."""

    def table_name(ref: Any) -> str | None:
        if ref is None:
            return None
        return f"{ref.project}.{ref.dataset_id}.{ref.table_id}"

    def when(value: Any) -> str | None:
        return value.isoformat() if value is not None else None

    return {
        "job_id": job.job_id,
        "project": job.project,
        "location": job.location,
        "total_bytes_processed": job.total_bytes_processed,
        "total_bytes_billed": job.total_bytes_billed,
        "cache_hit": job.cache_hit,
        "statement_type": getattr(job, "statement_type", None),
        "referenced_tables": sorted(filter(None, (table_name(t) for t in (job.referenced_tables or [])))),
        "destination": table_name(getattr(job, "destination", None)),
        "started": when(getattr(job, "started", None)),
        "ended": when(getattr(job, "ended", None)),
    }


def _batches(hook: Any, job: Any, use_storage_api: bool) -> Iterator[Any]:
    rows = job.result()
    read_client = None
    if use_storage_api:
        try:
            from google.cloud import bigquery_storage
        except ImportError:
            read_client = None
        else:
            read_client = bigquery_storage.BigQueryReadClient(credentials=hook.get_credentials())
    yield from rows.to_arrow_iterable(bqstorage_client=read_client)
