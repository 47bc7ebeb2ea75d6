"""Eight workers (separate processes, like eight Airflow workers) register and promote at the same
instant against each store: a local folder, S3 (moto_server, ``If-None-Match``) and GCS (the
emulator, which ignores preconditions, so the claim lock is used). Version numbers are unique,
exactly one champion holds at the end, every move is in the alias log with the version it replaced,
and no version's metadata is lost."""

from __future__ import annotations

import concurrent.futures as cf
import json
import multiprocessing
import os
import time

import pytest

WORKERS = 8
MODEL = "race"


def _worker(args):
    """Runs in a fresh process: register one model version, then promote it (optionally CAS)."""
    root, conn_id, index, start_at, expected = args
    from mlops_provider.core.registry import ANY, ModelRegistry, StaleAliasError
    from mlops_provider.hooks.artifacts import ArtifactStoreHook

    reg = ModelRegistry(ArtifactStoreHook(root, conn_id).get_store())
    reg.store.exists("warm-up")  # open connections before the start line
    time.sleep(max(0.0, start_at - time.time()))
    payload = f"model bytes of worker {index}".encode() * 100
    mv, created = reg.register(
        MODEL,
        payload,
        run_key=f"dag/run_{index}/register",
        metrics={"roc_auc": 0.5 + index / 100},
        lineage={"worker": index, "pid": os.getpid()},
    )
    try:
        ev = reg.promote(
            MODEL,
            mv.version,
            actor=f"worker-{index}",
            reason=f"race {index}",
            expected_current=ANY if expected == "any" else expected,
        )
        return index, mv.version, created, ev.sequence, None
    except StaleAliasError as err:
        return index, mv.version, created, None, err.current


def _race(root: str, conn_id: str | None, expected="any"):
    ctx = multiprocessing.get_context("spawn")
    start_at = time.time() + 12  # spawned interpreters import Airflow first
    with cf.ProcessPoolExecutor(WORKERS, mp_context=ctx) as pool:
        return list(pool.map(_worker, [(root, conn_id, i, start_at, expected) for i in range(WORKERS)]))


def _root(kind, request, tmp_path, monkeypatch):
    if kind == "file":
        return f"file://{tmp_path}/artifacts", None
    server = request.getfixturevalue("s3_server" if kind == "s3" else "gcs_server")
    conn_id = f"race_{kind}"
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(server.connection()))
    return f"{kind}://{server.new_bucket('race')}/mlops", conn_id


@pytest.mark.parametrize("kind", ["file", "s3", "gs"])
def test_eight_concurrent_registrations_and_promotions(kind, request, tmp_path, monkeypatch):
    from mlops_provider.core.registry import ModelRegistry
    from mlops_provider.core.serialization import sha256_bytes
    from mlops_provider.hooks.artifacts import ArtifactStoreHook

    root, conn_id = _root(kind, request, tmp_path, monkeypatch)
    results = _race(root, conn_id)
    store = ArtifactStoreHook(root, conn_id).get_store()
    reg = ModelRegistry(store)

    versions = sorted(r[1] for r in results)
    assert versions == list(range(1, WORKERS + 1)), results  # unique, no gaps
    assert all(created for _, _, created, _, _ in results)
    # no lost metadata: every version's record and bytes belong to the worker that claimed it
    by_worker = {r[0]: r[1] for r in results}
    for index, version in by_worker.items():
        mv = reg.get_version(MODEL, version)
        assert mv.lineage["worker"] == index and mv.metrics["roc_auc"] == pytest.approx(0.5 + index / 100)
        data = store.read_bytes(store.key_of(mv.model_uri))
        assert (
            data == f"model bytes of worker {index}".encode() * 100 and sha256_bytes(data) == mv.model_sha256
        )
    # every promotion recorded once, in one order, each replacing the one before it
    history = reg.history(MODEL)
    assert sorted(e.sequence for e in history) == list(range(1, WORKERS + 1))
    chain = sorted(history, key=lambda e: e.sequence)
    assert chain[0].previous_version is None
    assert [e.previous_version for e in chain[1:]] == [e.version for e in chain[:-1]]
    assert sorted(e.version for e in chain) == versions
    # exactly one champion: the last move
    assert reg.get_alias(MODEL) == chain[-1].version
    assert reg.aliases(MODEL)["champion"]["version"] == chain[-1].version


@pytest.mark.parametrize("kind", ["file", "s3", "gs"])
def test_compare_and_set_promotion_lets_exactly_one_of_eight_win(kind, request, tmp_path, monkeypatch):
    """All eight evaluated against "no champion yet": one promotion wins, seven are refused."""
    from mlops_provider.core.registry import ModelRegistry
    from mlops_provider.hooks.artifacts import ArtifactStoreHook

    root, conn_id = _root(kind, request, tmp_path, monkeypatch)
    results = _race(root, conn_id, expected=None)
    winners = [r for r in results if r[3] is not None]
    losers = [r for r in results if r[3] is None]
    assert len(winners) == 1 and len(losers) == WORKERS - 1, results
    reg = ModelRegistry(ArtifactStoreHook(root, conn_id).get_store())
    assert reg.get_alias(MODEL) == winners[0][1]
    assert all(r[4] is not None for r in losers)  # each was told which version holds the alias
    assert len(reg.history(MODEL)) == 1
