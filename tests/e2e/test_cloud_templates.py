"""The same templates, changed by configuration only: the artifact root on S3 (moto_server over HTTP)
and on GCS (gcp-storage-emulator over HTTP), each with its Airflow connection. Retraining twice and
batch scoring through dag.test() give the same versions, verdicts, model bytes and predictions as
on a local folder."""

from __future__ import annotations

import datetime as dt
import io
import json

import pytest

pytestmark = pytest.mark.e2e
MODEL = "flights_delay"


def utc(day: str) -> dt.datetime:
    return dt.datetime.fromisoformat(day).replace(tzinfo=dt.timezone.utc)


def run_templates(root: str, conn_id: str | None, env: dict[str, str]) -> dict:
    """Retrain on 2013-07-01 and 2013-08-01, score 2013-09-01; return what a user would look at."""
    import pyarrow.parquet as pq
    from airflow.dag_processing.dagbag import DagBag

    from mlops_provider.core.registry import ModelRegistry
    from mlops_provider.hooks.artifacts import ArtifactStoreHook
    from tests.conftest import REPO

    with pytest.MonkeyPatch.context() as mp:
        for k, v in env.items():
            mp.setenv(k, v)
        mp.setenv("MLOPS_ARTIFACT_ROOT", root)
        if conn_id:
            mp.setenv("MLOPS_ARTIFACT_CONN_ID", conn_id)
        else:
            mp.delenv("MLOPS_ARTIFACT_CONN_ID", raising=False)
        bag = DagBag(dag_folder=str(REPO / "dags"))
        assert bag.import_errors == {}
        states = {}
        for dag_id, day, run_after in [
            ("mlops_retrain_scheduled", "2013-07-01", None),
            ("mlops_retrain_scheduled", "2013-08-01", utc("2013-08-01") + dt.timedelta(hours=2)),
            ("mlops_batch_score", "2013-09-01", utc("2013-09-01") + dt.timedelta(hours=2)),
        ]:
            kw = {"run_after": run_after} if run_after else {}
            dr = bag.dags[dag_id].test(logical_date=utc(day), **kw)
            states[(dag_id, day)] = (dr.state, {ti.task_id: ti.state for ti in dr.get_task_instances()})
        store = ArtifactStoreHook(root, conn_id).get_store()
        reg = ModelRegistry(store)
        folder = f"predictions/{MODEL}/mlops_batch_score"
        (run_folder,) = store.list_dir(folder)
        manifest = store.read_json(f"{folder}/{run_folder}/manifest.json")
        with store.open_read(f"{folder}/{run_folder}/predictions.parquet") as f:
            table = pq.read_table(io.BytesIO(f.read()))
        leftovers = [k for k in _all_keys(store) if "/.tmp-" in k or k.endswith(".claims")]
        return {
            "states": states,
            "store": store,
            "versions": [
                {
                    "version": v.version,
                    "model_sha256": v.model_sha256,
                    "roc_auc": v.metrics["roc_auc"],
                    "passed": v.verdict["passed"],
                    "champion_version": v.verdict["champion_version"],
                    "train_sha256": v.lineage["train_dataset"]["sha256"],
                    "model_uri": v.model_uri,
                }
                for v in reg.list_versions(MODEL)
            ],
            "champion": reg.get_alias(MODEL),
            "history": [(e.version, e.previous_version, e.sequence) for e in reg.history(MODEL)],
            "manifest": manifest,
            "predictions": table.select(["flight_id", "score", "model_version"]).to_pydict(),
            "leftovers": leftovers,
        }


def _all_keys(store) -> list[str]:
    return [
        store.key_of(("" if "://" in p else f"{store.protocol}://") + p)
        for p in store.fs.find(store.root_path)
    ]


@pytest.fixture(scope="module")
def baseline(airflow_db, warehouse, tmp_path_factory):
    root = f"file://{tmp_path_factory.mktemp('cloud-baseline')}/artifacts"
    return run_templates(root, None, {})


@pytest.mark.parametrize("kind", ["s3", "gs"])
def test_templates_on_object_store_match_local(kind, baseline, request):
    server = request.getfixturevalue("s3_server" if kind == "s3" else "gcs_server")
    bucket = server.new_bucket()
    conn_id = f"mlops_{kind}_e2e"
    got = run_templates(
        f"{kind}://{bucket}/mlops",
        conn_id,
        {f"AIRFLOW_CONN_{conn_id.upper()}": json.dumps(server.connection())},
    )
    for key, (state, tasks) in got["states"].items():
        assert state == "success", (key, tasks)
    assert got["store"].protocol == ("s3" if kind == "s3" else "gs")
    assert all(v["model_uri"].startswith(f"{kind}://{bucket}/mlops/registry/") for v in got["versions"])
    # same verdicts, byte-identical models, same training snapshots
    strip = [{k: v for k, v in d.items() if k != "model_uri"} for d in got["versions"]]
    assert strip == [{k: v for k, v in d.items() if k != "model_uri"} for d in baseline["versions"]]
    assert [v["version"] for v in got["versions"]] == [1, 2]
    assert got["champion"] == baseline["champion"]
    assert [h[:2] for h in got["history"]] == [h[:2] for h in baseline["history"]]
    assert [h[2] for h in got["history"]] == list(range(1, len(got["history"]) + 1))
    # same predictions, row for row
    assert got["manifest"]["rows"] == baseline["manifest"]["rows"] > 25_000
    assert got["predictions"]["flight_id"] == baseline["predictions"]["flight_id"]
    assert got["predictions"]["score"] == pytest.approx(baseline["predictions"]["score"], abs=1e-12)
    assert set(got["predictions"]["model_version"]) == {got["champion"]}
    # nothing half-written left behind
    assert got["leftovers"] == [] and baseline["leftovers"] == []
