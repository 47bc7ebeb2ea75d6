"""Partitioned scoring on real flights: split a snapshot into partitions, list them, score each as
a mapped task would, gather. The gather publishes every row once or, refusing (missing part, wrong
row count, wrong sha256, mixed or unpinned versions), nothing; the operators name the parameter."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from airflow.sdk.exceptions import AirflowFailException

from mlops_provider.core import datasets, modeling, scoring
from mlops_provider.core.errors import (
    CorruptArtifactError,
    EmptyDatasetError,
    InvalidInputError,
    NotFoundError,
)
from mlops_provider.core.partitions import (
    IncompletePredictionsError,
    gather_predictions,
    list_partitions,
    prediction_set_files,
    split_dataset,
)
from mlops_provider.examples.nycflights import CATEGORICAL, FEATURES, LABEL
from tests.conftest import files_under
from tests.helpers import context_for

OUT = "predictions/m/dag/run1"


@pytest.fixture(scope="module")
def trained(flights_frame):
    train, _ = flights_frame
    return modeling.train_model(
        train.sample(10_000, random_state=0),
        label=LABEL,
        estimator="sklearn.ensemble.HistGradientBoostingClassifier",
        params={"max_iter": 20},
        features=FEATURES,
        categorical=CATEGORICAL,
    )


@pytest.fixture
def june(store, flights_frame):
    _, evaluation = flights_frame
    inp = evaluation.drop(columns=[LABEL])
    return datasets.write_snapshot(
        store, "june", [pa.Table.from_pandas(inp, preserve_index=False)], source="t"
    ), inp


def score_all(store, trained, partitions, version=1, sha="a" * 64, staging="runs/dag/run1/score"):
    """What the mapped BatchScoreOperator instances return, one per partition."""
    model, res = trained
    parts = []
    for p in partitions:
        r = scoring.batch_score(
            store,
            model,
            res.spec,
            model_name="m",
            model_version=version,
            model_sha256=sha,
            input_uri=p["uri"],
            output_key=f"{staging}/part-{p['index']:05d}",
            passthrough=["flight_id"],
            batch_size=2000,
            extra_manifest={"map_index": p["index"]},
        )
        parts.append({**r.to_dict(), "map_index": p["index"]})
    return parts


def read_set(store, key=OUT):
    files = prediction_set_files(store, store.uri(key))
    return pa.concat_tables([pq.read_table(store.path(store.key_of(f))) for f in files])


def published_files(tmp_path):
    return [f for f in files_under(tmp_path / "artifacts") if f.startswith("predictions")]


def test_split_score_gather_every_row_once(store, trained, june, tmp_path):
    snap, inp = june
    split = split_dataset(store, snap.uri, "landing/june", 4)
    listed = list_partitions(store, "landing/june")
    assert [p["uri"] for p in listed] == [p["uri"] for p in split["partitions"]] and not split["reused"]
    assert [p["rows"] for p in listed] == [len(inp) * (i + 1) // 4 - len(inp) * i // 4 for i in range(4)]
    assert split_dataset(store, snap.uri, "landing/june", 4)["reused"]  # same source: nothing rewritten
    parts = score_all(store, trained, listed)
    out = gather_predictions(
        store,
        partitions=listed,
        parts=parts,
        output_key=OUT,
        model={"version": 1, "model_sha256": "a" * 64},
        extra_manifest={"window": ["a", "b"]},
    )
    assert (
        not out["reused"]
        and out["rows"] == len(inp)
        and out["partitions"] == 4
        and out["window"] == ["a", "b"]
    )
    table = read_set(store)
    assert table.column("flight_id").to_pylist() == inp["flight_id"].tolist()  # in order, once each
    assert [p["sha256"] for p in out["parts"]] == [store.sha256(store.key_of(p["uri"])) for p in out["parts"]]
    assert not store.exists("runs/dag/run1/score/part-00000")  # staged parts folded into the set
    before = files_under(tmp_path / "artifacts")
    again = gather_predictions(store, partitions=listed, parts=parts, output_key=OUT)
    assert (
        again["reused"]
        and files_under(tmp_path / "artifacts") == before
        and read_set(store).num_rows == len(inp)
    )


@pytest.mark.parametrize("kind", ["s3", "gs"])
def test_split_list_gather_on_object_stores(request, trained, flights_frame, kind):
    """The same on S3 (moto_server) and GCS (emulator): listing by glob, moves to published names,
    the set replaced whole by a re-score, a refused gather publishing nothing."""
    from mlops_provider.hooks.artifacts import ArtifactStoreHook

    request.getfixturevalue({"s3": "s3_root", "gs": "gcs_root"}[kind])
    store = ArtifactStoreHook().get_store()
    _, evaluation = flights_frame
    inp = evaluation.drop(columns=[LABEL]).iloc[:6000]
    sink = (
        pa.BufferOutputStream()
    )  # a plain Parquet file as the source (a snapshot's rename is slow on the emulator)
    pq.write_table(pa.Table.from_pandas(inp, preserve_index=False), sink)
    store.write_bytes("exports/june.parquet", sink.getvalue().to_pybytes())
    split_dataset(store, store.uri("exports/june.parquet"), "landing/june", 3)
    listed = list_partitions(store, store.uri("landing/june"))
    first = gather_predictions(
        store, partitions=listed, parts=score_all(store, trained, listed), output_key=OUT
    )
    parts = score_all(store, trained, listed, version=2)
    store.delete(store.key_of(parts[1]["output_uri"]))
    with pytest.raises(IncompletePredictionsError, match="partition 1"):
        gather_predictions(store, partitions=listed, parts=parts, output_key=OUT)
    assert prediction_set_files(store, store.uri(OUT)) == [p["uri"] for p in first["parts"]]
    parts = score_all(store, trained, listed, version=2)
    gather_predictions(store, partitions=listed, parts=parts, output_key=OUT)
    files = prediction_set_files(store, store.uri(OUT))
    table = pa.concat_tables([pq.read_table(store.open_read(store.key_of(f))) for f in files])
    assert table.column("flight_id").to_pylist() == inp["flight_id"].tolist()
    assert set(table.column("model_version").to_pylist()) == {2} and len(store.list_dir(f"{OUT}/parts")) == 3


def test_rescoring_a_run_replaces_the_set_whole(store, trained, june):
    snap, inp = june
    listed = split_dataset(store, snap.uri, "landing/june", 3)["partitions"]
    gather_predictions(
        store, partitions=listed, parts=score_all(store, trained, listed, version=1), output_key=OUT
    )
    old = set(store.list_dir(f"{OUT}/parts"))
    out = gather_predictions(
        store,
        partitions=listed,
        parts=score_all(store, trained, listed, version=2),
        output_key=OUT,
        model={"version": 2, "model_sha256": "a" * 64},
    )
    table = read_set(store)
    assert table.num_rows == len(inp) == len(set(table.column("flight_id").to_pylist()))
    assert set(table.column("model_version").to_pylist()) == {2} and out["model_version"] == 2
    assert set(store.list_dir(f"{OUT}/parts")).isdisjoint(old) and len(store.list_dir(f"{OUT}/parts")) == 3


@pytest.mark.parametrize(
    "defect", ["missing_file", "missing_result", "rows", "sha256", "mixed_versions", "pin"]
)
def test_gather_refuses_and_publishes_nothing(store, trained, june, tmp_path, defect):
    snap, _ = june
    listed = split_dataset(store, snap.uri, "landing/june", 4)["partitions"]
    parts = score_all(store, trained, listed)
    pin = {"version": 1, "model_sha256": "a" * 64}
    staged = store.key_of(parts[2]["output_uri"])
    expect = {
        "missing_file": r"partition 2 .*part-00002.parquet\): its part is missing",
        "missing_result": r"partition 2 .*no scored part \(missing\)",
        "rows": r"partition 1 .*: \d+ predicted rows .* expected \d+",
        "sha256": (
            r"partition 2 .*sha256 of .*part-00002/predictions.parquet is [0-9a-f]{64}, "
            r"its scoring task recorded"
        ),
        "mixed_versions": r"different model versions",
        "pin": r"used v1 sha256 a{64}, not the pinned v1 sha256 b{64}",
    }[defect]
    if defect == "missing_file":
        store.delete(staged)
    elif defect == "missing_result":
        del parts[2]
    elif defect == "rows":
        listed[1] = {**listed[1], "rows": listed[1]["rows"] + 1}
    elif defect == "sha256":  # same rows, other content (a score changed after the task recorded it)
        t = pq.read_table(store.path(staged))
        t = t.set_column(2, "score", pa.array([0.5] * t.num_rows, type=pa.float64()))
        sink = pa.BufferOutputStream()
        pq.write_table(t, sink)
        store.write_bytes(staged, sink.getvalue().to_pybytes())
    elif defect == "mixed_versions":
        parts[3] = {**parts[3], "model_version": 7}
        pin = None
    else:
        pin = {"version": 1, "model_sha256": "b" * 64}
    with pytest.raises(IncompletePredictionsError, match=expect) as err:
        gather_predictions(store, partitions=listed, parts=parts, output_key=OUT, model=pin)
    assert "The 'parts' parameter of gather_predictions must hold one verified part per partition" in str(
        err.value
    )
    assert "Nothing was published" in str(err.value)
    assert published_files(tmp_path) == []


def test_a_refused_gather_keeps_the_published_set(store, trained, june):
    snap, inp = june
    listed = split_dataset(store, snap.uri, "landing/june", 2)["partitions"]
    first = gather_predictions(
        store, partitions=listed, parts=score_all(store, trained, listed), output_key=OUT
    )
    parts = score_all(store, trained, listed, version=2)
    store.delete(store.key_of(parts[0]["output_uri"]))
    with pytest.raises(IncompletePredictionsError, match="partition 0"):
        gather_predictions(store, partitions=listed, parts=parts, output_key=OUT)
    assert store.read_json(f"{OUT}/manifest.json") == {
        k: v for k, v in first.items() if k not in ("manifest_uri", "reused")
    }
    assert set(read_set(store).column("model_version").to_pylist()) == {1} and read_set(
        store
    ).num_rows == len(inp)


def test_list_partitions_refuses_incomplete_empty_or_foreign_folders(store, june, tmp_path):
    snap, _ = june
    split_dataset(store, snap.uri, "landing/june", 3)
    store.write_bytes("landing/june/.tmp-abc-part-9.parquet", b"partial")  # an upload in progress
    assert len(list_partitions(store, store.uri("landing/june"))) == 3
    store.delete("landing/june/_SUCCESS")
    with pytest.raises(NotFoundError, match=r"'uri' parameter .* has no '_SUCCESS' marker"):
        list_partitions(store, "landing/june")
    assert len(list_partitions(store, "landing/june", marker=None)) == 3
    with pytest.raises(InvalidInputError, match=r"'max_partitions' .* at most 2 partitions. Got 3 files"):
        list_partitions(store, "landing/june", marker=None, max_partitions=2)
    store.write_bytes("landing/empty/_SUCCESS", b"")
    with pytest.raises(
        EmptyDatasetError, match=r"'uri' parameter .* files matching '\*.parquet'. Got .*empty"
    ):
        list_partitions(store, "landing/empty")
    with pytest.raises(
        InvalidInputError, match=r"'uri' parameter .* under the artifact root .* Got 's3://elsewhere/x'"
    ):
        list_partitions(store, "s3://elsewhere/x")
    store.write_bytes("landing/bad/part-0.parquet", b"PAR1 not parquet PAR1")
    with pytest.raises(CorruptArtifactError, match="part-0.parquet"):
        list_partitions(store, "landing/bad", marker=None)


def test_split_dataset_checks_partitions_and_relands_a_changed_source(store, june, flights_frame):
    snap, inp = june
    for bad in (0, "8", True, len(inp) + 1):
        with pytest.raises(InvalidInputError, match=r"'partitions' parameter of split_dataset must be"):
            split_dataset(store, snap.uri, "landing/june", bad)
    split_dataset(store, snap.uri, "landing/june", 4)
    fewer = inp.iloc[:1000]
    other = datasets.write_snapshot(
        store, "june_head", [pa.Table.from_pandas(fewer, preserve_index=False)], source="t"
    )
    out = split_dataset(store, other.uri, "landing/june", 2)
    assert not out["reused"] and sorted(store.list_dir("landing/june")) == [
        "_SUCCESS",
        "part-00000.parquet",
        "part-00001.parquet",
    ]
    assert sum(p["rows"] for p in list_partitions(store, "landing/june")) == 1000


# ------------------------------------------------------------------------------------ operators
@pytest.fixture
def registered(store, trained):
    from mlops_provider.core.registry import ModelRegistry
    from mlops_provider.core.serialization import dump_model

    model, res = trained
    reg = ModelRegistry(store)
    mv, _ = reg.register("flights_delay", dump_model(model), run_key="r1", spec=res.spec.to_dict())
    reg.promote("flights_delay", mv.version, actor="test", reason="test")
    return mv


def mapped_context(task_id, map_index, run_id="manual__1"):
    ctx = context_for(task_id, run_id)
    ctx["ti"].map_index = map_index
    return ctx


def test_pinned_mapped_scoring_and_gather_operators(store, registered, june, tmp_path):
    from mlops_provider.operators.batch_score import BatchScoreOperator, ResolveModelVersionOperator
    from mlops_provider.operators.partitions import GatherPredictionsOperator, PartitionDatasetOperator

    snap, inp = june
    pin = ResolveModelVersionOperator(task_id="model", model_name="flights_delay").execute(
        context_for("model")
    )
    assert pin["version"] == registered.version and pin["model_sha256"] == registered.model_sha256
    partitions = PartitionDatasetOperator(
        task_id="partitions", dataset=snap.to_dict(), output_uri="landing/june", partitions=3
    ).execute(context_for("partitions"))
    op = BatchScoreOperator(
        task_id="score", model_name="flights_delay", dataset=None, model_ref=pin, passthrough=["flight_id"]
    )
    parts = []
    for p in partitions:
        op.dataset = p
        parts.append(op.execute(mapped_context("score", p["index"])))
    retry = BatchScoreOperator(
        task_id="score",
        model_name="flights_delay",
        dataset=partitions[1],
        model_ref=pin,
        passthrough=["flight_id"],
    ).execute(mapped_context("score", 1))
    assert (
        retry["output_uri"] == parts[1]["output_uri"] and retry["output_sha256"] == parts[1]["output_sha256"]
    )
    assert parts[1]["output_uri"].endswith("runs/test_dag/manual__1/score/part-00001/predictions.parquet")
    gather = GatherPredictionsOperator(
        task_id="gather", model_name="flights_delay", partitions=partitions, parts=parts, model=pin
    )
    out = gather.execute(context_for("gather", "manual__1"))
    assert (
        out["rows"] == len(inp) and out["model_version"] == registered.version and len(out["part_uris"]) == 3
    )
    assert read_set(store, "predictions/flights_delay/test_dag/manual__1").num_rows == len(inp)

    bad = GatherPredictionsOperator(
        task_id="gather", model_name="flights_delay", partitions=partitions, parts=parts[:2], model=pin
    )
    with pytest.raises(
        AirflowFailException,
        match=r"IncompletePredictionsError: The 'parts' parameter of "
        r"GatherPredictionsOperator \(task 'gather'\) must hold one verified part per partition \(3 "
        r"expected, 2 given\)",
    ):
        bad.execute(context_for("gather", "manual__2"))
    assert not store.exists("predictions/flights_delay/test_dag/manual__2")


def test_a_pin_that_does_not_match_the_registry_is_refused(store, registered, june, tmp_path):
    from mlops_provider.operators.batch_score import BatchScoreOperator, ResolveModelVersionOperator

    snap, _ = june
    wrong = {"model": "flights_delay", "version": registered.version, "model_sha256": "0" * 64}
    op = BatchScoreOperator(task_id="score", model_name="flights_delay", dataset=snap.uri, model_ref=wrong)
    with pytest.raises(
        AirflowFailException,
        match=r"IntegrityError: The 'model_ref' parameter .* pins flights_delay "
        r"v1 with sha256 0{64}, but the registry's v1 has sha256",
    ):
        op.execute(mapped_context("score", 0))
    for ref in (
        {"version": "one", "model_sha256": "0" * 64},
        {"model": "other", "version": 1, "model_sha256": "0" * 64},
        [1],
        True,
    ):
        with pytest.raises(
            AirflowFailException,
            match=r"The 'model_ref' parameter of BatchScoreOperator \(task "
            r"'score'\) must be an alias, a version number, or a pinned version",
        ):
            BatchScoreOperator(
                task_id="score", model_name="flights_delay", dataset=snap.uri, model_ref=ref
            ).execute(context_for("score"))
    with pytest.raises(
        AirflowFailException, match=r"'model_ref' parameter of ResolveModelVersionOperator .* Got ''"
    ):
        ResolveModelVersionOperator(task_id="model", model_name="flights_delay", model_ref="").execute(
            context_for("m")
        )
    with pytest.raises(
        AirflowFailException, match=r"NotFoundError: Model 'flights_delay' has no 'staging' alias"
    ):
        ResolveModelVersionOperator(task_id="model", model_name="flights_delay", model_ref="staging").execute(
            context_for("m")
        )
    assert published_files(tmp_path) == [] and files_under(tmp_path / "artifacts" / "runs") == []


def test_list_partitions_operator_names_the_task(store, june):
    from mlops_provider.operators.partitions import ListPartitionsOperator

    op = ListPartitionsOperator(task_id="partitions", uri="landing/nothing")
    with pytest.raises(
        AirflowFailException,
        match=r"NotFoundError: The 'uri' parameter of ListPartitionsOperator "
        r"\(task 'partitions'\) must name a complete set of partitions",
    ):
        op.execute(context_for("partitions"))
