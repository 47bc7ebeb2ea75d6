"""The README's "Without Airflow" example runs as printed, and what it registers is what
scikit-learn measures on the evaluation rows."""

from __future__ import annotations

import os
import re

import pandas as pd
import pytest
from sklearn.metrics import f1_score, log_loss

from mlops_provider.core.registry import ModelRegistry
from mlops_provider.core.storage import ArtifactStore

README = os.path.join(os.path.dirname(__file__), "..", "..", "..", "README.md")


def readme_example() -> str:
    text = open(README, encoding="utf-8").read()
    section = text.split("### Without Airflow", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, flags=re.S)
    assert match, "the README's 'Without Airflow' section has no python block"
    return match.group(1)


@pytest.fixture(scope="module")
def ran(tmp_path_factory):
    root = tmp_path_factory.mktemp("readme")
    scope = {"ROOT": f"file://{root}"}
    exec(compile(readme_example(), "README.md", "exec"), scope)  # noqa: S102 - the README's own code
    return scope, ArtifactStore(f"file://{root}")


def test_the_example_promotes_a_first_multiclass_champion(ran):
    scope, store = ran
    champion = ModelRegistry(store).resolve("wine")
    assert champion.version == 1 and scope["registered"].promoted
    assert champion.verdict["task"] == "multiclass"
    assert champion.spec["classes"] == ["barbera", "barolo", "grignolino"]


def test_recorded_metrics_match_scikit_learn_on_the_evaluation_rows(ran):
    scope, store = ran
    model, champion = ModelRegistry(store).load("wine")
    wine = scope["wine"]
    rows = wine[wine["row_id"] % 3 == 0]
    features = rows.drop(columns=["cultivar", "row_id"])
    assert champion.metrics["f1_macro"] == pytest.approx(
        f1_score(rows["cultivar"], model.predict(features), average="macro"), abs=1e-6
    )
    assert champion.metrics["log_loss"] == pytest.approx(
        log_loss(rows["cultivar"], model.predict_proba(features), labels=model.classes_), abs=1e-6
    )


def test_predictions_cover_every_evaluation_row_with_one_probability_per_class(ran):
    scope, store = ran
    out = pd.read_parquet(store.path(store.key_of(scope["scored"].scoring.output_uri)))
    assert sorted(out["row_id"]) == sorted(scope["wine"].loc[scope["wine"]["row_id"] % 3 == 0, "row_id"])
    proba = out.filter(like="proba_")
    assert proba.shape[1] == 3
    assert (proba.sum(axis=1) - 1).abs().max() < 1e-9
