"""Fixtures of the hostile-input suite: a sandbox (an artifact root with a registered champion, a
sibling folder outside it that must stay untouched), real models fitted on scikit-learn's own wine
data (3 classes, string labels), and a way to plant files as a hostile writer of the store would."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.notifications.conftest import http_receiver, smtp_server  # noqa: F401 - shared fixtures

MODEL = "wine_quality"


def files_in(path: Path) -> dict[str, float]:
    """Every file below ``path`` with its mtime (to tell "written" from "untouched")."""
    if not path.exists():
        return {}
    return {
        str(p.relative_to(path)): p.stat().st_mtime_ns
        for p in path.rglob("*")
        if p.is_file() or p.is_symlink()
    }


@dataclass
class Sandbox:
    base: Path
    root: Path
    outside: Path
    store: Any
    registry: Any
    champion: int
    before: dict[str, float] = field(default_factory=dict)

    @property
    def root_uri(self) -> str:
        return f"file://{self.root}"

    def outside_unchanged(self) -> None:
        """Nothing was written next to the root (the sandbox's other files are as they were)."""
        now = {k: v for k, v in files_in(self.base).items() if not k.startswith("root/")}
        assert now == self.before, sorted(set(now.items()) ^ set(self.before.items()))

    def champion_unchanged(self) -> None:
        assert self.registry.get_alias(MODEL) == self.champion
        assert len(self.registry.history(MODEL)) == 1

    def intact(self) -> None:
        self.outside_unchanged()
        self.champion_unchanged()


@pytest.fixture(scope="session")
def wine():
    """scikit-learn's wine data as a frame: 13 numeric features, label = cultivar name (3 classes)."""
    from sklearn.datasets import load_wine

    data = load_wine(as_frame=True)
    frame = data.frame.rename(columns=lambda c: c.replace("/", "_"))
    frame["cultivar"] = frame.pop("target").map({0: "barolo", 1: "grignolino", 2: "barbera"})
    return frame


@pytest.fixture(scope="session")
def wine_model(wine):
    """A HistGradientBoosting pipeline on the wine data (as the train step builds it) and its spec."""
    from mlops_provider.core.modeling import train_model

    pipe, result = train_model(
        wine,
        label="cultivar",
        estimator="sklearn.ensemble.HistGradientBoostingClassifier",
        params={"max_iter": 20},
        seed=7,
    )
    return pipe, result.spec


@pytest.fixture
def sandbox(tmp_path, monkeypatch, wine_model) -> Sandbox:
    """``<tmp>/root`` is the artifact root holding ``wine_quality`` v1 as champion; ``<tmp>/outside``
    holds a look-alike registry and a secret, which nothing may read or write through the root."""
    from mlops_provider.core.registry import ModelRegistry
    from mlops_provider.core.serialization import dump_model
    from mlops_provider.core.storage import ArtifactStore

    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir()
    (outside / "alias-log" / "champion").mkdir(parents=True)
    (outside / "alias-log" / "champion" / "00000001.json").write_text(json.dumps({"version": 99}))
    (outside / "secret.txt").write_text("do not read")
    monkeypatch.setenv("MLOPS_ARTIFACT_ROOT", f"file://{root}")
    monkeypatch.delenv("MLOPS_ARTIFACT_CONN_ID", raising=False)
    monkeypatch.delenv("MLOPS_TRUSTED_TYPES", raising=False)
    store = ArtifactStore(f"file://{root}")
    registry = ModelRegistry(store)
    pipe, spec = wine_model
    mv, _ = registry.register(
        MODEL,
        dump_model(pipe),
        spec=spec.to_dict(),
        estimator="hgb",
        lineage={"dag_id": "wine_retrain", "run_id": "manual__1"},
    )
    registry.promote(MODEL, mv.version, actor="test", reason="bootstrap")
    box = Sandbox(tmp_path, root, outside, store, registry, mv.version)
    box.before = {k: v for k, v in files_in(tmp_path).items() if not k.startswith("root/")}
    return box


def plant_version(
    store,
    name: str,
    version: int,
    data: bytes,
    *,
    sha256: Any = "auto",
    spec: dict | None = None,
    drop_sha: bool = False,
) -> None:
    """Write a version the way a hostile writer of the store would: files straight into the layout."""
    from mlops_provider.core.serialization import sha256_bytes

    folder = f"registry/{name}/versions/{version}"
    store.write_bytes(f"{folder}/model.skops", data)
    meta = {
        "model": name,
        "version": version,
        "uri": store.uri(folder),
        "model_uri": store.uri(f"{folder}/model.skops"),
        "model_sha256": sha256_bytes(data) if sha256 == "auto" else sha256,
        "created_at": "2026-01-01T00:00:00+00:00",
        "spec": spec or {},
        "lineage": {"dag_id": "wine_retrain"},
    }
    if drop_sha:
        meta.pop("model_sha256")
    store.write_json(f"{folder}/metadata.json", meta)


def no_marker(path: Path) -> None:
    assert not path.exists(), f"{path} was created: code from the model file ran"
    assert os.path.isdir(path.parent)
