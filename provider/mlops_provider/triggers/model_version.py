"""``ModelVersionTrigger``: the deferred half of
:class:`~mlops_provider.sensors.model_version.ModelVersionSensor`.

Polls the registry kept on the artifact store until an alias (default ``"champion"``) points at a
version other than ``last_seen_version`` -- or, with ``version=N``, until version N exists -- and
fires ``{"status": "success", "model", "alias", "version"}``. A bad root or model name, or the
timeout, fires ``{"status": "error", "message": ...}``. Everything it needs is in its kwargs (the
artifact root is resolved by the sensor before deferring), so it never reads task context.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from mlops_provider.core.registry import CHAMPION


def check_model_version(
    artifact_root: str,
    model_name: str,
    alias: str = CHAMPION,
    version: int | None = None,
    last_seen_version: int | None = None,
    conn_id: str | None = None,
) -> int | None:
    """The version that satisfies the wait, or None to keep waiting (blocking).

    Raises :class:`~mlops_provider.core.errors.MlopsError` (or an ``OSError``/``ValueError`` from
    the filesystem) for a model name that is invalid or not in the registry, or an unusable root.
    """
    from mlops_provider.core.errors import NotFoundError
    from mlops_provider.core.names import check_name
    from mlops_provider.core.registry import ModelRegistry
    from mlops_provider.triggers.new_data import open_store

    check_name(model_name, "model_name", "ModelVersionSensor")
    registry = ModelRegistry(open_store(artifact_root, conn_id))
    if model_name not in registry.list_models():
        raise NotFoundError(
            f"Model {model_name!r} is not in the registry at {registry.store.root}; "
            f"registered models: {registry.list_models() or 'none'}"
        )
    if version is not None:
        versions = {mv.version for mv in registry.list_versions(model_name)}
        return int(version) if int(version) in versions else None
    current = registry.get_alias(model_name, alias)
    if current is None or (last_seen_version is not None and current == int(last_seen_version)):
        return None
    return current


class ModelVersionTrigger(BaseTrigger):
    """Wait for a model alias to move (or a version to appear); see the module docstring."""

    def __init__(
        self,
        *,
        artifact_root: str,
        model_name: str,
        alias: str = CHAMPION,
        version: int | None = None,
        last_seen_version: int | None = None,
        conn_id: str | None = None,
        poke_interval: float = 60.0,
        timeout: float | None = None,
    ):
        super().__init__()
        self.artifact_root = artifact_root
        self.model_name = model_name
        self.alias = alias
        self.version = None if version is None else int(version)
        self.last_seen_version = None if last_seen_version in (None, "") else int(last_seen_version)
        self.conn_id = conn_id
        self.poke_interval = float(poke_interval)
        self.timeout = None if timeout is None else float(timeout)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            "mlops_provider.triggers.model_version.ModelVersionTrigger",
            {
                "artifact_root": self.artifact_root,
                "model_name": self.model_name,
                "alias": self.alias,
                "version": self.version,
                "last_seen_version": self.last_seen_version,
                "conn_id": self.conn_id,
                "poke_interval": self.poke_interval,
                "timeout": self.timeout,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        deadline = None if self.timeout is None else time.monotonic() + self.timeout
        args = (
            self.artifact_root,
            self.model_name,
            self.alias,
            self.version,
            self.last_seen_version,
            self.conn_id,
        )
        while True:
            try:
                found = await asyncio.to_thread(check_model_version, *args)
            except Exception as err:
                yield TriggerEvent({"status": "error", "message": f"{type(err).__name__}: {err}"})
                return
            if found is not None:
                yield TriggerEvent(
                    {"status": "success", "model": self.model_name, "alias": self.alias, "version": found}
                )
                return
            if deadline is not None and time.monotonic() >= deadline:
                what = (
                    f"version {self.version}" if self.version is not None else f"alias {self.alias!r} to move"
                )
                yield TriggerEvent(
                    {
                        "status": "error",
                        "reason": "timeout",
                        "message": f"Timed out after {self.timeout:g}s waiting for {what} of model "
                        f"{self.model_name!r} at {self.artifact_root}",
                    }
                )
                return
            await asyncio.sleep(self.poke_interval)
