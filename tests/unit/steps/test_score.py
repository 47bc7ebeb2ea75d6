"""The scoring steps without Airflow (RunInfo.local(), a store on tmp_path), on scikit-learn's
breast cancer (binary) and diabetes (regression) data: pin a version, score, split / score each
partition / gather, choose the window, record a managed job. Predictions are compared with the
scikit-learn model's own predict / predict_proba."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mlops_provider.core import datasets, modeling
from mlops_provider.core.errors import IntegrityError, InvalidParameterError
from mlops_provider.core.registry import ModelRegistry
from mlops_provider.core.steps.run import RunInfo
from mlops_provider.core.steps.score import (
    GatherParams,
    ListPartitionsParams,
    PartitionParams,
    ResolveParams,
    ScoreParams,
    gather_scored_parts,
    list_input_partitions,
    partition_dataset,
    resolve_model_version,
    score_batch,
    scoring_window,
)
from mlops_provider.core.storage import ArtifactStore

MODEL = "breast_cancer"


def _frame(loader):
    data = loader(as_frame=True)
    frame = data.frame.rename(columns=lambda c: c.replace(" ", "_"))
    frame.insert(0, "row_id", np.arange(len(frame)))
    return frame


@pytest.fixture(scope="module")
def cancer():
    from sklearn.datasets import load_breast_cancer

    frame = _frame(load_breast_cancer)
    features = [c for c in frame.columns if c not in ("row_id", "target")]
    model, res = modeling.train_model(
        frame,
        label="target",
        estimator="sklearn.ensemble.HistGradientBoostingClassifier",
        params={"max_iter": 30},
        features=features,
    )
    return frame, features, model, res


@pytest.fixture
def store(tmp_path):
    return ArtifactStore(f"file://{tmp_path / 'artifacts'}")


def register(store, name, model, res):
    from mlops_provider.core.serialization import dump_model

    registry = ModelRegistry(store)
    mv, _ = registry.register(name, dump_model(model), run_key=f"{name}-r1", spec=res.spec.to_dict())
    registry.promote(name, mv.version, actor="test", reason="test")
    return registry, mv


def snapshot(store, name, frame):
    table = pa.Table.from_pandas(frame, preserve_index=False)
    return datasets.write_snapshot(store, name, [table], source="sklearn")


def read(store, uri):
    return pq.read_table(store.path(store.key_of(uri))).to_pandas()


def test_score_batch_matches_predict_proba_of_the_champion(store, cancer):
    frame, features, model, res = cancer
    registry, mv = register(store, MODEL, model, res)
    snap = snapshot(store, "to_score", frame.drop(columns="target"))
    run = RunInfo.local(run_id="r1")
    params = ScoreParams(MODEL, passthrough=["row_id"], batch_size=100, window=["2024-01-01", "2024-02-01"])
    out = score_batch(params, dataset=snap.to_dict(), store=store, registry=registry, run=run)
    got = read(store, out.scoring.output_uri)
    expected = model.predict_proba(frame[features])[:, list(model.classes_).index(1)]
    np.testing.assert_allclose(got["score"].to_numpy(), expected)
    np.testing.assert_array_equal(got["prediction"].to_numpy(), model.predict(frame[features]))
    assert got["row_id"].tolist() == frame["row_id"].tolist()
    result = out.to_dict()
    assert result["rows"] == len(frame) and result["batches"] == -(-len(frame) // 100)
    assert result["model_version"] == mv.version and result["model_sha256"] == mv.model_sha256
    assert "map_index" not in result
    manifest = store.read_json("predictions/breast_cancer/local/r1/manifest.json")
    assert manifest["window"] == ["2024-01-01", "2024-02-01"] and manifest["dag_id"] == "local"
    assert out.lineage()["inputs"] == [f"{snap.uri}/data.parquet", mv.model_uri]


def test_a_regressor_scores_its_predictions(store):
    from sklearn.datasets import load_diabetes

    frame = _frame(load_diabetes)
    features = [c for c in frame.columns if c not in ("row_id", "target")]
    model, res = modeling.train_model(
        frame,
        label="target",
        estimator="sklearn.ensemble.HistGradientBoostingRegressor",
        params={"max_iter": 30},
        features=features,
    )
    registry, _ = register(store, "diabetes", model, res)
    snap = snapshot(store, "diabetes_in", frame.drop(columns="target"))
    out = score_batch(
        ScoreParams("diabetes"), dataset=snap.uri, store=store, registry=registry, run=RunInfo.local()
    )
    got = read(store, out.scoring.output_uri)
    np.testing.assert_allclose(got["score"].to_numpy(), model.predict(frame[features]))
    assert out.scoring.columns == ["prediction", "score", "model_version"]


def test_a_mapped_run_writes_its_part_in_its_own_folder(store, cancer):
    frame, _, model, res = cancer
    registry, _ = register(store, MODEL, model, res)
    snap = snapshot(store, "to_score", frame.drop(columns="target"))
    run = RunInfo("dag", "run1", "score", map_index=2)
    out = score_batch(ScoreParams(MODEL), dataset=snap.uri, store=store, registry=registry, run=run)
    assert out.to_dict()["map_index"] == 2
    assert out.scoring.output_uri == store.uri("runs/dag/run1/score/part-00002/predictions.parquet")


def test_a_pin_whose_sha256_is_not_the_registrys_is_refused(store, cancer):
    frame, _, model, res = cancer
    registry, mv = register(store, MODEL, model, res)
    snap = snapshot(store, "to_score", frame.drop(columns="target"))
    pin = {"model": MODEL, "version": mv.version, "model_sha256": "0" * 64}
    with pytest.raises(IntegrityError, match=r"'model_ref' parameter of score_batch pins breast_cancer v1"):
        score_batch(
            ScoreParams(MODEL, model_ref=pin),
            dataset=snap.uri,
            store=store,
            registry=registry,
            run=RunInfo.local(run_id="r1"),
        )
    assert not store.exists("predictions")


def test_resolve_pins_the_champion_for_the_scoring_step(store, cancer):
    _, _, model, res = cancer
    registry, mv = register(store, MODEL, model, res)
    pin = resolve_model_version(ResolveParams(MODEL), registry=registry).to_dict()
    assert pin == {
        "model": MODEL,
        "version": mv.version,
        "model_sha256": mv.model_sha256,
        "model_uri": mv.model_uri,
        "version_uri": mv.uri,
        "ref": "champion",
    }
    assert ScoreParams(MODEL, model_ref=pin).ref == (mv.version, mv.model_sha256)


@pytest.mark.parametrize(
    ("fields", "parameter"),
    [
        ({"model_ref": [1]}, "model_ref"),
        ({"model_ref": {"model": "other", "version": 1, "model_sha256": "0" * 64}}, "model_ref"),
        ({"batch_size": 0}, "batch_size"),
        ({"output_key": "../outside"}, "output_key"),
        ({"model_name": "../x"}, "model_name"),
    ],
)
def test_a_bad_score_parameter_is_named(fields, parameter):
    with pytest.raises(InvalidParameterError, match=rf"The '{parameter}' parameter of score_batch must be"):
        ScoreParams(**{"model_name": MODEL, **fields})


def test_template_text_is_coerced_before_validation():
    params = ScoreParams.build(
        "BatchScoreOperator (task 'score')",
        model_name=MODEL,
        model_ref='{"version": 3, "model_sha256": "' + "a" * 64 + '"}',
        output_key="",
    )
    assert params.ref == (3, "a" * 64) and params.output_key is None
    with pytest.raises(InvalidParameterError, match=r"'model_ref' parameter of ResolveModelVersionOperator"):
        ResolveParams.build("ResolveModelVersionOperator (task 'model')", model_name=MODEL, model_ref="")


def test_split_score_each_partition_and_gather_publish_every_row_once(store, cancer):
    frame, features, model, res = cancer
    registry, mv = register(store, MODEL, model, res)
    snap = snapshot(store, "to_score", frame.drop(columns="target"))
    split = partition_dataset(PartitionParams("landing/cancer", 3), dataset=snap.uri, store=store)
    listed = list_input_partitions(ListPartitionsParams(store.uri("landing/cancer")), store=store)
    assert [p["uri"] for p in listed.to_list()] == [p["uri"] for p in split.to_list()]
    assert listed.rows == split.rows == len(frame)
    pin = resolve_model_version(ResolveParams(MODEL), registry=registry).to_dict()
    parts = []
    for p in listed.to_list():
        run = RunInfo("dag", "run1", "score", map_index=p["index"])
        params = ScoreParams(MODEL, model_ref=pin, passthrough=["row_id"])
        parts.append(score_batch(params, dataset=p, store=store, registry=registry, run=run).to_dict())
    gathered = gather_scored_parts(
        GatherParams(MODEL, window=["a", "b"]),
        partitions=listed.to_list(),
        parts=parts,
        model=pin,
        store=store,
        run=RunInfo("dag", "run1", "gather"),
    ).to_dict()
    assert gathered["rows"] == len(frame) and gathered["window"] == ["a", "b"]
    assert gathered["manifest_uri"] == store.uri("predictions/breast_cancer/dag/run1/manifest.json")
    table = pa.concat_tables([pq.read_table(store.path(store.key_of(u))) for u in gathered["part_uris"]])
    assert table.column("row_id").to_pylist() == frame["row_id"].tolist()
    np.testing.assert_allclose(table.column("score").to_numpy(), model.predict_proba(frame[features])[:, 1])


def test_a_bad_partition_parameter_is_named():
    with pytest.raises(InvalidParameterError, match=r"'partitions' parameter of partition_dataset"):
        PartitionParams("landing/x", 0)
    with pytest.raises(InvalidParameterError, match=r"'pattern' parameter of list_input_partitions"):
        ListPartitionsParams("landing/x", pattern="/abs/*.parquet")
    with pytest.raises(InvalidParameterError, match=r"'output_key' parameter of gather_scored_parts"):
        GatherParams(MODEL, output_key="/tmp/x")


def test_scoring_window_is_the_interval_or_the_latest_scored_one(store):
    start, end = dt.datetime(2024, 3, 1), dt.datetime(2024, 4, 1)

    def no_store():
        raise AssertionError("a scheduled run does not open the store")

    assert scoring_window(MODEL, store=no_store, run_type="scheduled", start=start, end=end) == [
        "2024-03-01",
        "2024-04-01",
    ]
    assert scoring_window(MODEL, store=store, run_type="asset_triggered", start=start, end=end) is None
    store.write_json(f"predictions/{MODEL}/dag/old/manifest.json", {"window": ["2024-01-01", "2024-02-01"]})
    store.write_json(f"predictions/{MODEL}/dag/none/manifest.json", {"window": None})
    store.write_json(f"predictions/{MODEL}/dag/new/manifest.json", {"window": ["2024-02-01", "2024-03-01"]})
    assert scoring_window(MODEL, store=lambda: store, run_type="asset_triggered") == [
        "2024-02-01",
        "2024-03-01",
    ]


def test_a_finished_managed_job_is_recorded_with_its_pin(store):
    from mlops_provider.core.managed import ManagedScoreParams, record_managed_job

    pin = {"model": MODEL, "version": 4, "model_sha256": "c" * 64, "model_uri": "s3://b/m/model.skops"}
    params = ManagedScoreParams("sagemaker", MODEL, "s3://b/in/", "s3://b/out/", window=["a", "b"])
    out = record_managed_job(params, job="job-1", pin=pin, store=store, run=RunInfo.local(run_id="r9"))
    manifest = store.read_json(f"predictions/{MODEL}/local/r9/manifest.json")
    assert out.to_dict() == {**manifest, "manifest_uri": out.manifest_uri}
    assert (manifest["job"], manifest["model_version"], manifest["rows"]) == ("job-1", 4, None)
    assert out.lineage()["inputs"] == ["s3://b/in/", "s3://b/m/model.skops"]
    with pytest.raises(InvalidParameterError, match=r"'backend' parameter of record_managed_job"):
        ManagedScoreParams("sagemake", MODEL, "s3://b/in/", "s3://b/out/")
