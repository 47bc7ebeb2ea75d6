"""NewDataTrigger on real files: one event per new object, state kept across restarts."""

from __future__ import annotations

import asyncio
import datetime as dt
import importlib
import os

import pytest

from mlops_provider.triggers.new_data import NewDataTrigger

FAST = 0.05


class StateStore:
    """The part of the triggerer's asset state store the trigger uses (aget/aset), in memory."""

    def __init__(self):
        self.data: dict = {}
        self.sets = 0

    async def aget(self, key, default=None):
        return self.data.get(key, default)

    async def aset(self, key, value):
        if value is None:
            raise ValueError("Cannot set value as None")
        self.sets += 1
        self.data[key] = value


def write(path, data: bytes = b"x", mtime: float | None = None):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return path


async def collect(trigger, n: int, *, during=None):
    """Events from ``trigger.run()``: ``during`` (files written) runs once a first poll is fully
    processed; collection stops after ``n`` events or once a listing started after ``during``
    has been processed (deterministic: no "wait and hope")."""
    events, listings = [], [0]
    real_listing = trigger.list_objects

    def counted_listing():
        result = real_listing()
        listings[0] += 1
        return result

    trigger.list_objects = counted_listing  # the real listing, counted
    gen = trigger.run()

    async def pump():
        async for ev in gen:
            events.append(ev.payload)
            if len(events) >= n:
                return

    async def wait_listings(count):
        while listings[0] < count:
            await asyncio.sleep(0.01)

    task = asyncio.ensure_future(pump())
    try:
        await wait_listings(2)  # listing 1 processed once listing 2 has happened
        if during is not None:
            await asyncio.to_thread(during)
        done_at = listings[0] + 3  # listing +2 began after `during`; +3 means it was processed
        waiter = asyncio.ensure_future(wait_listings(done_at))
        await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
    finally:
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass
        await gen.aclose()
        del trigger.list_objects
    return events


def run(coro, timeout: float = 10):
    return asyncio.run(asyncio.wait_for(coro, timeout))


def test_fires_once_per_new_matching_file(tmp_path):
    land = tmp_path / "landing"
    write(land / "old.parquet", b"old")
    trig = NewDataTrigger(uri=f"file://{land}", pattern="*.parquet", poke_interval=FAST)

    def add():
        write(land / "b.parquet", b"bbbb", mtime=2_000_000_000)
        write(land / "a.parquet", b"aa", mtime=1_900_000_000)
        write(land / "notes.csv", b"ignored")
        write(land / ".tmp-123-c.parquet", b"in progress")
        write(land / "day=1" / "c.parquet", b"c", mtime=1_900_000_000)

    events = run(collect(trig, 10, during=add))
    assert events == [
        {
            "uri": f"file://{land}/a.parquet",
            "size": 2,
            "mtime": "2030-03-17T17:46:40+00:00",
            "trigger": "new_data",
        },
        {
            "uri": f"file://{land}/day=1/c.parquet",
            "size": 1,
            "mtime": "2030-03-17T17:46:40+00:00",
            "trigger": "new_data",
        },
        {
            "uri": f"file://{land}/b.parquet",
            "size": 4,
            "mtime": "2033-05-18T03:33:20+00:00",
            "trigger": "new_data",
        },
    ]
    assert dt.datetime.fromisoformat(events[0]["mtime"]).timestamp() == 1_900_000_000
    # same instance keeps polling: nothing new, nothing fired; a rewrite fires again
    assert run(collect(trig, 5)) == []
    events = run(collect(trig, 5, during=lambda: write(land / "a.parquet", b"aaa", mtime=2_100_000_000)))
    assert [(e["uri"], e["size"]) for e in events] == [(f"file://{land}/a.parquet", 3)]


def test_fire_on_existing_and_missing_prefix(tmp_path):
    land = tmp_path / "landing"
    write(land / "x.parquet", b"12345", mtime=1_800_000_000)
    events = run(collect(NewDataTrigger(uri=str(land), fire_on_existing=True, poke_interval=FAST), 5))
    assert [(e["uri"], e["size"]) for e in events] == [(f"file://{land}/x.parquet", 5)]
    assert run(collect(NewDataTrigger(uri=str(land), poke_interval=FAST), 5)) == []

    # a prefix that does not exist yet: watched until it appears
    later = tmp_path / "later"
    trig = NewDataTrigger(uri=f"file://{later}", poke_interval=FAST)
    events = run(collect(trig, 5, during=lambda: write(later / "first.json", b"{}")))
    assert [e["uri"] for e in events] == [f"file://{later}/first.json"]


def test_state_store_survives_a_restart(tmp_path):
    land = tmp_path / "landing"
    write(land / "seen-before.parquet")
    store = StateStore()

    first = NewDataTrigger(uri=f"file://{land}", pattern="*.parquet", poke_interval=FAST)
    first.asset_state_store = store  # what the triggerer injects for a watcher
    events = run(collect(first, 5, during=lambda: write(land / "new.parquet", b"nn")))
    assert [e["uri"] for e in events] == [f"file://{land}/new.parquet"]
    ((key, record),) = store.data.items()
    assert key == first.state_key and sorted(record["seen"]) == ["new.parquet", "seen-before.parquet"]

    # "restarted triggerer": a fresh instance from the serialized kwargs, same store
    classpath, kwargs = first.serialize()
    restarted = NewDataTrigger(**kwargs)
    restarted.asset_state_store = store
    write(land / "while-down.parquet", b"d")
    events = run(collect(restarted, 5))
    assert [e["uri"] for e in events] == [f"file://{land}/while-down.parquet"]
    sets = store.sets
    assert run(collect(restarted, 5)) == [] and store.sets == sets  # nothing new: nothing written

    # a deleted object leaves the record; the record stays as large as the listing
    (land / "seen-before.parquet").unlink()
    run(collect(restarted, 5))
    assert sorted(store.data[key]["seen"]) == ["new.parquet", "while-down.parquet"]

    # without a store the memory fallback re-baselines on start (nothing fires for what is there)
    assert run(collect(NewDataTrigger(**kwargs), 5)) == []


def test_store_for_several_assets_falls_back_to_memory(tmp_path):
    class AmbiguousStore(StateStore):
        async def aget(self, key, default=None):
            raise ValueError("Task has 2 concrete inlets and outlets")

    land = tmp_path / "landing"
    trig = NewDataTrigger(uri=str(land), poke_interval=FAST)
    trig.asset_state_store = AmbiguousStore()
    events = run(collect(trig, 5, during=lambda: write(land / "a.bin")))
    assert [e["uri"] for e in events] == [f"file://{land}/a.bin"]
    assert trig.asset_state_store is None


def test_max_tracked_keeps_the_record_small(tmp_path):
    land = tmp_path / "landing"
    for i in range(5):
        write(land / f"f{i}.csv", mtime=1_700_000_000 + i)
    store = StateStore()
    trig = NewDataTrigger(uri=str(land), max_tracked=2, poke_interval=FAST)
    trig.asset_state_store = store
    assert run(collect(trig, 5)) == []
    record = store.data[trig.state_key]
    assert sorted(record["seen"]) == ["f3.csv", "f4.csv"] and record["floor"] == 1_700_000_002
    events = run(collect(trig, 5, during=lambda: write(land / "g.csv", mtime=1_700_000_100)))
    assert [e["uri"] for e in events] == [f"file://{land}/g.csv"]


def test_serialize_round_trip_and_asset_watcher(tmp_path):
    from airflow.sdk import Asset, AssetWatcher

    trig = NewDataTrigger(
        uri="s3://bucket/landing/", pattern="*.parquet", conn_id="aws_default", poke_interval=30
    )
    classpath, kwargs = trig.serialize()
    assert classpath == "mlops_provider.triggers.new_data.NewDataTrigger"
    module, name = classpath.rsplit(".", 1)
    again = getattr(importlib.import_module(module), name)(**kwargs)
    assert again.serialize() == (classpath, kwargs) and again.state_key == trig.state_key
    asset = Asset("s3://bucket/landing/", watchers=[AssetWatcher(name="landing", trigger=trig)])
    assert asset.watchers[0].trigger is trig


@pytest.mark.parametrize(
    "pattern,expected", [("*.parquet", ["a/b.parquet", "c.parquet"]), ("a/*", ["a/b.parquet"])]
)
def test_pattern_on_name_or_relative_path(tmp_path, pattern, expected):
    land = tmp_path / "landing"
    write(land / "a" / "b.parquet")
    write(land / "c.parquet")
    write(land / "d.txt")
    _, listing = NewDataTrigger(uri=str(land), pattern=pattern).list_objects()
    assert sorted(listing) == expected


def test_object_store_style_paths():
    """A non-local fsspec filesystem (memory://, paths without a leading '/' in the URI, like s3)."""
    import uuid

    import fsspec

    fs = fsspec.filesystem("memory")
    prefix = f"landing-{uuid.uuid4().hex[:8]}"
    fs.pipe(f"/{prefix}/old.parquet", b"old")
    trig = NewDataTrigger(uri=f"memory://{prefix}", pattern="*.parquet", poke_interval=FAST)
    try:
        events = run(collect(trig, 5, during=lambda: fs.pipe(f"/{prefix}/part-0.parquet", b"12345")))
        assert [(e["uri"], e["size"]) for e in events] == [(f"memory://{prefix}/part-0.parquet", 5)]
        assert dt.datetime.fromisoformat(events[0]["mtime"]).tzinfo == dt.timezone.utc
    finally:
        fs.rm(f"/{prefix}", recursive=True)
