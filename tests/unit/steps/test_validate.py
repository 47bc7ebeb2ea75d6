"""validate_snapshot without Airflow, on the wine data (a GX 1.x suite; counts checked with pandas)."""

from __future__ import annotations

import json

import pyarrow as pa
import pytest
from sklearn.datasets import load_wine

from mlops_provider.core.datasets import write_snapshot
from mlops_provider.core.errors import InvalidParameterError
from mlops_provider.core.steps.run import RunInfo
from mlops_provider.core.steps.validate import ValidateParams, validate_snapshot
from mlops_provider.core.storage import ArtifactStore

SUITE = {
    "name": "wine",
    "expectations": [
        {"type": "expect_column_values_to_be_between", "kwargs": {"column": "alcohol", "min_value": 11}},
        {"type": "expect_column_values_to_be_between", "kwargs": {"column": "magnesium", "max_value": 130}},
    ],
}


@pytest.fixture(scope="module")
def wine():
    return load_wine(as_frame=True).frame


@pytest.fixture
def store(tmp_path):
    return ArtifactStore(f"file://{tmp_path}/root")


@pytest.fixture
def snapshot(store, wine):
    return write_snapshot(store, "wine", [pa.Table.from_pandas(wine, preserve_index=False)], source="sklearn")


def test_failed_expectations_are_counted_like_pandas_counts_them(store, wine, snapshot):
    result = validate_snapshot(
        ValidateParams(expectations=SUITE), dataset=snapshot, store=store, run=RunInfo.local("validate")
    )
    assert not result.passed and "FAILED" in result.summary
    (failure,) = result.to_dict()["failures"]
    assert failure["column"] == "magnesium"
    assert failure["unexpected_count"] == int((wine["magnesium"] > 130).sum()) > 0
    assert failure["element_count"] == len(wine)
    assert all(v > 130 for v in failure["unexpected_examples"])


def test_the_report_is_written_to_the_run_folder(store, snapshot):
    run = RunInfo.local("validate", run_id="nb-1")
    out = validate_snapshot(
        ValidateParams(expectations=SUITE), dataset=snapshot.to_dict(), store=store, run=run
    ).to_dict()
    assert out["report_uri"] == store.uri(f"{run.folder}/validation.json")
    assert store.read_json(f"{run.folder}/validation.json")["failures"] == out["failures"]
    assert store.read_bytes(store.key_of(out["report_html_uri"])).startswith(b"<!DOCTYPE html>")


def test_a_suite_file_passes_when_every_expectation_holds(store, snapshot, tmp_path):
    suite = tmp_path / "suite.json"
    suite.write_text(json.dumps({"name": "wine", "expectations": SUITE["expectations"][:1]}))
    result = validate_snapshot(
        ValidateParams(expectations_file=str(suite)), dataset=snapshot.uri, store=store, run=RunInfo.local()
    )
    assert result.passed and result.to_dict()["evaluated"] == 1
    assert result.lineage()["details"]["success"] is True


def test_exactly_one_suite_source_is_required():
    with pytest.raises(
        InvalidParameterError, match="'expectations / expectations_file' parameter of validate"
    ):
        ValidateParams()


def test_a_dataset_without_a_uri_is_named(store):
    with pytest.raises(InvalidParameterError, match="'dataset' parameter of validate_snapshot"):
        validate_snapshot(
            ValidateParams(expectations=SUITE), dataset={"rows": 3}, store=store, run=RunInfo.local()
        )
