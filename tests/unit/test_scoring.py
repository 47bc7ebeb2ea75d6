import numpy as np
import pyarrow.parquet as pq
import pytest

from mlops_provider.core import datasets, modeling, scoring
from mlops_provider.core.errors import CorruptArtifactError, MissingColumnsError
from mlops_provider.examples.nycflights import CATEGORICAL, FEATURES, LABEL
from tests.conftest import files_under


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


def snapshot(store, df):
    import pyarrow as pa

    return datasets.write_snapshot(
        store, "score_in", [pa.Table.from_pandas(df, preserve_index=False)], source="t"
    )


def test_scores_every_row_in_batches_like_a_direct_predict(store, trained, flights_frame):
    model, res = trained
    _, evaluation = flights_frame
    inp = evaluation.drop(columns=[LABEL])
    snap = snapshot(store, inp)
    seen = []
    out = scoring.batch_score(
        store,
        model,
        res.spec,
        model_name="m",
        model_version=3,
        model_sha256="abc",
        input_uri=snap.uri,
        output_key="predictions/m/run1",
        passthrough=["flight_id"],
        batch_size=5000,
        progress=lambda r, t, s: seen.append((r, t)),
    )
    assert out.rows == len(inp) and out.batches == -(-len(inp) // 5000)
    assert seen[-1] == (len(inp), len(inp))
    table = pq.read_table(store.path("predictions/m/run1/predictions.parquet"))
    assert table.column_names == ["flight_id", "prediction", "score", "model_version"]
    assert table.column("flight_id").to_pylist() == inp["flight_id"].tolist()
    assert set(table.column("model_version").to_pylist()) == {3}
    direct = model.predict_proba(modeling.prepare_frame(inp, res.spec))[:, 1]
    np.testing.assert_allclose(table.column("score").to_numpy(), direct)
    manifest = store.read_json("predictions/m/run1/manifest.json")
    assert manifest["rows"] == len(inp) and manifest["output_sha256"] == store.sha256(
        "predictions/m/run1/predictions.parquet"
    )


def test_missing_feature_column_writes_nothing(store, trained, flights_frame, tmp_path):
    model, res = trained
    _, evaluation = flights_frame
    snap = snapshot(store, evaluation.drop(columns=["visib"]))
    with pytest.raises(MissingColumnsError, match=r"\['visib'\]"):
        scoring.batch_score(
            store,
            model,
            res.spec,
            model_name="m",
            model_version=1,
            model_sha256="x",
            input_uri=snap.uri,
            output_key="predictions/m/r",
        )
    assert not [f for f in files_under(tmp_path / "artifacts") if f.startswith("predictions")]


def test_corrupt_input_writes_nothing(store, trained, tmp_path):
    model, res = trained
    store.write_bytes("inputs/broken.parquet", b"PAR1" + b"\0" * 100 + b"PAR1")
    with pytest.raises(CorruptArtifactError, match="broken.parquet"):
        scoring.batch_score(
            store,
            model,
            res.spec,
            model_name="m",
            model_version=1,
            model_sha256="x",
            input_uri=store.uri("inputs/broken.parquet"),
            output_key="predictions/m/r",
        )
    assert not [f for f in files_under(tmp_path / "artifacts") if f.startswith("predictions")]


def test_failure_mid_stream_keeps_previous_output(store, trained, flights_frame, tmp_path):
    model, res = trained
    _, evaluation = flights_frame
    snap = snapshot(store, evaluation.drop(columns=[LABEL]))
    scoring.batch_score(
        store,
        model,
        res.spec,
        model_name="m",
        model_version=1,
        model_sha256="x",
        input_uri=snap.uri,
        output_key="predictions/m/r",
        batch_size=4000,
    )
    before = store.sha256("predictions/m/r/predictions.parquet")
    calls = []

    def boom(rows, total, elapsed):
        calls.append(rows)
        if len(calls) == 3:
            raise RuntimeError("worker lost")

    with pytest.raises(RuntimeError, match="worker lost"):
        scoring.batch_score(
            store,
            model,
            res.spec,
            model_name="m",
            model_version=2,
            model_sha256="y",
            input_uri=snap.uri,
            output_key="predictions/m/r",
            batch_size=4000,
            progress=boom,
        )
    assert store.sha256("predictions/m/r/predictions.parquet") == before
    assert [f for f in files_under(tmp_path / "artifacts") if f.startswith("predictions")] == [
        "predictions/m/r/manifest.json",
        "predictions/m/r/predictions.parquet",
    ]
