"""A storage outage in the middle of a retraining run: the GCS emulator holding the artifact root is
stopped once the training snapshot is written and started again 35 s later (its objects are on
disk, so they survive). The run through dag.test() is survived by Airflow's task retries: it
succeeds, and nothing is duplicated (one snapshot per window, one model version, one promotion) or
half-written (every artifact readable, the model's sha256 as registered)."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time

import pytest

pytestmark = pytest.mark.e2e
MODEL = "flights_outage"
OUTAGE_SECONDS = 35  # longer than gcsfs's own retries of one request (~31 s), so tasks do fail

DAG_FILE = """
import datetime as dt
from airflow.sdk import DAG
from mlops_provider.chains import retrain_chain
from mlops_provider.examples.nycflights import CATEGORICAL, FEATURES, LABEL

SELECT = (f"SELECT id AS flight_id, {', '.join(FEATURES)}, "
          f"CASE WHEN arr_delay > 15 THEN 1 ELSE 0 END AS {LABEL} FROM flights")
with DAG(dag_id="mlops_outage", schedule=None, start_date=dt.datetime(2013, 1, 1, tzinfo=dt.timezone.utc),
         catchup=False, render_template_as_native_obj=True,
         params={"model_params": {"max_iter": 30}, "seed": 7, "thresholds": {"roc_auc": 0.6},
                 "min_improvement": 0.0}):
    retrain_chain(model_name="flights_outage", conn_id="mlops_warehouse", label=LABEL, features=FEATURES,
                  categorical=CATEGORICAL, expectations=[{"type": "expect_column_values_to_not_be_null",
                                                          "kwargs": {"column": "carrier"}}],
                  train_sql=SELECT + " WHERE arr_delay IS NOT NULL AND sched_dep_at >= '2013-05-01'"
                                     " AND sched_dep_at < '2013-06-01' ORDER BY id",
                  eval_sql=SELECT + " WHERE arr_delay IS NOT NULL AND sched_dep_at >= '2013-06-01'"
                                    " AND sched_dep_at < '2013-07-01' ORDER BY id",
                  io_retries=6, io_retry_delay=dt.timedelta(seconds=3))
"""


def test_retraining_survives_a_storage_outage(airflow_db, warehouse, tmp_path, monkeypatch):
    from mlops_provider.core.registry import ModelRegistry
    from mlops_provider.hooks.artifacts import ArtifactStoreHook
    from tests.helpers import dag_bag_of
    from tests.servers import GcsEmulator

    server = GcsEmulator(tmp_path / "gcs").start()
    try:
        bucket = server.new_bucket("outage")
        root = f"gs://{bucket}/mlops"
        monkeypatch.setenv("AIRFLOW_CONN_MLOPS_GCS_OUTAGE", json.dumps(server.connection()))
        monkeypatch.setenv("MLOPS_ARTIFACT_ROOT", root)
        monkeypatch.setenv("MLOPS_ARTIFACT_CONN_ID", "mlops_gcs_outage")
        bag = dag_bag_of(tmp_path / "dags", monkeypatch, "mlops-outage-tests", {"outage_dag.py": DAG_FILE})
        store = ArtifactStoreHook(root, "mlops_gcs_outage").get_store()

        outage = {}

        def cut_storage_after_the_training_snapshot():
            deadline = time.monotonic() + 300
            while time.monotonic() < deadline:
                names = store.list_dir(f"datasets/{MODEL}_train")
                if any(
                    store.exists(f"datasets/{MODEL}_train/{n}/manifest.json")
                    for n in names
                    if not n.startswith("_")
                ):
                    break
                time.sleep(0.2)
            outage["down"] = time.monotonic()
            server.stop()
            time.sleep(OUTAGE_SECONDS)
            server.start()
            outage["up"] = time.monotonic()

        cutter = threading.Thread(target=cut_storage_after_the_training_snapshot, daemon=True)
        cutter.start()
        dr = bag.dags["mlops_outage"].test(logical_date=dt.datetime(2013, 7, 1, tzinfo=dt.timezone.utc))
        cutter.join(timeout=120)
        assert outage.get("up"), "the outage was never injected"
        tis = {ti.task_id: ti for ti in dr.get_task_instances()}
        assert dr.state == "success", {t: ti.state for t, ti in tis.items()}
        retried = {t: ti.try_number for t, ti in tis.items() if ti.try_number > 1}
        assert retried, "no task was retried: the outage did not hit the run"

        reg = ModelRegistry(store)
        (mv,) = reg.list_versions(MODEL)  # one version, however many attempts registered
        assert reg.get_alias(MODEL) == mv.version == 1
        assert [(e.version, e.sequence) for e in reg.history(MODEL)] == [(1, 1)]
        model, _ = reg.load(MODEL, 1)  # the bytes match the registered sha256
        assert hasattr(model, "predict_proba")
        for kind in ("train", "eval"):
            snaps = [n for n in store.list_dir(f"datasets/{MODEL}_{kind}") if not n.startswith("_")]
            assert len(snaps) == 1, (kind, snaps)
            manifest = store.read_json(f"datasets/{MODEL}_{kind}/{snaps[0]}/manifest.json")
            assert (
                store.sha256(f"datasets/{MODEL}_{kind}/{snaps[0]}/data.parquet")
                == manifest["sha256"]
                == snaps[0]
            )
        keys = store.fs.find(store.root_path)
        assert not [k for k in keys if "/.tmp-" in k], keys
    finally:
        server.stop()
