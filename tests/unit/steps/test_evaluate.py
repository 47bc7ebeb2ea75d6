"""evaluate_challenger without Airflow, notebook style, on scikit-learn's bundled datasets (breast
cancer: binary, wine: multiclass, diabetes: regression); every metric is checked against
scikit-learn computed here from the model's own predictions."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes, load_wine
from sklearn.metrics import accuracy_score, f1_score, log_loss, mean_squared_error, roc_auc_score
from sklearn.model_selection import train_test_split

from mlops_provider.core.datasets import write_snapshot
from mlops_provider.core.errors import InvalidParameterError
from mlops_provider.core.modeling import train_model
from mlops_provider.core.registry import ModelRegistry
from mlops_provider.core.serialization import dump_model
from mlops_provider.core.steps.evaluate import EvaluateParams, check_trained, evaluate_challenger
from mlops_provider.core.steps.register import RegisterParams, register_and_promote
from mlops_provider.core.steps.run import RunInfo
from mlops_provider.core.storage import ArtifactStore

LOGREG = "sklearn.linear_model.LogisticRegression"


# ------------------------------------------------------------------------ helpers (also used by test_drift)
def frames(loader, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(train, evaluation) halves of a bundled dataset; its label column is ``target``."""
    df = loader(as_frame=True).frame
    stratify = df["target"] if loader is not load_diabetes else None
    return train_test_split(df, test_size=0.4, random_state=seed, stratify=stratify)


def snapshot(store: ArtifactStore, name: str, df: pd.DataFrame) -> dict:
    import pyarrow as pa

    table = pa.Table.from_pandas(df.reset_index(drop=True), preserve_index=False)
    return write_snapshot(store, name, [table], source=f"sklearn:{name}").to_dict()


def train(store: ArtifactStore, snap: dict, df: pd.DataFrame, estimator: str, run: RunInfo, **params):
    """A training result as TrainModelOperator returns it: ``(model, result)``."""
    model, res = train_model(df, label="target", estimator=estimator, params=params or None, seed=0)
    data = dump_model(model)
    key = f"{run.folder}/model.skops"
    out = res.to_dict()
    out.update(
        model_uri=store.uri(key),
        model_sha256=store.write_bytes(key, data),
        model_bytes=len(data),
        dataset={"uri": snap["uri"], "sha256": snap["sha256"], "rows": snap["rows"]},
    )
    return model, out


def features(df: pd.DataFrame) -> pd.DataFrame:
    return df.drop(columns="target")


@pytest.fixture
def store(tmp_path):
    return ArtifactStore(f"file://{tmp_path}/root")


@pytest.fixture(scope="module")
def cancer():
    return frames(load_breast_cancer)


def evaluate(store, trained, snap, task="evaluate", run_id="nb-1", **kw):
    return evaluate_challenger(
        EvaluateParams(model_name=kw.pop("model_name", "cancer"), **kw),
        challenger=trained,
        dataset=snap,
        store=store,
        registry=ModelRegistry(store),
        run=RunInfo.local(task, run_id=run_id),
    )


@pytest.fixture
def cancer_trained(store, cancer):
    train_df, eval_df = cancer
    snap = snapshot(store, "cancer_train", train_df)
    model, trained = train(store, snap, train_df, LOGREG, RunInfo.local("train", run_id="nb-1"), C=0.05)
    return model, trained, snapshot(store, "cancer_eval", eval_df)


# --------------------------------------------------------------------------- binary
def test_binary_metrics_match_sklearn(store, cancer, cancer_trained):
    model, trained, eval_snap = cancer_trained
    eval_df = cancer[1]
    result = evaluate(store, trained, eval_snap)
    proba = model.predict_proba(features(eval_df))[:, list(model.classes_).index(1)]
    got = result.verdict.metrics["challenger"]
    assert got["roc_auc"] == pytest.approx(roc_auc_score(eval_df["target"], proba), abs=1e-6)
    assert got["log_loss"] == pytest.approx(log_loss(eval_df["target"], proba), abs=1e-6)
    assert got["rows"] == len(eval_df)


def test_first_version_is_promoted_under_the_bootstrap_policy(store, cancer_trained):
    _, trained, eval_snap = cancer_trained
    result = evaluate(store, trained, eval_snap)
    assert result.passed and result.verdict.decision == "promote" and result.verdict.champion_version is None
    assert "no champion yet" in result.summary


def test_bootstrap_fail_rejects_the_first_version(store, cancer_trained):
    _, trained, eval_snap = cancer_trained
    result = evaluate(store, trained, eval_snap, bootstrap="fail")
    assert not result.passed and result.to_dict()["decision"] == "reject"


def test_missed_threshold_is_a_result_with_its_delta(store, cancer_trained):
    _, trained, eval_snap = cancer_trained
    result = evaluate(store, trained, eval_snap, thresholds={"roc_auc": 0.99999})
    (check,) = result.verdict.failed_checks
    assert not result.passed and check.metric == "roc_auc"
    assert check.delta == pytest.approx(check.challenger - 0.99999, abs=1e-6)


def test_verdict_and_report_are_written_in_the_run_folder(store, cancer_trained):
    _, trained, eval_snap = cancer_trained
    run = RunInfo.local("evaluate", run_id="nb-7")
    result = evaluate(store, trained, eval_snap, run_id="nb-7")
    assert result.verdict_uri == store.uri(f"{run.folder}/verdict.json")
    assert store.read_json(f"{run.folder}/verdict.json") == result.to_dict()
    assert result.report_uri == store.uri(f"{run.folder}/evaluation.html")
    assert store.read_bytes(f"{run.folder}/evaluation.html").startswith(b"<!DOCTYPE html>")


def test_result_dict_carries_the_challenger_and_alias(store, cancer_trained):
    _, trained, eval_snap = cancer_trained
    out = evaluate(store, trained, eval_snap, alias="production").to_dict()
    assert out["challenger"] == trained and out["alias"] == "production" and out["gate"] == "model"
    assert out["eval_dataset"] == {k: eval_snap[k] for k in ("uri", "sha256", "rows")}


def test_lineage_names_the_model_and_the_data(store, cancer_trained):
    _, trained, eval_snap = cancer_trained
    lineage = evaluate(store, trained, eval_snap).lineage()
    assert lineage["inputs"][0] == trained["model_uri"] and lineage["inputs"][1][0] == eval_snap["data_uri"]
    assert lineage["step"] == "evaluate" and lineage["details"]["decision"] == "promote"


def test_challenger_is_compared_with_the_registered_champion(store, cancer, cancer_trained):
    model_v1, trained_v1, eval_snap = cancer_trained
    first = evaluate(store, trained_v1, eval_snap)
    registry = ModelRegistry(store)
    register_and_promote(
        RegisterParams("cancer"),
        trained=trained_v1,
        verdict=first.to_dict(),
        store=store,
        registry=registry,
        run=RunInfo.local("register", run_id="nb-1"),
    )
    train_snap = snapshot(store, "cancer_train", cancer[0])  # the same snapshot again
    model_v2, trained_v2 = train(
        store, train_snap, cancer[0], LOGREG, RunInfo.local("train", run_id="nb-2"), C=1.0
    )
    result = evaluate(store, trained_v2, eval_snap, run_id="nb-2")
    y = cancer[1]["target"]
    auc = {
        role: roc_auc_score(y, m.predict_proba(features(cancer[1]))[:, 1])
        for role, m in (("challenger", model_v2), ("champion", model_v1))
    }
    check = result.verdict.checks[-1]
    assert result.verdict.champion_version == 1 and check.kind == "champion"
    assert check.challenger == pytest.approx(auc["challenger"], abs=1e-6)
    assert check.champion == pytest.approx(auc["champion"], abs=1e-6)
    assert result.passed == (auc["challenger"] > auc["champion"])
    assert result.verdict.comparison["method"] == "delong"


# --------------------------------------------------------------------------- multiclass, regression
def wine_names(df: pd.DataFrame) -> pd.DataFrame:
    return df.assign(target=df["target"].map({0: "barolo", 1: "grignolino", 2: "barbera"}))


def test_multiclass_log_loss_matches_sklearn(store):
    train_df, eval_df = (wine_names(df) for df in frames(load_wine))
    snap = snapshot(store, "wine_train", train_df)
    model, trained = train(store, snap, train_df, LOGREG, RunInfo.local("train"), C=0.5)
    result = evaluate(store, trained, snapshot(store, "wine_eval", eval_df), model_name="wine")
    expected = log_loss(eval_df["target"], model.predict_proba(features(eval_df)))
    assert result.verdict.compare_metric == "log_loss" and result.verdict.task == "multiclass"
    assert result.verdict.metrics["challenger"]["log_loss"] == pytest.approx(expected, abs=1e-6)


def test_multiclass_with_integer_labels(store):
    train_df, eval_df = frames(load_wine)
    snap = snapshot(store, "wine_train", train_df)
    model, trained = train(store, snap, train_df, LOGREG, RunInfo.local("train"), C=0.5)
    result = evaluate(
        store, trained, snapshot(store, "wine_eval", eval_df), model_name="wine", thresholds={"f1_macro": 0.0}
    )
    pred = model.predict(features(eval_df))
    challenger = result.verdict.metrics["challenger"]
    assert result.verdict.task == "multiclass"
    assert challenger["accuracy"] == pytest.approx(accuracy_score(eval_df["target"], pred), abs=1e-6)
    expected_f1 = f1_score(eval_df["target"], pred, average="macro")
    assert challenger["f1_macro"] == pytest.approx(expected_f1, abs=1e-6)


def test_regression_rmse_matches_sklearn(store):
    train_df, eval_df = frames(load_diabetes)
    snap = snapshot(store, "diabetes_train", train_df)
    model, trained = train(store, snap, train_df, "sklearn.linear_model.Ridge", RunInfo.local("train"))
    result = evaluate(store, trained, snapshot(store, "diabetes_eval", eval_df), model_name="diabetes")
    expected = math.sqrt(mean_squared_error(eval_df["target"], model.predict(features(eval_df))))
    assert result.verdict.compare_metric == "rmse" and result.verdict.task == "regression"
    assert result.verdict.metrics["challenger"]["rmse"] == pytest.approx(expected, abs=1e-6)


def test_clustered_interval_resamples_whole_groups(store, cancer, cancer_trained):
    """With cluster_column the champion comparison is a group bootstrap of the given size."""
    _, trained_v1, _ = cancer_trained
    eval_df = cancer[1].assign(group=np.arange(len(cancer[1])) % 20)
    eval_snap = snapshot(store, "cancer_eval_grouped", eval_df)
    first = evaluate(store, trained_v1, eval_snap)
    register_and_promote(
        RegisterParams("cancer"),
        trained=trained_v1,
        verdict=first.to_dict(),
        store=store,
        registry=ModelRegistry(store),
        run=RunInfo.local("register"),
    )
    result = evaluate(store, trained_v1, eval_snap, run_id="nb-2", cluster_column="group", resamples=200)
    assert result.verdict.comparison["method"] == "cluster_bootstrap (20 groups)"
    assert result.verdict.comparison["resamples"] == 200 and result.verdict.comparison["improvement"] == 0


# --------------------------------------------------------------------------- bad input
def test_bad_parameter_is_named_before_anything_runs():
    with pytest.raises(InvalidParameterError, match=r"'resamples' parameter of evaluate_challenger.*\[100, "):
        EvaluateParams(model_name="cancer", resamples=5)


def test_template_text_is_coerced_and_errors_name_the_caller():
    params = EvaluateParams.build("my notebook", model_name="cancer", min_improvement="0.01", seed="3")
    assert params.min_improvement == 0.01 and params.seed == 3
    with pytest.raises(InvalidParameterError, match="'compare_metric' parameter of my notebook.*'roc_acu'"):
        EvaluateParams.build("my notebook", model_name="cancer", compare_metric="roc_acu")


def test_metric_that_does_not_fit_the_task_fails_before_any_read(store, cancer_trained):
    _, trained, _ = cancer_trained
    with pytest.raises(
        InvalidParameterError, match="'compare_metric' parameter of evaluate_challenger.*rmse"
    ):
        evaluate(store, trained, store.uri("datasets/nowhere"), compare_metric="rmse")
    assert store.list_dir(RunInfo.local("evaluate", run_id="nb-1").folder) == []


def test_slice_column_must_be_a_column(store, cancer_trained):
    _, trained, eval_snap = cancer_trained
    with pytest.raises(InvalidParameterError, match="'slice_column' parameter.*'carrier'"):
        evaluate(store, trained, eval_snap, slice_column="carrier")


def test_challenger_must_be_a_training_result():
    with pytest.raises(InvalidParameterError, match="'model' parameter of op.*'model_sha256'"):
        check_trained({"model_uri": "file:///m.skops", "spec": {}}, "op", "model")
