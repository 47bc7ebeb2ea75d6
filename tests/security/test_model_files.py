"""Hostile model files: whoever can write the artifact store must not run code on a worker.

Each file is planted in the registry the way a writer of the store could (model + metadata with the
right sha256), then loaded through the registry as BatchScoreOperator and EvaluateModelOperator do.
The expected refusal names the offending type; the marker file the gadget would create never
appears; the champion does not move."""

from __future__ import annotations

import functools
import operator
import os
import pickle
import warnings

import numpy as np
import pytest

from mlops_provider.core.errors import (
    CorruptArtifactError,
    IntegrityError,
    InvalidInputError,
    UnsafeModelError,
)
from tests.security.conftest import MODEL, no_marker, plant_version


def skops_bytes(obj) -> bytes:
    """skops bytes of anything (what a hostile writer produces; our dump_model would refuse)."""
    import skops.io as sio

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return sio.dumps(obj)


def pipeline_with(func, wine_model):
    """The real wine pipeline with a FunctionTransformer(func) in front: passes fit, runs func at predict."""
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer

    pipe, _ = wine_model
    ft = FunctionTransformer(func=func)
    ft.fit(np.zeros((2, 2)))
    return Pipeline([("gadget", ft), *pipe.steps])


def run_script(marker):
    from sklearn.utils._testing import assert_run_python_script_without_output

    return functools.partial(
        assert_run_python_script_without_output, f"open({str(marker)!r}, 'w').write('pwned')"
    )


def load_planted(sandbox, data, version=2, **kw):
    plant_version(sandbox.store, MODEL, version, data, spec=sandbox.registry.get_version(MODEL, 1).spec, **kw)
    return sandbox.registry.load(MODEL, version)


GADGETS = {
    # name: (builder(marker) -> func, the exact name the refusal must list)
    "sklearn_testing_script": (run_script, "sklearn.utils._testing.assert_run_python_script_without_output"),
    "sklearn_delete_folder": (
        lambda m: functools.partial(
            __import__("sklearn.utils._testing", fromlist=["x"])._delete_folder, str(m.parent)
        ),
        "sklearn.utils._testing._delete_folder",
    ),
    "nested_partials": (
        lambda m: functools.partial(functools.partial(run_script(m))),
        "sklearn.utils._testing.assert_run_python_script_without_output",
    ),
    "builtin_eval": (lambda m: eval, "builtins.eval"),
    "os_system": (lambda m: os.system, f"{os.system.__module__}.system"),
    "numpy_load_pickle": (lambda m: functools.partial(np.load, str(m), allow_pickle=True), "numpy.load"),
    "operator_methodcaller": (lambda m: operator.methodcaller("__reduce__"), "operator.methodcaller"),
    "operator_attrgetter": (
        lambda m: operator.attrgetter("__class__.__init__.__globals__"),
        "operator.attrgetter",
    ),
}


@pytest.mark.parametrize("gadget", sorted(GADGETS))
def test_code_running_gadgets_are_refused_by_exact_name(gadget, sandbox, wine_model, wine, tmp_path):
    build, name = GADGETS[gadget]
    marker = tmp_path / "pwned"
    data = skops_bytes(pipeline_with(build(marker), wine_model))
    with pytest.raises(UnsafeModelError, match="outside the trusted list") as err:
        load_planted(sandbox, data)
    assert name in str(err.value)
    no_marker(marker)
    sandbox.intact()


def test_the_trusted_function_check_array_still_loads(sandbox, wine_model, wine):
    """The positive control: partial(check_array, ...) is on the list, so the same shape of file loads."""
    from sklearn.utils.validation import check_array

    model, mv = load_planted(
        sandbox, skops_bytes(pipeline_with(functools.partial(check_array, dtype=None), wine_model))
    )
    assert mv.version == 2 and model.steps[0][1].func.func is check_array


def test_a_user_trusted_type_needs_its_exact_name(sandbox, wine_model, monkeypatch):
    from mlops_provider.core.serialization import load_model, sha256_bytes

    data = skops_bytes(pipeline_with(operator.methodcaller("copy"), wine_model))
    for prefix in ("operator.", "operator.*", "operator"):
        monkeypatch.setenv("MLOPS_TRUSTED_TYPES", prefix)
        with pytest.raises((UnsafeModelError, InvalidInputError)) as err:
            load_model(data, expected_sha256=sha256_bytes(data))
        assert "operator.methodcaller" in str(err.value) or prefix in str(err.value)
    monkeypatch.setenv("MLOPS_TRUSTED_TYPES", "operator.methodcaller")
    assert load_model(data, expected_sha256=sha256_bytes(data)) is not None


@pytest.mark.parametrize("protocol", [0, 2, 5])
def test_pickles_are_refused_whatever_the_protocol(protocol, sandbox, wine_model):
    data = pickle.dumps(wine_model[0], protocol=protocol)
    with pytest.raises(UnsafeModelError, match="is a pickle file"):
        load_planted(sandbox, data)
    sandbox.intact()


@pytest.mark.parametrize("pin", [None, "", "ab" * 31, "AB" * 32, "missing"])
def test_a_version_without_a_valid_pin_is_not_loaded(pin, sandbox, wine_model):
    from mlops_provider.core.serialization import dump_model

    data = dump_model(wine_model[0])
    with pytest.raises(IntegrityError, match="no valid sha256 pin"):
        if pin == "missing":
            load_planted(sandbox, data, drop_sha=True)
        else:
            load_planted(sandbox, data, sha256=pin)
    sandbox.intact()


def test_a_file_swapped_after_registration_is_not_loaded(sandbox, wine_model):
    from mlops_provider.core.serialization import dump_model, sha256_bytes

    data = dump_model(wine_model[0])
    other = bytes(reversed(data))
    with pytest.raises(IntegrityError, match="changed after registration"):
        load_planted(sandbox, data, sha256=sha256_bytes(other))
    sandbox.intact()


def test_garbage_is_not_a_model(sandbox):
    with pytest.raises(CorruptArtifactError, match="not a skops file"):
        load_planted(sandbox, b"PK\x03\x04 but not really a zip")


# ------------------------------------------------------------------ trusted types, hostile content
def _fitted(estimator: str, wine, **params):
    from mlops_provider.core.modeling import train_model

    pipe, _ = train_model(wine, label="cultivar", estimator=estimator, params=params, seed=3)
    return pipe


def _set_tree_nodes(pipe, field, value):
    """Write ``value`` into the first node's ``field`` of the first tree of a random forest."""
    tree = pipe.steps[-1][1].estimators_[0].tree_
    state = tree.__getstate__()
    state["nodes"] = state["nodes"].copy()
    state["nodes"][field][0] = value
    tree.__setstate__(state)


def _tamper_tree(pipe):
    """A random-forest tree whose first split points back at the root (an endless walk)."""
    _set_tree_nodes(pipe, "left_child", 0)
    return "node 0 has children"


def _tamper_tree_feature(pipe):
    _set_tree_nodes(pipe, "feature", 10_000)
    return "splits on feature 10000"


def _tamper_hgb_child(pipe):
    pred = pipe.steps[-1][1]._predictors[0][0]
    pred.nodes = pred.nodes.copy()
    pred.nodes["left"][0] = len(pred.nodes) + 1000
    return "node 0 has children"


def _tamper_hgb_feature(pipe):
    pred = pipe.steps[-1][1]._predictors[0][0]
    pred.nodes = pred.nodes.copy()
    pred.nodes["feature_idx"][0] = 1 << 40
    return "splits on feature"


def _tamper_gb_columns(pipe):
    gb = pipe.steps[-1][1]
    gb.estimators_ = np.concatenate([gb.estimators_, gb.estimators_[:, :1]], axis=1)
    return "trees per stage"


def _tamper_svc(pipe):
    svc = pipe.steps[-1][1]
    svc._n_support = svc._n_support.copy()
    svc._n_support[0] += 50
    return "_n_support"


TAMPERED = {
    "forest_tree_cycle": ("sklearn.ensemble.RandomForestClassifier", {"n_estimators": 5}, _tamper_tree),
    "forest_tree_feature": (
        "sklearn.ensemble.RandomForestClassifier",
        {"n_estimators": 5},
        _tamper_tree_feature,
    ),
    "hgb_child_out_of_range": (
        "sklearn.ensemble.HistGradientBoostingClassifier",
        {"max_iter": 5},
        _tamper_hgb_child,
    ),
    "hgb_feature_out_of_range": (
        "sklearn.ensemble.HistGradientBoostingClassifier",
        {"max_iter": 5},
        _tamper_hgb_feature,
    ),
    "gradient_boosting_extra_column": (
        "sklearn.ensemble.GradientBoostingClassifier",
        {"n_estimators": 5},
        _tamper_gb_columns,
    ),
    "svc_support_counts": ("sklearn.svm.SVC", {}, _tamper_svc),
}


@pytest.mark.parametrize("case", sorted(TAMPERED))
def test_trusted_types_with_out_of_range_indices_are_refused(case, sandbox, wine):
    """Only trusted types, but indices the compiled predict would follow outside its arrays."""
    estimator, params, tamper = TAMPERED[case]
    pipe = _fitted(estimator, wine, **params)
    expected = tamper(pipe)
    with pytest.raises(UnsafeModelError, match="is not a well-formed model") as err:
        load_planted(sandbox, skops_bytes(pipe))
    assert expected in str(err.value)
    sandbox.intact()


@pytest.mark.parametrize(
    "estimator",
    [
        "sklearn.ensemble.RandomForestClassifier",
        "sklearn.ensemble.ExtraTreesClassifier",
        "sklearn.ensemble.GradientBoostingClassifier",
        "sklearn.ensemble.HistGradientBoostingClassifier",
        "sklearn.linear_model.LogisticRegression",
        "sklearn.svm.SVC",
        "sklearn.tree.DecisionTreeClassifier",
    ],
)
def test_supported_estimators_round_trip_with_no_user_additions(estimator, wine):
    """The exact list covers what the supported estimators are made of (3 string classes here)."""
    from mlops_provider.core.serialization import dump_model, load_model, sha256_bytes

    pipe = _fitted(estimator, wine)
    data = dump_model(pipe)
    X = wine.drop(columns="cultivar")
    loaded = load_model(data, expected_sha256=sha256_bytes(data))
    assert (
        (loaded.predict_proba(X) == pipe.predict_proba(X)).all() if hasattr(pipe, "predict_proba") else True
    )


def test_a_model_that_raises_while_scoring_fails_without_retry(sandbox, wine_model, wine):
    """An unexpected exception at predict is not transient: the task fails at once (no 3 retries)."""
    import pyarrow as pa
    from airflow.sdk.exceptions import AirflowFailException
    from sklearn.utils.validation import check_array

    from mlops_provider.core.datasets import write_snapshot
    from mlops_provider.core.errors import ModelExecutionError
    from mlops_provider.operators.batch_score import BatchScoreOperator
    from tests.helpers import context_for

    # trusted function, hostile arguments: check_array demands a billion rows at predict time
    pipe = pipeline_with(functools.partial(check_array, dtype=None, ensure_min_samples=10**9), wine_model)
    plant_version(
        sandbox.store, MODEL, 2, skops_bytes(pipe), spec=sandbox.registry.get_version(MODEL, 1).spec
    )
    snap = write_snapshot(
        sandbox.store,
        "wine_score",
        [pa.Table.from_pandas(wine.drop(columns="cultivar"))],
        source="sklearn wine",
    )
    op = BatchScoreOperator(task_id="score", model_name=MODEL, dataset=snap.uri, model_ref=2)
    with pytest.raises(AirflowFailException, match="ModelExecutionError") as err:
        op.execute(context_for("score"))
    assert isinstance(err.value.__cause__, ModelExecutionError)
    assert "ValueError" in str(err.value) and "1000000000" in str(err.value)
    assert not sandbox.store.exists(f"predictions/{MODEL}/test_dag/manual__2013-07-01/predictions.parquet")
    assert [
        n for n in os.listdir(sandbox.root / "predictions" / MODEL / "test_dag" / "manual__2013-07-01")
    ] == []
    sandbox.intact()
