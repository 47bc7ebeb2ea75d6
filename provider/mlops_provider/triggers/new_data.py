"""``NewDataTrigger``: fire an asset event for each new object landing under a prefix.

Made for event-driven scheduling: attach it to an asset through an ``AssetWatcher`` and every new
(or rewritten) object under the prefix becomes one asset event, whose ``extra`` is
``{"from_trigger": True, "payload": {"uri", "size", "mtime", "trigger": "new_data"}}``::

    from airflow.sdk import Asset, AssetWatcher

    from mlops_provider.triggers.new_data import NewDataTrigger

    landing = Asset(
        "s3://landing/flights/",
        watchers=[
            AssetWatcher(
                name="flights_landing",
                trigger=NewDataTrigger(
                    uri="s3://landing/flights/", pattern="*.parquet", conn_id="aws_default", poke_interval=60
                ),
            )
        ],
    )

**Queue instead of polling (SQS).** When the bucket already publishes object-created notifications
to an SQS queue, a template can watch the queue instead of listing the prefix: install
``apache-airflow-providers-common-messaging`` and ``apache-airflow-providers-amazon`` and swap the
trigger for Airflow's message-queue trigger::

    from airflow.providers.common.messaging.triggers.msg_queue import MessageQueueTrigger

    trigger = MessageQueueTrigger(
        scheme="sqs",
        sqs_queue="https://sqs.us-east-1.amazonaws.com/123456789012/flights-landing",
        aws_conn_id="aws_default",
    )
    landing = Asset("flights_landing", watchers=[AssetWatcher(name="flights_sqs", trigger=trigger)])

(older ``common-messaging`` 1.x releases took ``MessageQueueTrigger(queue=<queue URL>)``). The
payload is then the SQS message (an S3 event notification), not this trigger's payload; the queue
deletes what it delivered, so no state is kept on the Airflow side.

**What "seen" means.** The trigger remembers ``{key: [size, mtime]}`` for the objects currently
under the prefix (entries of deleted objects are dropped, so the record stays as large as the
listing). An object fires when its key is new or its size or mtime changed. In the triggerer the
record lives in the watched asset's state store (``self.asset_state_store``), so a restarted
triggerer picks up where it stopped instead of firing again for everything; without a state store
(for example when one trigger watches several assets, or outside the triggerer) it is kept in
memory. On the very first start, objects already there are recorded without firing unless
``fire_on_existing=True``. Delivery is at-least-once: the record is saved after each batch of
events, so a triggerer killed mid-batch may fire some of that batch again.

Hidden names (any path segment starting with ``.``, such as the artifact store's ``.tmp-*`` files
of writes in progress) are never reported.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import fnmatch
import hashlib
import json
import posixpath
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from airflow.triggers.base import BaseEventTrigger, TriggerEvent

if TYPE_CHECKING:
    from mlops_provider.core.storage import ArtifactStore


STATE_VERSION = 1


def open_store(uri: str, conn_id: str | None = None) -> ArtifactStore:
    """An :class:`ArtifactStore` over ``uri``: through the Airflow connection ``conn_id`` when given
    (``ObjectStoragePath(uri, conn_id=...).fs``), else a plain fsspec filesystem. Blocking."""
    from mlops_provider.core.storage import ArtifactStore

    if conn_id and "://" in uri and not uri.startswith(("file://", "local://")):
        from airflow.sdk import ObjectStoragePath

        return ArtifactStore(uri, fs=ObjectStoragePath(uri, conn_id=conn_id).fs)
    return ArtifactStore(uri)


def _epoch(info: dict[str, Any]) -> float:
    """Modification time of an fsspec listing entry (local, s3, gcs, ...) as epoch seconds."""
    for name in ("mtime", "LastModified", "last_modified", "updated", "modified", "created"):
        value = info.get(name)
        if value is None:
            continue
        if isinstance(value, (int, float)):
            return float(value)
        if isinstance(value, str):
            try:
                value = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                continue
        if isinstance(value, dt.datetime):
            if value.tzinfo is None:
                value = value.replace(tzinfo=dt.timezone.utc)
            return value.timestamp()
    return 0.0


def iso_utc(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, tz=dt.timezone.utc).isoformat()


class NewDataTrigger(BaseEventTrigger):
    """Fire one event per new or changed object under ``uri`` (see the module docstring).

    :param uri: the prefix to watch (``file://``, ``s3://``, ``gs://``, ... or a local path).
    :param pattern: optional glob the object must match (``"*.parquet"``): against the file name,
        or against the path relative to ``uri`` when the pattern contains ``/``.
    :param conn_id: optional Airflow connection for the object store.
    :param poke_interval: seconds between two listings.
    :param fire_on_existing: on the first start (nothing recorded yet), fire for the objects
        already there instead of only recording them.
    :param recursive: also watch sub-folders (default); ``False`` lists only the prefix itself.
    :param max_tracked: at most this many objects are recorded individually; older ones are
        summarised by a time floor (an unrecorded object not newer than it counts as seen).
    """

    def __init__(
        self,
        *,
        uri: str,
        pattern: str | None = None,
        conn_id: str | None = None,
        poke_interval: float = 60.0,
        fire_on_existing: bool = False,
        recursive: bool = True,
        max_tracked: int = 10_000,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        self.uri = uri
        self.pattern = pattern or None
        self.conn_id = conn_id
        self.poke_interval = float(poke_interval)
        self.fire_on_existing = bool(fire_on_existing)
        self.recursive = bool(recursive)
        self.max_tracked = int(max_tracked)
        self._memory: dict[str, Any] | None = None  # the record when no state store is usable

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            "mlops_provider.triggers.new_data.NewDataTrigger",
            {
                "uri": self.uri,
                "pattern": self.pattern,
                "conn_id": self.conn_id,
                "poke_interval": self.poke_interval,
                "fire_on_existing": self.fire_on_existing,
                "recursive": self.recursive,
                "max_tracked": self.max_tracked,
            },
        )

    # ----------------------------------------------------------------- state
    @property
    def state_key(self) -> str:
        """The state-store key: one per watched prefix/pattern, so several watchers of one asset
        keep separate records."""
        identity = json.dumps([self.uri, self.pattern, self.conn_id, self.recursive]).encode()
        return f"mlops.new_data.seen:{hashlib.sha256(identity).hexdigest()[:16]}"

    def _store(self):
        return getattr(self, "asset_state_store", None)

    async def load_state(self) -> dict[str, Any] | None:
        """The saved record ``{"v", "floor", "seen": {key: [size, mtime]}}``, or None if none yet."""
        store = self._store()
        if store is not None and self._memory is None:
            try:
                state = await store.aget(self.state_key, None)
            except ValueError as err:  # one trigger watching several assets: no single store
                self.log.warning("Asset state store unusable (%s); remembering seen objects in memory", err)
                self.asset_state_store = None
                return self._memory
            if isinstance(state, dict) and isinstance(state.get("seen"), dict):
                return state
            return None
        return self._memory

    async def save_state(self, state: dict[str, Any]) -> None:
        self._memory = None if self._store() is not None else state
        store = self._store()
        if store is None:
            return
        try:
            await store.aset(self.state_key, state)
        except Exception as err:  # keep watching; the record stays in memory until a save works
            self.log.warning("Could not save the seen-object record to the asset state store: %s", err)
            self._memory = state

    # ----------------------------------------------------------------- listing
    def _matches(self, rel: str) -> bool:
        if any(part.startswith(".") for part in rel.split("/")):
            return False
        if not self.pattern:
            return True
        target = rel if "/" in self.pattern else posixpath.basename(rel)
        return fnmatch.fnmatchcase(target, self.pattern)

    def list_objects(self) -> tuple[ArtifactStore, dict[str, tuple[int, float]]]:
        """``{relative key: (size, mtime)}`` of the matching objects (blocking; run in a thread)."""
        store = open_store(self.uri, self.conn_id)
        root = store.root_path
        try:
            if self.recursive:
                entries = store.fs.find(root, detail=True)
            else:
                entries = {
                    e["name"]: e for e in store.fs.ls(root, detail=True) if e.get("type") != "directory"
                }
        except FileNotFoundError:
            return store, {}
        found: dict[str, tuple[int, float]] = {}
        for path, info in entries.items():
            if info.get("type") == "directory":
                continue
            path = str(path)
            if "://" in path:
                path = path.split("://", 1)[1]
            path = path.lstrip("/") if not store.is_local else path
            prefix = (root.lstrip("/") if not store.is_local else root).rstrip("/")
            if not path.startswith(prefix + "/"):
                continue
            rel = path[len(prefix) + 1 :]
            if rel and self._matches(rel):
                found[rel] = (int(info.get("size") or 0), round(_epoch(info), 6))
        return store, found

    def _new_state(self, listing: dict[str, tuple[int, float]], floor: float) -> dict[str, Any]:
        items = sorted(listing.items(), key=lambda kv: (kv[1][1], kv[0]))
        if len(items) > self.max_tracked:
            cut = len(items) - self.max_tracked
            floor = max(floor, max(m for _, (_, m) in items[:cut]))
            items = items[cut:]
        return {"v": STATE_VERSION, "floor": floor, "seen": {k: [s, m] for k, (s, m) in items}}

    # ----------------------------------------------------------------- run
    async def run(self) -> AsyncIterator[TriggerEvent]:
        while True:
            try:
                store, listing = await asyncio.to_thread(self.list_objects)
            except Exception as err:  # transient I/O or credentials: log and try again next time
                self.log.warning("Could not list %s: %s", self.uri, err)
                await asyncio.sleep(self.poke_interval)
                continue
            state = await self.load_state()
            if state is None and not self.fire_on_existing:
                self.log.info("First listing of %s: recording %d existing object(s)", self.uri, len(listing))
                await self.save_state(self._new_state(listing, 0.0))
            else:
                seen = (state or {}).get("seen", {})
                floor = float((state or {}).get("floor", 0.0))
                fresh = [
                    (mtime, rel, size)
                    for rel, (size, mtime) in listing.items()
                    if (rel in seen and list(seen[rel]) != [size, mtime])
                    or (rel not in seen and mtime > floor)
                ]
                for mtime, rel, size in sorted(fresh):
                    uri = store.uri(rel)
                    self.log.info("New object %s (%d bytes, modified %s)", uri, size, iso_utc(mtime))
                    yield TriggerEvent(
                        {"uri": uri, "size": size, "mtime": iso_utc(mtime), "trigger": "new_data"}
                    )
                new_state = self._new_state(listing, floor)
                if new_state != state:
                    await self.save_state(new_state)
            await asyncio.sleep(self.poke_interval)
