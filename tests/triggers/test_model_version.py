"""ModelVersionTrigger and ModelVersionSensor on a real registry with tiny skops models."""

from __future__ import annotations

import asyncio
import threading
import time

import numpy as np
import pytest
from airflow.sdk.exceptions import AirflowException, AirflowSensorTimeout, TaskDeferred
from sklearn.linear_model import LogisticRegression

from mlops_provider.core.registry import ModelRegistry
from mlops_provider.core.serialization import dump_model
from mlops_provider.sensors.model_version import ModelVersionSensor
from mlops_provider.triggers.model_version import ModelVersionTrigger
from tests.helpers import context_for

FAST = 0.05


def model_bytes(c=1.0):
    X = np.arange(40, dtype=float).reshape(20, 2)
    return dump_model(LogisticRegression(C=c).fit(X, [0, 1] * 10))


@pytest.fixture
def registry(store):
    reg = ModelRegistry(store)
    for i in range(3):
        reg.register("flights", model_bytes(1.0 + i), run_key=f"r{i}")
    reg.promote("flights", 1, actor="test", reason="first")
    return reg


def first_event(trigger, timeout=10):
    async def go():
        gen = trigger.run()
        try:
            return (await gen.__anext__()).payload
        finally:
            await gen.aclose()

    return asyncio.run(asyncio.wait_for(go(), timeout))


def later(fn, delay=0.2):
    t = threading.Timer(delay, fn)
    t.start()
    return t


def test_trigger_fires_when_the_champion_moves(registry, artifact_root):
    trig = ModelVersionTrigger(
        artifact_root=artifact_root, model_name="flights", last_seen_version=1, poke_interval=FAST, timeout=10
    )
    started = time.monotonic()
    t = later(lambda: registry.promote("flights", 3, actor="test", reason="better"))
    event = first_event(trig)
    t.join()
    assert event == {"status": "success", "model": "flights", "alias": "champion", "version": 3}
    assert time.monotonic() - started >= 0.2  # it waited for the promotion
    # no last_seen_version: any champion satisfies it at once
    assert first_event(ModelVersionTrigger(artifact_root=artifact_root, model_name="flights"))["version"] == 3


def test_trigger_waits_for_a_version(registry, artifact_root):
    trig = ModelVersionTrigger(
        artifact_root=artifact_root, model_name="flights", version=4, poke_interval=FAST
    )
    t = later(lambda: registry.register("flights", model_bytes(9.0), run_key="r9"))
    assert first_event(trig) == {"status": "success", "model": "flights", "alias": "champion", "version": 4}
    t.join()


def test_trigger_errors_and_timeout(registry, artifact_root, tmp_path):
    bad_model = first_event(ModelVersionTrigger(artifact_root=artifact_root, model_name="flihgts"))
    assert bad_model["status"] == "error" and "'flihgts' is not in the registry" in bad_model["message"]
    assert "flights" in bad_model["message"]  # names the registered ones
    invalid = first_event(ModelVersionTrigger(artifact_root=artifact_root, model_name="../etc"))
    assert invalid["status"] == "error" and "model_name" in invalid["message"]
    bad_root = first_event(
        ModelVersionTrigger(artifact_root=f"file://{tmp_path}/nowhere", model_name="flights")
    )
    assert bad_root["status"] == "error" and "not in the registry" in bad_root["message"]
    bad_scheme = first_event(ModelVersionTrigger(artifact_root="nosuchfs://x/y", model_name="flights"))
    assert bad_scheme["status"] == "error" and "nosuchfs" in bad_scheme["message"]
    timed_out = first_event(
        ModelVersionTrigger(
            artifact_root=artifact_root,
            model_name="flights",
            last_seen_version=1,
            poke_interval=FAST,
            timeout=0.2,
        )
    )
    assert timed_out["status"] == "error" and timed_out["reason"] == "timeout"
    assert "Timed out after 0.2s" in timed_out["message"]


def test_trigger_serialize_round_trip(artifact_root):
    trig = ModelVersionTrigger(artifact_root=artifact_root, model_name="m", last_seen_version="2", timeout=60)
    classpath, kwargs = trig.serialize()
    assert classpath == "mlops_provider.triggers.model_version.ModelVersionTrigger"
    assert kwargs["last_seen_version"] == 2
    assert ModelVersionTrigger(**kwargs).serialize() == (classpath, kwargs)


def test_sensor_poke_before_and_after_promotion(registry, artifact_root):
    sensor = ModelVersionSensor(
        task_id="wait",
        model_name="flights",
        last_seen_version="1",
        artifact_root=artifact_root,
        deferrable=False,
    )
    ctx = context_for("wait")
    assert not sensor.poke(ctx)
    registry.promote("flights", 2, actor="test", reason="better")
    done = sensor.poke(ctx)
    assert done and done.xcom_value == {"model": "flights", "alias": "champion", "version": 2}
    missing = ModelVersionSensor(
        task_id="w2", model_name="nope", artifact_root=artifact_root, deferrable=False
    )
    with pytest.raises(AirflowException, match="'nope' is not in the registry"):
        missing.poke(ctx)


def test_sensor_poke_mode_execute_returns_the_result(registry, artifact_root):
    sensor = ModelVersionSensor(
        task_id="wait",
        model_name="flights",
        version=2,
        artifact_root=artifact_root,
        deferrable=False,
        poke_interval=FAST,
        timeout=5,
    )
    assert sensor.execute(context_for("wait")) == {"model": "flights", "alias": "champion", "version": 2}


def test_sensor_defers_with_a_context_free_trigger(registry, artifact_root, monkeypatch):
    # the root comes from MLOPS_ARTIFACT_ROOT (artifact_root fixture) and is resolved before deferring
    sensor = ModelVersionSensor(
        task_id="wait", model_name="flights", last_seen_version=1, poke_interval=FAST, timeout=30
    )
    with pytest.raises(TaskDeferred) as info:
        sensor.execute(context_for("wait"))
    deferred = info.value
    assert isinstance(deferred.trigger, ModelVersionTrigger) and deferred.method_name == "execute_complete"
    _, kwargs = deferred.trigger.serialize()
    assert kwargs["artifact_root"] == artifact_root and kwargs["last_seen_version"] == 1
    assert (kwargs["poke_interval"], kwargs["timeout"]) == (FAST, 30)

    monkeypatch.delenv("MLOPS_ARTIFACT_ROOT")  # the trigger does not need the task's environment
    t = later(lambda: registry.promote("flights", 3, actor="test", reason="better"))
    event = first_event(deferred.trigger)
    t.join()
    assert sensor.execute_complete(context_for("wait"), event) == {
        "model": "flights",
        "alias": "champion",
        "version": 3,
    }


def test_sensor_execute_complete_errors(artifact_root):
    sensor = ModelVersionSensor(task_id="wait", model_name="flights", artifact_root=artifact_root)
    with pytest.raises(AirflowException, match="bad root"):
        sensor.execute_complete({}, {"status": "error", "message": "bad root"})
    with pytest.raises(AirflowSensorTimeout, match="Timed out"):
        sensor.execute_complete({}, {"status": "error", "reason": "timeout", "message": "Timed out after 1s"})


def test_sensor_returns_at_once_when_already_satisfied(registry, artifact_root):
    sensor = ModelVersionSensor(task_id="wait", model_name="flights", artifact_root=artifact_root)
    assert sensor.execute(context_for("wait")) == {"model": "flights", "alias": "champion", "version": 1}
