"""Shared pieces of the registry backend tests: small real models and a concurrency harness."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

X = np.arange(40, dtype=float).reshape(20, 2)
Y = [0, 1] * 10


def model_bytes(c: float = 1.0) -> bytes:
    """A fitted LogisticRegression as skops bytes (different ``c`` -> different sha256)."""
    from sklearn.linear_model import LogisticRegression

    from mlops_provider.core.serialization import dump_model

    return dump_model(LogisticRegression(C=c).fit(X, Y))


@pytest.fixture(scope="session")
def eight_models() -> list[bytes]:
    return [model_bytes(1.0 + i) for i in range(8)]


def run_concurrently(fn: Callable[[int], Any], n: int = 8) -> tuple[list[Any], list[BaseException]]:
    """Run ``fn(0..n-1)`` in ``n`` threads released together; returns (results by index, errors)."""
    results: list[Any] = [None] * n
    errors: list[BaseException] = []
    barrier = threading.Barrier(n)

    def go(i: int) -> None:
        barrier.wait()
        try:
            results[i] = fn(i)
        except BaseException as err:  # collected, asserted by the test
            errors.append(err)

    threads = [threading.Thread(target=go, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return results, errors


def check_alias_chain(registry, name: str, alias: str = "champion") -> int:
    """The alias log is one unbroken chain: each move replaced the version the previous one set.
    Returns the head version (the one current alias holder)."""
    moves = sorted((e for e in registry.history(name) if e.alias == alias), key=lambda e: e.sequence)
    assert [e.sequence for e in moves] == list(range(1, len(moves) + 1))
    previous = None
    for e in moves:
        assert e.previous_version == previous, (e, previous)
        previous = e.version
    assert registry.get_alias(name, alias) == previous
    return previous


def concurrent_register_and_promote(registry, name: str, models: list[bytes]) -> int:
    """Eight writers each register a version and promote it; then eight compare-and-set promotions
    race from the same expected champion. Checks unique numbers, full metadata, one chain of
    alias moves and exactly one CAS winner; returns the final champion."""
    from mlops_provider.core.registry import StaleAliasError

    def register_and_promote(i: int):
        mv, created = registry.register(
            name,
            models[i],
            run_key=f"dag/run{i}/register",
            estimator="sklearn.linear_model.LogisticRegression",
            metrics={"roc_auc": 0.5 + i / 100, "writer": i},
            verdict={"passed": True, "reason": f"writer {i}"},
            lineage={"train_dataset": {"uri": f"s3://data/{i}"}, "writer": i},
            spec={"label": "y", "writer": i},
            params={"C": 1.0 + i},
            tags={"writer": str(i)},
        )
        assert created
        registry.promote(name, mv.version, actor=f"writer{i}", reason=f"writer {i} wins")
        return mv

    results, errors = run_concurrently(register_and_promote)
    assert errors == []
    versions = sorted(mv.version for mv in results)
    assert versions == list(range(1, 9)), versions
    listed = {mv.version: mv for mv in registry.list_versions(name)}
    assert sorted(listed) == versions
    for i, mv in enumerate(results):  # no lost or crossed metadata
        got = listed[mv.version]
        assert (got.run_key, got.metrics["writer"], got.lineage["writer"], got.spec["writer"], got.tags) == (
            f"dag/run{i}/register",
            i,
            i,
            i,
            {"writer": str(i)},
        )
        assert got.verdict == {"passed": True, "reason": f"writer {i}"} and got.params == {"C": 1.0 + i}
        assert got.model_sha256 == __import__("hashlib").sha256(models[i]).hexdigest()
    head = check_alias_chain(registry, name)
    assert len([e for e in registry.history(name) if e.alias == "champion"]) == 8

    # compare-and-set: all eight expect the current champion and move it elsewhere; exactly one can.
    # (A move to the version the alias already holds leaves it there, so a writer expecting that
    # version would rightly still succeed after it: no target is the current head.)
    expected = head
    others = [v for v in versions if v != head]
    targets = [others[i % len(others)] for i in range(8)]

    def cas(i: int):
        return registry.promote(name, targets[i], actor=f"cas{i}", reason="cas", expected_current=expected)

    results, errors = run_concurrently(cas)
    winners = [r for r in results if r is not None]
    assert len(winners) == 1 and len(errors) == 7, (winners, errors)
    assert all(isinstance(e, StaleAliasError) and e.current == winners[0].version for e in errors), errors
    assert check_alias_chain(registry, name) == winners[0].version
    return winners[0].version
