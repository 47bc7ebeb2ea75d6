"""``ChampionChangedTrigger``: an asset event each time a model's alias (``champion``) moves.

Attach it to the model's champion asset with an ``AssetWatcher`` and schedule scoring on it::

    from airflow.sdk import Asset, AssetWatcher

    from mlops_provider.triggers.champion import ChampionChangedTrigger

    champion = Asset("x-mlops://flights_delay/champion", watchers=[AssetWatcher(
        name="flights_delay_champion", trigger=ChampionChangedTrigger(model_name="flights_delay"))])

It watches the registry itself, so every promotion fires — by a retraining DAG, by
``mlops models promote|rollback``, or from the registry page — with the same payload:
``{"type": "champion_changed", "model", "alias", "version", "previous_version", "actor", "reason",
"changed_at"}``. The last version it fired for is kept in the asset's state store in the
triggerer (memory otherwise), so a restarted triggerer does not fire again for the same move.
On its first start it records the current champion without firing.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseEventTrigger, TriggerEvent

STATE_KEY = "mlops.champion.last_version"


def read_alias(
    artifact_root: str | None, model_name: str, alias: str, conn_id: str | None
) -> dict[str, Any] | None:
    """The alias record (version, actor, reason, updated_at, previous_version) or None (blocking)."""
    from mlops_provider.core.registry import ModelRegistry
    from mlops_provider.hooks.artifacts import resolve_conn_id, resolve_root
    from mlops_provider.triggers.new_data import open_store

    store = open_store(resolve_root(artifact_root), resolve_conn_id(conn_id))
    return ModelRegistry(store).alias_record(model_name, alias)


class ChampionChangedTrigger(BaseEventTrigger):
    def __init__(
        self,
        *,
        model_name: str,
        alias: str = "champion",
        artifact_root: str | None = None,
        conn_id: str | None = None,
        poke_interval: float = 30.0,
    ):
        super().__init__()
        self.model_name = model_name
        self.alias = alias
        self.artifact_root = artifact_root
        self.conn_id = conn_id
        self.poke_interval = poke_interval
        self._memory: int | None = None

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            "mlops_provider.triggers.champion.ChampionChangedTrigger",
            {
                "model_name": self.model_name,
                "alias": self.alias,
                "artifact_root": self.artifact_root,
                "conn_id": self.conn_id,
                "poke_interval": self.poke_interval,
            },
        )

    async def _load(self) -> int | None:
        store = getattr(self, "asset_state_store", None)
        if store is not None and hasattr(store, "aget"):
            try:
                value = await store.aget(STATE_KEY, None)
                return None if value is None else int(value)
            except ValueError:  # several assets share this trigger: no single state store
                pass
        return self._memory

    async def _save(self, version: int) -> None:
        self._memory = version
        store = getattr(self, "asset_state_store", None)
        if store is not None and hasattr(store, "aset"):
            try:
                await store.aset(STATE_KEY, version)
            except ValueError:
                pass

    async def run(self) -> AsyncIterator[TriggerEvent]:
        last = await self._load()
        first = last is None
        while True:
            try:
                record = await asyncio.to_thread(
                    read_alias, self.artifact_root, self.model_name, self.alias, self.conn_id
                )
            except Exception as err:  # a storage blip: try again at the next poll
                self.log.warning("Could not read %s/%s: %s", self.model_name, self.alias, err)
                record = None
            if record is not None:
                version = int(record["version"])
                if first:
                    await self._save(version)
                    first = False
                elif version != last:
                    await self._save(version)
                    from mlops_provider.core.events import ChampionChanged

                    event = ChampionChanged.from_alias_record(self.model_name, self.alias, record, last)
                    yield TriggerEvent(event.to_extra())
                last = version
            elif first:
                first = False  # no champion yet: the first promotion will fire
                last = None
            await asyncio.sleep(self.poke_interval)
