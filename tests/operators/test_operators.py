"""Each operator on the real SQLite warehouse and a real artifact store, called as Airflow calls
it (execute(context)); bad input fails at once with a message naming what was wrong and leaves
nothing behind."""

from __future__ import annotations

import pickle

import pytest
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from mlops_provider.examples.nycflights import CATEGORICAL, FEATURES, LABEL, month_query
from mlops_provider.exceptions import DataValidationFailed, ModelGateFailed
from mlops_provider.operators.batch_score import BatchScoreOperator
from mlops_provider.operators.evaluate import EvaluateModelOperator
from mlops_provider.operators.extract import ExtractOperator
from mlops_provider.operators.register import RegisterModelOperator
from mlops_provider.operators.train import TrainModelOperator
from mlops_provider.operators.validate import ValidateDataOperator
from tests.conftest import files_under
from tests.helpers import context_for

CONN = "mlops_warehouse"
HGB = "sklearn.ensemble.HistGradientBoostingClassifier"


def extract(name, start, end, with_label=True, **kw):
    op = ExtractOperator(
        task_id=f"extract_{name}",
        dataset_name=name,
        conn_id=CONN,
        sql=kw.pop("sql", None) or month_query(start, end, with_label),
        **kw,
    )
    return op.execute(context_for(op.task_id))


def train(snap, run_id="manual__1", **kw):
    kw.setdefault("model_params", {"max_iter": 30})
    op = TrainModelOperator(
        task_id="train",
        dataset=snap,
        label=LABEL,
        features=FEATURES,
        categorical=CATEGORICAL,
        estimator=kw.pop("estimator", HGB),
        **kw,
    )
    return op.execute(context_for("train", run_id))


def evaluate(model, snap, run_id="manual__1", **kw):
    op = EvaluateModelOperator(
        task_id="evaluate", model_name="flights_delay", model=model, dataset=snap, **kw
    )
    ctx = context_for("evaluate", run_id)
    return op.execute(ctx), ctx


def register(evaluation, run_id="manual__1"):
    op = RegisterModelOperator(task_id="register", model_name="flights_delay", evaluation=evaluation)
    return op.execute(context_for("register", run_id))


@pytest.fixture
def june(warehouse, store):
    return extract("flights_train", "2013-05-01", "2013-06-01"), extract(
        "flights_eval", "2013-06-01", "2013-07-01"
    )


def test_extract_sql_snapshot_and_reuse(warehouse, store):
    a = extract("flights_eval", "2013-06-01", "2013-07-01")
    b = extract("flights_eval", "2013-06-01", "2013-07-01")
    assert a["rows"] > 25_000 and a["sha256"] == b["sha256"] and b["reused"] and not a["reused"]
    assert a["source"].startswith("sql:mlops_warehouse (sqlite://") and "2013-06-01" in a["query"]
    assert set(FEATURES + [LABEL, "flight_id"]) == set(a["data_uri"] and [c["name"] for c in a["columns"]])


def test_extract_empty_window_fails_and_writes_nothing(warehouse, store, tmp_path):
    with pytest.raises(AirflowFailException, match=r"EmptyDatasetError.*'flights_train'.*0 row|no data"):
        extract("flights_train", "2014-01-01", "2014-02-01")
    assert files_under(tmp_path / "artifacts") == []


def test_extract_from_files(tmp_path, store):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.csv").write_text("x,y\n1,2\n3,4\n")
    op = ExtractOperator(task_id="e", dataset_name="files", source_uri=f"file://{tmp_path}/in/*.csv")
    assert op.execute(context_for("e"))["rows"] == 2
    with pytest.raises(AirflowFailException, match="exactly one of the two"):
        ExtractOperator(task_id="e", dataset_name="x", sql="SELECT 1", source_uri="file:///x").execute(
            context_for("e")
        )


def test_data_gate_on_injected_defects_fail_skip_warn(warehouse, store):
    sql = (
        month_query("2013-06-01", "2013-07-01")
        .replace(
            "SELECT id AS flight_id, carrier",
            "SELECT id AS flight_id, CASE WHEN id % 50 = 0 THEN 'ZZ' ELSE carrier END AS carrier",
        )
        .replace(", distance,", ", CASE WHEN id % 100 = 1 THEN -distance ELSE distance END AS distance,")
    )
    snap = extract("defects", None, None, sql=sql)
    suite = [
        {"type": "expect_column_values_to_be_between", "kwargs": {"column": "distance", "min_value": 1}},
        {
            "type": "expect_column_values_to_be_in_set",
            "kwargs": {
                "column": "carrier",
                "value_set": [
                    "9E",
                    "AA",
                    "AS",
                    "B6",
                    "DL",
                    "EV",
                    "F9",
                    "FL",
                    "HA",
                    "MQ",
                    "OO",
                    "UA",
                    "US",
                    "VX",
                    "WN",
                    "YV",
                ],
            },
        },
        {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "origin"}},
    ]
    ctx = context_for("validate")
    with pytest.raises(DataValidationFailed) as err:
        ValidateDataOperator(task_id="validate", dataset=snap, expectations=suite).execute(ctx)
    report = ctx["ti"].xcoms["return_value"]  # pushed before raising
    assert err.value.result == report and not report["success"] and report["unsuccessful"] == 2
    fails = {f["column"]: f for f in report["failures"]}
    assert fails["distance"]["unexpected_count"] > 0 and all(
        v < 0 for v in fails["distance"]["unexpected_examples"]
    )
    assert fails["carrier"]["unexpected_examples"][0] == "ZZ"
    assert store.read_json(store.key_of(report["report_uri"]))["failures"] == report["failures"]
    with pytest.raises(AirflowSkipException, match="distance"):
        ValidateDataOperator(task_id="validate", dataset=snap, expectations=suite, on_fail="skip").execute(
            context_for("v")
        )
    warned = ValidateDataOperator(
        task_id="validate", dataset=snap, expectations=suite, on_fail="warn"
    ).execute(context_for("v"))
    assert warned["success"] is False
    with pytest.raises(AirflowFailException, match="'on_fail' parameter.*one of"):
        ValidateDataOperator(task_id="validate", dataset=snap, expectations=suite, on_fail="ignore").execute(
            context_for("v")
        )


def test_train_evaluate_register_promote_and_model_gate(june, store):
    train_snap, eval_snap = june
    model = train(train_snap)
    assert model["model_sha256"] == store.sha256(store.key_of(model["model_uri"]))
    evaluation, _ = evaluate(model, eval_snap, thresholds={"roc_auc": 0.6})
    assert evaluation["passed"] and evaluation["decision"] == "promote"
    reg = register(evaluation)
    assert reg["version"] == 1 and reg["promoted"] and reg["champion_version"] == 1 and reg["created"]
    again = register(evaluation)  # a cleared task re-run
    assert again["version"] == 1 and not again["created"]
    # a second model that cannot beat the champion: identical training -> tie -> never promoted
    model2 = train(train_snap, run_id="manual__2")
    assert model2["model_sha256"] == model["model_sha256"]
    ctx_fail = None
    with pytest.raises(ModelGateFailed, match="ties never promote"):
        _, ctx_fail = evaluate(model2, eval_snap, run_id="manual__2")
    warned, _ = evaluate(model2, eval_snap, run_id="manual__2", on_fail="warn")
    assert not warned["passed"] and warned["checks"][-1]["delta"] == 0.0
    reg2 = register(warned, run_id="manual__2")
    assert reg2["version"] == 2 and not reg2["promoted"] and reg2["champion_version"] == 1
    with pytest.raises(AirflowSkipException):
        evaluate(model2, eval_snap, run_id="manual__3", on_fail="skip")
    high, _ = evaluate(model2, eval_snap, run_id="manual__4", on_fail="warn", thresholds={"roc_auc": 0.99})
    (thr,) = [c for c in high["checks"] if c["kind"] == "threshold"]
    assert thr["threshold"] == 0.99 and thr["delta"] == pytest.approx(thr["challenger"] - 0.99, abs=1e-6)


@pytest.mark.parametrize(
    "kw, match",
    [
        ({"estimator": "os.system"}, "allow-listed import path.*'os.system'"),
        ({"estimator": "sklearn.cluster.KMeans"}, "classifier or regressor"),
        (
            {"model_params": {"max_iter": "ten"}},
            "'max_iter' parameter of HistGradientBoostingClassifier.*'ten'",
        ),
        ({"model_params": '{"max_iter": 10'}, "'model_params' parameter of TrainModelOperator.*dict"),
        ({"seed": "abc"}, "'seed' parameter of TrainModelOperator"),
    ],
)
def test_train_bad_input(june, store, kw, match, tmp_path):
    before = files_under(tmp_path / "artifacts")
    with pytest.raises(AirflowFailException, match=match):
        train(june[0], **kw)
    assert files_under(tmp_path / "artifacts") == before


def test_train_single_class_and_renamed_column(warehouse, store):
    only_late = extract("late_only", None, None, sql=month_query("2013-06-01", "2013-06-08") + "")
    only_late_sql = month_query("2013-06-01", "2013-06-08").replace("ORDER BY", "AND arr_delay > 15 ORDER BY")
    snap = extract("late_only", None, None, sql=only_late_sql)
    with pytest.raises(
        AirflowFailException, match=r"SingleClassLabelError.*'late' has a single class \(1 in all"
    ):
        train(snap)
    renamed = extract(
        "renamed",
        None,
        None,
        sql=month_query("2013-06-01", "2013-06-08").replace(", carrier,", ", carrier AS airline,"),
    )
    with pytest.raises(AirflowFailException, match=r"MissingColumnsError.*\['carrier'\].*airline"):
        train(renamed)
    assert only_late["rows"] > snap["rows"]


def test_batch_score_refuses_tampered_and_pickled_models(june, store, tmp_path):
    train_snap, eval_snap = june
    model = train(train_snap)
    evaluation, _ = evaluate(model, eval_snap)
    reg = register(evaluation)
    score_snap = extract("flights_score", "2013-07-01", "2013-07-08", with_label=False)
    op = BatchScoreOperator(
        task_id="score", model_name="flights_delay", dataset=score_snap, passthrough=["flight_id"]
    )
    ok = op.execute(context_for("score", "run_ok"))
    assert ok["rows"] == score_snap["rows"] and ok["model_version"] == reg["version"]
    key = store.key_of(reg["model_uri"])
    original = store.read_bytes(key)
    store.write_bytes(key, original[:-10] + b"0123456789")
    with pytest.raises(AirflowFailException, match="IntegrityError.*pins"):
        op.execute(context_for("score", "run_tampered"))
    store.write_bytes(key, pickle.dumps({"not": "a model"}))
    with pytest.raises(AirflowFailException, match="IntegrityError|pickle"):
        op.execute(context_for("score", "run_pickle"))
    preds = [f for f in files_under(tmp_path / "artifacts") if f.startswith("predictions")]
    assert all("run_ok" in f for f in preds)


def test_batch_score_corrupt_input(june, store, tmp_path):
    train_snap, eval_snap = june
    register(evaluate(train(train_snap), eval_snap)[0])
    store.write_bytes("inputs/july.parquet", b"PAR1garbagePAR1")
    op = BatchScoreOperator(
        task_id="score", model_name="flights_delay", dataset=store.uri("inputs/july.parquet")
    )
    with pytest.raises(AirflowFailException, match="CorruptArtifactError.*july.parquet"):
        op.execute(context_for("score"))
    assert not [f for f in files_under(tmp_path / "artifacts") if f.startswith("predictions")]


def test_evaluate_refuses_model_changed_after_training(june, store):
    train_snap, eval_snap = june
    model = train(train_snap)
    store.write_bytes(store.key_of(model["model_uri"]), pickle.dumps(object))
    with pytest.raises(AirflowFailException, match="IntegrityError"):
        evaluate(model, eval_snap)


def test_reports_links_and_lineage(june, store):
    from html.parser import HTMLParser

    train_snap, eval_snap = june
    suite = [{"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "carrier"}}]
    validate = ValidateDataOperator(task_id="validate", dataset=eval_snap, expectations=suite)
    report = validate.execute(context_for("validate"))
    link = validate.mlops_links["Data quality report"]
    assert link.endswith("/mlops/artifacts/runs/test_dag/manual__2013-07-01/validate/validation.html")
    assert store.read_bytes(store.key_of(report["report_html_uri"])).startswith(b"<!DOCTYPE html>")
    lineage = validate.get_openlineage_facets_on_complete(None)
    assert [d.name for d in lineage.inputs] == [store.path(store.key_of(eval_snap["data_uri"]))]
    assert lineage.inputs[0].facets["schema"].fields[0].name == "flight_id"
    assert lineage.run_facets["mlops"].details["success"] is True

    model = train(train_snap)
    op = EvaluateModelOperator(
        task_id="evaluate", model_name="flights_delay", model=model, dataset=eval_snap, slice_column="carrier"
    )
    verdict = op.execute(context_for("evaluate"))
    html = store.read_bytes(store.key_of(verdict["report_html_uri"])).decode()
    images = []

    class Imgs(HTMLParser):
        def handle_starttag(self, tag, attrs):
            if tag == "img":
                images.append(dict(attrs)["src"])

    Imgs().feed(html)
    folder = store.key_of(verdict["report_html_uri"]).rsplit("/", 1)[0]
    assert images and all(store.read_bytes(f"{folder}/{src}").startswith(b"\x89PNG") for src in images)
    assert "UA" in html and "roc_auc" in html  # per-carrier slices and the metric table
    assert op.mlops_links["Evaluation report"].endswith(f"/mlops/artifacts/{folder}/evaluation.html")
    ol = op.get_openlineage_facets_on_complete(None)
    assert {d.name.rsplit("/", 1)[-1] for d in ol.inputs} == {"model.skops", "data.parquet"}
    assert ol.run_facets["mlops"].details["decision"] == "promote"

    reg = RegisterModelOperator(task_id="register", model_name="flights_delay", evaluation=verdict)
    out = reg.execute(context_for("register"))
    assert reg.mlops_links["Model version"].endswith(f"/mlops/models/flights_delay/versions/{out['version']}")
    assert (
        reg.get_openlineage_facets_on_complete(None)
        .outputs[0]
        .name.endswith(f"versions/{out['version']}/model.skops")
    )
    with pytest.raises(AirflowFailException, match="'slice_column' parameter"):
        EvaluateModelOperator(
            task_id="e", model_name="flights_delay", model=model, dataset=eval_snap, slice_column="airline"
        ).execute(context_for("e"))


def test_operators_work_without_the_openlineage_provider(june, store):
    """Lineage is optional: with the openlineage provider absent, the operators still run."""
    import subprocess
    import sys

    train_snap, _ = june
    code = (
        "import sys\n"
        "sys.modules['airflow.providers.openlineage.extractors'] = None\n"
        "sys.modules['airflow.providers.common.compat.openlineage.facet'] = None\n"
        "from mlops_provider.operators.train import TrainModelOperator\n"
        "from tests.helpers import context_for\n"
        f"op = TrainModelOperator(task_id='train', dataset={train_snap['uri']!r}, label='late',\n"
        "                        model_params={'max_iter': 5})\n"
        "out = op.execute(context_for('train'))\n"
        "print(out['model_sha256'])\n"
        "try:\n"
        "    op.get_openlineage_facets_on_complete(None)\n"
        "except ImportError:\n"
        "    print('no-lineage')\n"
    )
    import os

    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=os.environ,
        cwd=str(__import__("tests.conftest").conftest.REPO),
    )
    assert out.returncode == 0, out.stderr[-2000:]
    lines = out.stdout.strip().splitlines()
    assert len(lines[-2]) == 64 and lines[-1] == "no-lineage"
