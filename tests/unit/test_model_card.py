"""Model cards: written with each version (before its metadata.json), their numbers those the
registry recorded, rendered to HTML with every field escaped."""

from __future__ import annotations

import re

import pytest
from sklearn.datasets import load_breast_cancer, load_wine
from sklearn.tree import DecisionTreeClassifier

from mlops_provider.core.model_card import build_card, card_html, default_intended_use
from mlops_provider.core.registry import ModelRegistry
from mlops_provider.core.serialization import dump_model
from mlops_provider.core.steps.register import RegisterParams, register_and_promote
from mlops_provider.core.steps.run import RunInfo
from mlops_provider.core.storage import ArtifactStore
from tests.unit.steps.test_evaluate import LOGREG, evaluate, frames, snapshot, train, wine_names

HOSTILE = "<script>alert('card')</script>"


@pytest.fixture
def store(tmp_path):
    return ArtifactStore(f"file://{tmp_path}/root")


def run_once(store, name, train_df, eval_df, run_id, params=None, **register_kw):
    snap = snapshot(store, f"{name}_train", train_df)
    _, trained = train(store, snap, train_df, LOGREG, RunInfo.local("train", run_id=run_id), **(params or {}))
    ev = evaluate(store, trained, snapshot(store, f"{name}_eval", eval_df), model_name=name, run_id=run_id)
    evaluation = ev.to_dict()
    return register_and_promote(
        RegisterParams(name, **register_kw),
        trained=evaluation["challenger"],
        verdict={k: v for k, v in evaluation.items() if k != "challenger"},
        store=store,
        registry=ModelRegistry(store),
        run=RunInfo.local("register", run_id=run_id),
    )


def row(card: str, first: str) -> list[str]:
    """The cells of the card's table row whose first cell is ``first``."""
    for line in card.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and cells[0] == first:
            return cells
    raise AssertionError(f"no row {first!r} in the card")


def test_a_multiclass_version_card_matches_its_metadata(store):
    train_df, eval_df = (wine_names(df) for df in frames(load_wine))
    result = run_once(
        store,
        "wine",
        train_df,
        eval_df,
        "nb-1",
        params={"C": 0.5},
        intended_use="Sorts wine lots by cultivar for the tasting panel.",
        limitations=["Only Italian wines of one region."],
    )
    registry = ModelRegistry(store)
    mv = registry.get_version("wine", result.version.version)
    card = registry.read_card("wine", mv.version)
    assert card.startswith(f"# Model card: wine v{mv.version}")
    assert "Sorts wine lots by cultivar for the tasting panel." in card
    assert "- Only Italian wines of one region." in card
    # the classes seen in training, in the model section and the limitations
    assert "- Classes: `barbera`, `barolo`, `grignolino`" in card
    assert "classes seen in training: `barbera`, `barolo`, `grignolino`." in card
    for metric, value in mv.metrics.items():  # every metric, the number the registry recorded
        assert row(card, metric)[1] == (str(value) if isinstance(value, int) else f"{value:.4f}")
    lin = mv.lineage
    for role, ds in (("Training", lin["train_dataset"]), ("Evaluation", lin["eval_dataset"])):
        assert row(card, role) == [role, f"`{ds['uri']}`", f"`{ds['sha256']}`", str(ds["rows"])]
    assert f"Measured on {len(eval_df)} evaluation rows only" in card
    # promoted at bootstrap by this run: the alias log's actor is in the card
    event = registry.history("wine")[-1]
    assert row(card, "champion")[1:3] == ["promote", event.actor]
    check = lin["registration_check"]
    assert f"on {check['rows_checked']} sampled evaluation rows: 0 differing" in card


def test_the_card_carries_the_improvement_interval_against_the_champion(store):
    train_df, eval_df = frames(load_breast_cancer)
    run_once(store, "cancer", train_df, eval_df, "nb-1", params={"C": 0.01})
    second = run_once(store, "cancer", train_df, eval_df, "nb-2", params={"C": 1.0})
    mv = ModelRegistry(store).get_version("cancer", second.version.version)
    cmp = mv.verdict["comparison"]
    cells = row(ModelRegistry(store).read_card("cancer", mv.version), cmp["metric"])
    assert cells[2] == f"{mv.verdict['metrics']['champion'][cmp['metric']]:.4f}"
    assert cells[3] == f"{cmp['improvement']:.4f}"
    assert cells[4] == f"[{cmp['ci_low']:.4f}, {cmp['ci_high']:.4f}] ({cmp['confidence']:.0%})"


def test_the_card_is_written_before_the_version_is_committed(store, monkeypatch):
    X, y = load_breast_cancer(return_X_y=True)
    data = dump_model(DecisionTreeClassifier(max_depth=2, random_state=0).fit(X, y))
    written: list[str] = []
    for method in ("write_bytes", "write_json"):
        original = getattr(store, method)
        monkeypatch.setattr(
            store, method, lambda key, *a, _o=original, **k: written.append(key) or _o(key, *a, **k)
        )
    registry = ModelRegistry(store)
    mv, _ = registry.register(
        "cancer", data, spec={"task": "classification", "label": "y"}, card=lambda v: build_card(v.to_dict())
    )
    names = list(dict.fromkeys(k.rsplit("/", 1)[-1] for k in written if "/versions/1/" in k))
    assert names == ["model.skops", "model_card.md", "metadata.json"]
    assert registry.read_card("cancer", 1).startswith("# Model card: cancer v1")
    assert default_intended_use("cancer", {"label": "y", "task": "classification"}) in registry.read_card(
        "cancer", 1
    )


def test_hostile_fields_are_escaped_when_rendered():
    mv = {
        "model": "m",
        "version": 1,
        "estimator": HOSTILE,
        "params": {"C": HOSTILE, "pipe": "a|b"},
        "spec": {"task": "classification", "label": "y", "classes": [HOSTILE, "b"]},
        "metrics": {},
        "lineage": {
            "model_card": {
                "intended_use": f"**{HOSTILE}** <img src=x onerror=alert(1)>",
                "limitations": [HOSTILE],
            }
        },
    }
    html = card_html(build_card(mv))
    assert "<script" not in html and "<img" not in html
    assert html.count("&lt;script&gt;") >= 4  # estimator, params, classes, intended use, limitations
    assert re.search(r"<h3>Intended use</h3>\s*<p>\*\*&lt;script&gt;", html)
    assert "a|b" in html  # a pipe in a value does not break the card's structure


def test_mlops_models_card_prints_the_stored_card(store, capsys):
    from mlops_provider.cli import main

    X, y = load_breast_cancer(return_X_y=True)
    data = dump_model(DecisionTreeClassifier(max_depth=2, random_state=0).fit(X, y))
    registry = ModelRegistry(store)
    spec = {"task": "classification", "label": "y"}
    registry.register("cancer", data, spec=spec, card=lambda v: build_card(v.to_dict()))
    registry.register("cancer", data, spec=spec)  # v2: registered without a card
    capsys.readouterr()
    assert main(["models", "card", "cancer", "1", "--root", store.root]) == 0
    assert capsys.readouterr().out == registry.read_card("cancer", 1)
    assert main(["models", "card", "cancer", "2", "--root", store.root]) != 0
    assert "cancer v2 has no model card" in capsys.readouterr().err
