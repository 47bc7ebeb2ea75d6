import threading

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from mlops_provider.core.errors import IntegrityError, InvalidInputError, NotFoundError, UnsafeModelError
from mlops_provider.core.registry import ModelRegistry
from mlops_provider.core.serialization import dump_model


def model_bytes(c=1.0):
    X = np.arange(40, dtype=float).reshape(20, 2)
    return dump_model(LogisticRegression(C=c).fit(X, [0, 1] * 10))


def test_register_reuses_version_for_same_run_and_model(store):
    reg = ModelRegistry(store)
    v1, c1 = reg.register("m", model_bytes(), run_key="dag/run1/register", metrics={"roc_auc": 0.7})
    again, c2 = reg.register("m", model_bytes(), run_key="dag/run1/register")
    v2, c3 = reg.register("m", model_bytes(0.5), run_key="dag/run2/register")
    assert (v1.version, c1, again.version, c2, v2.version, c3) == (1, True, 1, False, 2, True)
    assert [v.version for v in reg.list_versions("m")] == [1, 2]
    assert reg.list_models() == ["m"]
    assert reg.get_version("m", 1).metrics == {"roc_auc": 0.7}


def test_promote_rollback_and_history(store):
    reg = ModelRegistry(store)
    for i in range(3):
        reg.register("m", model_bytes(1.0 + i), run_key=f"r{i}")
    reg.promote("m", 1, actor="a", reason="first")
    reg.promote("m", 3, actor="b", reason="better")
    assert reg.get_alias("m") == 3
    ev = reg.rollback("m", actor="oncall", reason="v3 misbehaves")
    assert (ev.version, ev.previous_version, ev.action) == (1, 3, "rollback")
    assert reg.get_alias("m") == 1
    hist = reg.history("m")
    assert [(e.version, e.actor, e.reason) for e in hist] == [
        (1, "a", "first"),
        (3, "b", "better"),
        (1, "oncall", "v3 misbehaves"),
    ]
    with pytest.raises(NotFoundError, match="no version 9"):
        reg.promote("m", 9, actor="x", reason="y")
    with pytest.raises(InvalidInputError, match="needs a reason"):
        reg.promote("m", 2, actor="x", reason="")


def test_load_checks_sha_and_format(store):
    reg = ModelRegistry(store)
    mv, _ = reg.register("m", model_bytes(), run_key="r")
    reg.promote("m", mv.version, actor="t", reason="t")
    model, got = reg.load("m", "champion")
    assert got.version == 1 and hasattr(model, "predict_proba")
    key = store.key_of(mv.model_uri)
    store.write_bytes(key, model_bytes(7.0))  # swapped file
    with pytest.raises(IntegrityError, match="pins"):
        reg.load("m", 1)
    import pickle

    raw = pickle.dumps(LogisticRegression())
    mv2, _ = reg.register("p", raw, run_key="r")  # a pickle smuggled in as model.skops
    with pytest.raises(UnsafeModelError, match="pickle"):
        reg.load("p", mv2.version)


def test_concurrent_registrations_get_unique_versions(store):
    reg = ModelRegistry(store)
    data = [model_bytes(1.0 + i) for i in range(8)]
    out, barrier = [], threading.Barrier(8)

    def go(i):
        barrier.wait()
        out.append(reg.register("m", data[i], run_key=f"run{i}")[0].version)

    threads = [threading.Thread(target=go, args=(i,)) for i in range(8)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert sorted(out) == list(range(1, 9))
    assert sorted(v.run_key for v in reg.list_versions("m")) == sorted(f"run{i}" for i in range(8))


def test_missing_model_and_alias(store):
    reg = ModelRegistry(store)
    with pytest.raises(NotFoundError, match="no 'champion' alias"):
        reg.resolve("nope")
    assert reg.get_alias("nope") is None and reg.list_versions("nope") == []
