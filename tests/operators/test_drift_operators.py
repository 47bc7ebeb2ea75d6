"""Drift detection and champion monitoring on the real SQLite warehouse, called as Airflow calls them
(execute(context)) with the Task SDK's own OutletEventAccessors in the context: a retrain request is
attached to the alias outlet only when the policy says so, and parses back as a RetrainRequest."""

from __future__ import annotations

import pytest
from airflow.sdk import Asset, AssetAlias
from airflow.sdk.exceptions import AirflowFailException
from airflow.sdk.execution_time.context import OutletEventAccessors
from airflow.sdk.execution_time.task_runner import _serialize_outlet_events

from mlops_provider.core.events import RetrainRequest, parse_triggering_events
from mlops_provider.examples.nycflights import CATEGORICAL, FEATURES, LABEL, month_query
from mlops_provider.operators.drift import DetectDriftOperator, EvaluateChampionOperator
from mlops_provider.operators.evaluate import EvaluateModelOperator
from mlops_provider.operators.extract import ExtractOperator
from mlops_provider.operators.register import RegisterModelOperator
from mlops_provider.operators.train import TrainModelOperator
from tests.helpers import context_for

CONN = "mlops_warehouse"
MODEL = "flights_delay"
RETRAIN_ASSET = "x-mlops://flights_delay/retrain-requested"
WEATHER = {"temp", "dewp", "humid"}


def extract(name, start=None, end=None, sql=None):
    op = ExtractOperator(
        task_id=f"extract_{name}", dataset_name=name, conn_id=CONN, sql=sql or month_query(start, end)
    )
    return op.execute(context_for(op.task_id))


def ctx(task_id, run_id="manual__1"):
    c = context_for(task_id, run_id)
    c["outlet_events"] = OutletEventAccessors()  # what the task runner puts in a real task's context
    return c


def emitted(context, alias):
    """What the task runner would send to the API server for this task's outlet events."""
    return [
        e
        for e in _serialize_outlet_events(context["outlet_events"])
        if e.get("source_alias_name") == alias.name
    ]


@pytest.fixture
def champion(warehouse, store):
    """v1 of flights_delay, trained on June 2013 (summer), evaluated on July, promoted."""
    train_snap = extract("flights_train", "2013-06-01", "2013-07-01")
    eval_snap = extract("flights_eval", "2013-07-01", "2013-08-01")
    model = TrainModelOperator(
        task_id="train",
        dataset=train_snap,
        label=LABEL,
        features=FEATURES,
        categorical=CATEGORICAL,
        model_params={"max_iter": 30},
    ).execute(context_for("train"))
    verdict = EvaluateModelOperator(
        task_id="evaluate", model_name=MODEL, model=model, dataset=eval_snap
    ).execute(context_for("evaluate"))
    reg = RegisterModelOperator(task_id="register", model_name=MODEL, evaluation=verdict).execute(
        context_for("register")
    )
    assert reg["promoted"] and reg["lineage"]["train_dataset"]["uri"] == train_snap["uri"]
    return {"train": train_snap, "eval": eval_snap, "version": reg, "verdict": verdict}


def detect(window, run_id="manual__1", **kw):
    op = DetectDriftOperator(
        task_id="drift",
        model_name=MODEL,
        dataset=window,
        psi_threshold=kw.pop("psi_threshold", {"default": 0.2, "month": 1e9}),
        **kw,
    )
    c = ctx("drift", run_id)
    return op, op.execute(c), c


def test_outlet_is_an_alias_never_a_static_asset():
    op = DetectDriftOperator(task_id="d", model_name=MODEL, dataset="x")
    assert op.outlets == [AssetAlias(name="mlops-retrain-requested:flights_delay")]
    other = Asset("file:///data/out")
    op = EvaluateChampionOperator(
        task_id="e", model_name=MODEL, dataset="x", outlets=[other], retrain_alias="mine"
    )
    assert op.outlets == [other, AssetAlias(name="mine")]


def test_winter_drifts_from_summer_and_requests_a_retrain(champion, store):
    december = extract("flights_window", "2013-12-01", "2014-01-01")
    op, out, c = detect(december)
    assert out["retrain"] and out["champion_version"] == 1 and WEATHER <= set(out["drifted_features"])
    assert "month" not in out["drifted_features"]  # its threshold was set out of reach
    assert out["report_uri"] == store.uri(f"drift/{MODEL}/{december['sha256']}.json")
    saved = store.read_json(store.key_of(out["report_uri"]))
    assert (
        saved["drifted_features"] == out["drifted_features"]
        and saved["reference"]["uri"] == champion["train"]["uri"]
    )
    (event,) = emitted(c, op.retrain_alias)
    assert event["dest_asset_key"] == {"name": RETRAIN_ASSET, "uri": RETRAIN_ASSET}
    assert event["extra"] == out["event"]
    (req,) = parse_triggering_events([{"extra": event["extra"]}], store.root)
    assert isinstance(req, RetrainRequest) and req.reason == "drift" and req.champion_version == 1
    assert req.drifted_features == out["drifted_features"] and req.report_uri == out["report_uri"]
    assert req.scores["temp"] >= 0.2 and req.window == {
        "start": "2013-06-01T00:00:00+00:00",
        "end": "2013-07-01T00:00:00+00:00",
    }


def test_champions_own_training_data_does_not_drift_and_emits_nothing(champion, store):
    op, out, c = detect(champion["train"])
    assert not out["retrain"] and out["n_drifted"] == 0 and out["event"] is None
    assert all(f["psi"] < 1e-6 for f in out["features"])
    assert emitted(c, op.retrain_alias) == [] and list(_serialize_outlet_events(c["outlet_events"])) == []


def test_reference_profile_is_built_once_and_reused(champion, store):
    key = f"{store.key_of(champion['train']['uri'])}/profile.json"
    assert not store.exists(key)
    _, first, _ = detect(champion["train"])
    assert not first["profile_reused"] and first["profile_uri"] == store.uri(key)
    stat = store.fs.info(store.path(key))
    _, second, _ = detect(extract("flights_window", "2013-12-01", "2014-01-01"), run_id="manual__2")
    assert second["profile_reused"] and store.fs.info(store.path(key))["mtime"] == stat["mtime"]
    # a subset of the cached features is served from the same cache, untouched
    _, third, _ = detect(
        champion["train"], run_id="manual__3", features=["temp", "carrier"], psi_threshold=0.2
    )
    assert third["profile_reused"] and [f["feature"] for f in third["features"]] == ["temp", "carrier"]
    assert (
        store.fs.info(store.path(key))["mtime"] == stat["mtime"]
        and len(store.read_json(key)["features"]) == 15
    )


def test_persistence_needs_consecutive_drifting_windows(champion, store):
    december = extract("flights_dec", "2013-12-01", "2014-01-01")
    january = extract("flights_jan", "2013-01-01", "2013-02-01")
    op, first, c1 = detect(december, persistence=2)
    assert first["n_drifted"] >= 1 and not first["retrain"] and "only 1 recorded" in first["policy_reason"]
    assert emitted(c1, op.retrain_alias) == []
    _, again, _ = detect(
        december, run_id="manual__1b", persistence=2
    )  # the same window again does not count twice
    assert not again["retrain"] and len(again["history"]) == 1
    op, second, c2 = detect(january, run_id="manual__2", persistence=2)
    assert second["retrain"] and [h["window_sha256"] for h in second["history"]] == [
        december["sha256"],
        january["sha256"],
    ]
    (event,) = emitted(c2, op.retrain_alias)
    assert (
        RetrainRequest.parse(event["extra"], artifact_root=store.root).drifted_features
        == second["drifted_features"]
    )
    # a window without drift in between breaks the run
    _, third, _ = detect(champion["train"], run_id="manual__3", persistence=2)
    assert not third["retrain"]


def test_drift_bad_input_fails_clearly(champion, store):
    with pytest.raises(AirflowFailException, match="'persistence' parameter of DetectDriftOperator.*0"):
        detect(champion["train"], persistence=0)
    with pytest.raises(AirflowFailException, match=r"NotFoundError.*'nope' has no 'champion'"):
        DetectDriftOperator(task_id="d", model_name="nope", dataset=champion["train"]).execute(ctx("d"))
    renamed = extract(
        "renamed", sql=month_query("2013-12-01", "2013-12-08").replace(", carrier,", ", carrier AS airline,")
    )
    with pytest.raises(AirflowFailException, match=r"MissingColumnsError.*drift window.*\['carrier'\]"):
        detect(renamed)


def test_champion_performance_drop_requests_a_retrain(champion, store):
    recorded = champion["verdict"]["metrics"]["challenger"]["roc_auc"]
    op = EvaluateChampionOperator(task_id="monitor", model_name=MODEL, dataset=champion["eval"])
    c = ctx("monitor")
    same = op.execute(c)  # the data it was evaluated on: nothing lost
    assert same["metric"] == "roc_auc" and same["recorded"] == pytest.approx(recorded) and same["drop"] == 0.0
    assert not same["retrain"] and same["event"] is None and emitted(c, op.retrain_alias) == []
    # labels flipped: the champion now ranks delays backwards
    flipped = extract(
        "flights_flipped",
        sql=month_query("2013-07-01", "2013-08-01").replace("THEN 1 ELSE 0", "THEN 0 ELSE 1"),
    )
    c = ctx("monitor", "manual__2")
    worse = EvaluateChampionOperator(task_id="monitor", model_name=MODEL, dataset=flipped).execute(c)
    assert worse["retrain"] and worse["current"] == pytest.approx(1 - recorded, abs=1e-9)
    (event,) = emitted(c, op.retrain_alias)
    req = RetrainRequest.parse(event["extra"], artifact_root=store.root)
    assert req.reason == "performance" and req.champion_version == 1 and req.drifted_features == []
    assert req.scores == {
        "recorded": pytest.approx(recorded),
        "current": pytest.approx(worse["current"]),
        "drop": pytest.approx(worse["drop"]),
    }
    assert store.read_json(store.key_of(req.report_uri))["drop"] == worse["drop"]
    with pytest.raises(AirflowFailException, match="'tolerance' parameter of EvaluateChampionOperator"):
        EvaluateChampionOperator(task_id="m", model_name=MODEL, dataset=flipped, tolerance=-1).execute(
            ctx("m")
        )
    with pytest.raises(AirflowFailException, match="'metric' parameter.*'auc'"):
        EvaluateChampionOperator(task_id="m", model_name=MODEL, dataset=flipped, metric="auc").execute(
            ctx("m")
        )
