"""extract_snapshot without Airflow: a SQLAlchemy engine, a DB-API connection, files at a URI
(wine and diabetes data from scikit-learn, not the flights demo)."""

from __future__ import annotations

import datetime as dt
import sqlite3

import pandas as pd
import pytest
from sklearn.datasets import load_diabetes, load_wine

from mlops_provider.core.datasets import read_dataframe, read_manifest
from mlops_provider.core.errors import EmptyDatasetError, InvalidInputError, InvalidParameterError
from mlops_provider.core.steps.extract import ExtractParams, extract_snapshot
from mlops_provider.core.steps.run import RunInfo
from mlops_provider.core.storage import ArtifactStore
from tests.conftest import files_under

UTC = dt.timezone.utc


@pytest.fixture
def store(tmp_path):
    return ArtifactStore(f"file://{tmp_path}/root")


@pytest.fixture(scope="module")
def wine() -> pd.DataFrame:
    return load_wine(as_frame=True).frame


@pytest.fixture
def wine_db(tmp_path, wine) -> str:
    path = tmp_path / "wine.db"
    with sqlite3.connect(path) as con:
        wine.to_sql("wine", con, index=False)
    return str(path)


def test_sqlalchemy_engine_rows_become_a_snapshot_equal_to_the_table(store, wine, wine_db):
    sqlalchemy = pytest.importorskip("sqlalchemy")
    engine = sqlalchemy.create_engine(f"sqlite:///{wine_db}")
    result = extract_snapshot(
        ExtractParams("wine", sql="SELECT * FROM wine WHERE alcohol >= 13"),
        source=engine,
        store=store,
        run=RunInfo.local("extract"),
    )
    expected = wine[wine["alcohol"] >= 13].reset_index(drop=True)
    assert result.to_dict()["rows"] == len(expected) > 0
    pd.testing.assert_frame_equal(read_dataframe(store, result.uri), expected, check_dtype=False)
    assert result.to_dict()["source"] == f"sql:sqlite (sqlite:///{wine_db})"
    assert result.lineage()["sql"] == "SELECT * FROM wine WHERE alcohol >= 13"


def test_the_same_rows_again_reuse_the_snapshot(store, wine_db):
    params = ExtractParams("wine", sql="SELECT * FROM wine")
    with sqlite3.connect(wine_db) as con:
        first = extract_snapshot(params, source=con, store=store, run=RunInfo.local("extract"))
        again = extract_snapshot(params, source=con, store=store, run=RunInfo.local("extract"))
    assert not first.snapshot.reused and again.snapshot.reused
    assert (again.uri, again.snapshot.sha256) == (first.uri, first.snapshot.sha256)


def test_a_dbapi_connection_passed_in_is_left_open(store, wine_db):
    con = sqlite3.connect(wine_db)
    extract_snapshot(
        ExtractParams("wine", sql="SELECT * FROM wine"), source=con, store=store, run=RunInfo.local()
    )
    assert con.execute("SELECT COUNT(*) FROM wine").fetchone()[0] == 178
    con.close()


def test_a_sqlalchemy_connection_passed_in_is_left_open(store, wine_db):
    sqlalchemy = pytest.importorskip("sqlalchemy")
    with sqlalchemy.create_engine(f"sqlite:///{wine_db}").connect() as con:
        result = extract_snapshot(
            ExtractParams("wine", sql="SELECT * FROM wine"), source=con, store=store, run=RunInfo.local()
        )
        assert con.exec_driver_sql("SELECT COUNT(*) FROM wine").scalar() == result.snapshot.rows == 178


def test_too_few_rows_fail_and_write_nothing(store, wine_db, tmp_path):
    with sqlite3.connect(wine_db) as con, pytest.raises(EmptyDatasetError, match="'wine'.*0 row|no data"):
        extract_snapshot(
            ExtractParams("wine", sql="SELECT * FROM wine WHERE alcohol > 99"),
            source=con,
            store=store,
            run=RunInfo.local(),
        )
    assert files_under(tmp_path / "root") == []


def test_csv_files_at_a_uri_without_any_source(store, tmp_path):
    diabetes = load_diabetes(as_frame=True, scaled=False).frame
    (tmp_path / "in").mkdir()
    diabetes.iloc[:200].to_csv(tmp_path / "in" / "a.csv", index=False)
    diabetes.iloc[200:].to_csv(tmp_path / "in" / "b.csv", index=False)
    result = extract_snapshot(
        ExtractParams("diabetes", source_uri=f"file://{tmp_path}/in/*.csv"),
        store=store,
        run=RunInfo.local("extract"),
    )
    got = read_dataframe(store, result.uri)
    pd.testing.assert_frame_equal(got, diabetes, check_dtype=False)
    assert result.to_dict()["extra"]["source_object_count"] == 2
    assert "source_objects" not in result.to_dict()["extra"]  # only in the manifest
    assert len(read_manifest(store, result.uri).extra["source_objects"]) == 2


def _partitions(tmp_path, wine) -> str:
    for month, part in zip(
        ("2020-01", "2020-02", "2020-03"), (wine.iloc[:60], wine.iloc[60:120], wine.iloc[120:]), strict=True
    ):
        folder = tmp_path / "wine" / f"month={month}"
        folder.mkdir(parents=True)
        part.to_parquet(folder / "part-0.parquet", index=False)
    return f"file://{tmp_path}/wine/"


def test_partitions_of_the_interval_are_selected(store, tmp_path, wine):
    params = ExtractParams(
        "wine", source_uri=_partitions(tmp_path, wine), partition_column="month", partition_format="%Y-%m"
    )
    result = extract_snapshot(
        params,
        store=store,
        run=RunInfo.local("extract"),
        interval=(dt.datetime(2020, 2, 1, tzinfo=UTC), dt.datetime(2020, 3, 1, tzinfo=UTC)),
    )
    got = read_dataframe(store, result.uri)
    pd.testing.assert_frame_equal(got.drop(columns="month"), wine.iloc[60:120].reset_index(drop=True))
    assert set(got["month"]) == {"2020-02"}


def test_partitions_without_an_interval_are_refused(store, tmp_path, wine):
    params = ExtractParams(
        "wine", source_uri=_partitions(tmp_path, wine), partition_column="month", partition_format="%Y-%m"
    )
    with pytest.raises(InvalidInputError, match="'partition_column' parameter of extract_snapshot.*has none"):
        extract_snapshot(params, store=store, run=RunInfo.local("extract"))


@pytest.mark.parametrize(
    "fields, name",
    [
        ({"sql": "SELECT 1", "source_uri": "file:///x"}, "'sql / source_uri'"),
        ({"sql": "SELECT 1", "min_rows": 0}, "'min_rows'"),
        ({"sql": "SELECT 1", "source_kind": "sql", "bigquery_config": {"a": 1}}, "'bigquery_config'"),
        (
            {"source_uri": "file:///x", "partition_column": "month", "partition_format": "YYYY-MM"},
            "'partition_format'",
        ),
        ({"source_uri": "file:///x", "file_format": "xlsx"}, "'file_format'"),
        ({"sql": "SELECT 1", "partition_column": "month"}, "'partition_column'"),
    ],
)
def test_bad_parameters_are_named(fields, name):
    with pytest.raises(InvalidParameterError, match=f"The {name} parameter of extract_snapshot must be"):
        ExtractParams("wine", **fields)


def test_template_text_is_coerced_and_errors_name_the_caller():
    params = ExtractParams.build(
        "ExtractOperator (task 'e')", dataset_name="wine", sql="SELECT 1", min_rows="5"
    )
    assert params.min_rows == 5
    with pytest.raises(
        InvalidParameterError, match=r"'dataset_name' parameter of ExtractOperator \(task 'e'\)"
    ):
        ExtractParams.build("ExtractOperator (task 'e')", dataset_name="../wine", sql="SELECT 1")
