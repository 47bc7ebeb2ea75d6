import asyncio

import numpy as np
from sklearn.linear_model import LogisticRegression

from mlops_provider.core.registry import ModelRegistry
from mlops_provider.core.serialization import dump_model
from mlops_provider.triggers.champion import ChampionChangedTrigger


def model_bytes(c):
    X = np.arange(40, dtype=float).reshape(20, 2)
    return dump_model(LogisticRegression(C=c).fit(X, [0, 1] * 10))


class StateStore:
    """The triggerer's per-asset state store, as the trigger sees it (aget/aset)."""

    def __init__(self):
        self.data = {}

    async def aget(self, key, default=None):
        return self.data.get(key, default)

    async def aset(self, key, value):
        self.data[key] = value


def test_fires_once_per_promotion_and_survives_a_restart(store, artifact_root):
    reg = ModelRegistry(store)
    for i in range(3):
        reg.register("m", model_bytes(1.0 + i), run_key=f"r{i}")
    reg.promote("m", 1, actor="dag", reason="bootstrap")
    state = StateStore()

    async def next_event(trigger, action):
        gen = trigger.run()
        task = asyncio.ensure_future(gen.__anext__())
        await asyncio.sleep(0.2)  # the trigger has recorded the current champion without firing
        assert not task.done()
        await asyncio.to_thread(action)
        event = await asyncio.wait_for(task, 10)
        await gen.aclose()
        return event.payload

    t1 = ChampionChangedTrigger(model_name="m", artifact_root=artifact_root, poke_interval=0.05)
    t1.asset_state_store = state
    payload = asyncio.run(next_event(t1, lambda: reg.promote("m", 2, actor="cli:alice", reason="better")))
    assert payload == {
        "type": "champion_changed",
        "model": "m",
        "alias": "champion",
        "version": 2,
        "previous_version": 1,
        "actor": "cli:alice",
        "reason": "better",
        "changed_at": reg.aliases("m")["champion"]["updated_at"],
    }
    # a restarted triggerer (new instance, same state store) does not fire again for v2
    t2 = ChampionChangedTrigger(model_name="m", artifact_root=artifact_root, poke_interval=0.05)
    t2.asset_state_store = state
    payload = asyncio.run(next_event(t2, lambda: reg.rollback("m", actor="oncall", reason="v2 bad")))
    assert (payload["version"], payload["previous_version"], payload["actor"]) == (1, 2, "oncall")
    classpath, kwargs = t2.serialize()
    assert classpath == "mlops_provider.triggers.champion.ChampionChangedTrigger"
    assert ChampionChangedTrigger(**kwargs).serialize() == (classpath, kwargs)
