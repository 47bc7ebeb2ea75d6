"""The ``mlops`` CLI against a real registry on a temporary artifact store (no mocks)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mlops_provider.cli import main
from mlops_provider.core.registry import ModelRegistry
from mlops_provider.core.serialization import dump_model
from mlops_provider.core.storage import ArtifactStore

MODEL = "churn"


def _model_bytes(c: float) -> bytes:
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 3))
    y = (X[:, 0] + 0.3 * rng.normal(size=40) > 0).astype(int)
    return dump_model(LogisticRegression(C=c, max_iter=200).fit(X, y))


def _verdict(passed: bool, auc: float, reason: str) -> dict:
    return {
        "model": MODEL,
        "passed": passed,
        "decision": "promote" if passed else "reject",
        "reason": reason,
        "compare_metric": "roc_auc",
        "bootstrap": "promote",
        "checks": [
            {
                "kind": "threshold",
                "metric": "roc_auc",
                "op": ">=",
                "threshold": 0.7,
                "challenger": auc,
                "champion": None,
                "delta": auc - 0.7,
                "passed": auc >= 0.7,
            },
        ],
        "metrics": {"challenger": {"roc_auc": auc}},
        "champion_version": None,
    }


@pytest.fixture
def root(tmp_path: Path) -> str:
    """A registry with three versions of ``churn``; v1 is champion, then v2 (v3 failed its gate)."""
    uri = f"file://{tmp_path / 'artifacts'}"
    registry = ModelRegistry(ArtifactStore(uri))
    specs = [
        (1.0, 0.81, True, "first model"),
        (0.5, 0.86, True, "beats v1"),
        (0.1, 0.62, False, "misses roc_auc"),
    ]
    for i, (c, auc, passed, reason) in enumerate(specs, start=1):
        registry.register(
            MODEL,
            _model_bytes(c),
            run_key=f"retrain_churn/scheduled__2024-01-0{i}/register",
            estimator="logistic_regression",
            metrics={"roc_auc": auc, "log_loss": 0.5 - auc / 10},
            verdict=_verdict(passed, auc, reason),
            lineage={"dag_id": "retrain_churn", "train_dataset": {"sha256": f"{i}" * 64, "rows": 40}},
            params={"C": c},
        )
    registry.promote(MODEL, 1, actor="test-setup", reason="bootstrap")
    registry.promote(MODEL, 2, actor="airflow:retrain_churn", reason="gate passed")
    return uri


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _registry(root: str) -> ModelRegistry:
    return ModelRegistry(ArtifactStore(root))


# --------------------------------------------------------------------------- list / show
def test_list_shows_model_champion_and_metric(root, capsys):
    code, out, err = _run(capsys, "--root", root, "models", "list")
    assert code == 0, err
    header, row = out.strip().splitlines()
    assert header.split()[:4] == ["MODEL", "VERSIONS", "CHAMPION", "LATEST"]
    assert row.split()[:4] == [MODEL, "3", "v2", "v3"]
    assert "roc_auc=0.8600" in row
    assert "airflow:retrain_churn" in row


def test_list_json(root, capsys):
    code, out, _ = _run(capsys, "models", "list", "--json", "--root", root)  # --root after the command too
    assert code == 0
    doc = json.loads(out)
    assert doc["root"] == root
    (m,) = doc["models"]
    assert m["name"] == MODEL
    assert (m["versions"], m["champion_version"], m["latest_version"]) == (3, 2, 3)
    assert m["champion_metrics"] == {"roc_auc": 0.86}
    assert m["promoted_by"] == "airflow:retrain_churn" and m["promoted_at"]


def test_list_empty_root(tmp_path, capsys):
    code, out, _ = _run(capsys, "--root", str(tmp_path / "nothing"), "models", "list")
    assert code == 0
    assert "No models registered" in out


def test_show_table(root, capsys):
    code, out, err = _run(capsys, "--root", root, "models", "show", MODEL)
    assert code == 0, err
    assert "Aliases" in out and "Versions" in out and "Alias history" in out
    v2_line = next(line for line in out.splitlines() if line.startswith("v2 "))
    assert "champion" in v2_line and "0.8600" in v2_line and "passed" in v2_line and "promote" in v2_line
    v3_line = next(line for line in out.splitlines() if line.startswith("v3 "))
    assert "failed" in v3_line and "reject" in v3_line and "misses roc_auc" in v3_line
    sha = _registry(root).get_version(MODEL, 3).model_sha256
    assert sha[:12] in v3_line and sha not in v3_line
    assert "gate passed" in out and "bootstrap" in out


def test_show_json(root, capsys):
    code, out, _ = _run(capsys, "--root", root, "models", "show", MODEL, "--json")
    assert code == 0
    doc = json.loads(out)
    assert [v["version"] for v in doc["versions"]] == [1, 2, 3]
    assert doc["versions"][2]["verdict"]["decision"] == "reject"
    assert doc["versions"][0]["run_key"] == "retrain_churn/scheduled__2024-01-01/register"
    assert doc["aliases"]["champion"]["version"] == 2
    assert [(e["version"], e["previous_version"]) for e in doc["history"]] == [(1, None), (2, 1)]


def test_show_one_version(root, capsys):
    code, out, err = _run(capsys, "--root", root, "models", "show", MODEL, "--version", "1")
    assert code == 0, err
    assert "Lineage" in out and "train_dataset.sha256" in out and "1" * 64 in out
    assert "first model" in out and "CHALLENGER" in out

    code, out, _ = _run(capsys, "--root", root, "models", "show", MODEL, "--version", "2", "--json")
    doc = json.loads(out)
    assert doc["version"]["version"] == 2 and doc["aliases"] == ["champion"]
    assert doc["version"]["lineage"]["dag_id"] == "retrain_churn"


# --------------------------------------------------------------------------- promote / rollback
def test_promote_moves_champion_and_records_reason(root, capsys):
    code, out, err = _run(
        capsys,
        "--root",
        root,
        "models",
        "promote",
        MODEL,
        "3",
        "--reason",
        "hotfix, accepted by hand",
        "--actor",
        "alice",
    )
    assert code == 0, err
    assert "'champion': v2 -> v3" in out and "alice" in out
    assert "did not pass its quality gate" in err  # v3 failed its gate: promoted with a warning
    registry = _registry(root)
    assert registry.get_alias(MODEL, "champion") == 3
    last = registry.history(MODEL)[-1]
    assert (last.version, last.previous_version, last.action) == (3, 2, "promote")
    assert (last.actor, last.reason) == ("alice", "hotfix, accepted by hand")

    # promoting the current champion again changes nothing
    code, out, _ = _run(capsys, "--root", root, "models", "promote", MODEL, "3", "--reason", "again")
    assert code == 0 and "nothing changed" in out
    assert len(_registry(root).history(MODEL)) == 3


def test_promote_default_actor_and_other_alias(root, capsys, monkeypatch):
    monkeypatch.setenv("USER", "bob")
    code, out, err = _run(
        capsys,
        "--root",
        root,
        "models",
        "promote",
        MODEL,
        "1",
        "--alias",
        "shadow",
        "--reason",
        "try",
        "--json",
    )
    assert code == 0, err
    event = json.loads(out)["event"]
    assert event["alias"] == "shadow" and event["version"] == 1
    assert event["actor"].startswith("cli:bob@")
    assert _registry(root).get_alias(MODEL, "champion") == 2


def test_rollback_returns_to_previous_champion(root, capsys):
    code, out, err = _run(
        capsys, "--root", root, "models", "rollback", MODEL, "--reason", "v2 drifts", "--actor", "carol"
    )
    assert code == 0, err
    assert "Rolled back" in out and "'champion': v2 -> v1" in out
    registry = _registry(root)
    assert registry.get_alias(MODEL, "champion") == 1
    last = registry.history(MODEL)[-1]
    assert (last.action, last.version, last.previous_version, last.actor, last.reason) == (
        "rollback",
        1,
        2,
        "carol",
        "v2 drifts",
    )

    code, out, err = _run(
        capsys, "--root", root, "models", "rollback", MODEL, "--to", "3", "--reason", "explicit"
    )
    assert code == 0, err
    assert _registry(root).get_alias(MODEL, "champion") == 3


# --------------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    "argv, expected",
    [
        (["models", "show", "fraud"], "no model 'fraud'"),
        (["models", "show", MODEL, "--version", "9"], "no version 9"),
        (["models", "promote", "fraud", "1", "--reason", "x"], "no model 'fraud'"),
        (["models", "promote", MODEL, "7", "--reason", "x"], "no version 7"),
        (["models", "promote", MODEL, "2"], "--reason"),
        (["models", "promote", MODEL, "2", "--reason", "  "], "--reason"),
        (["models", "promote", MODEL, "two", "--reason", "x"], "'two'"),
        (["models", "rollback", MODEL, "--to", "8", "--reason", "x"], "no version 8"),
        (["models", "rollback", MODEL, "--reason", "x", "--alias", "shadow"], "no 'shadow' alias"),
        (["models", "show", "../etc"], "'../etc'"),
        (["models", "frobnicate"], "invalid choice"),
        (["models"], "choose an action"),
        ([], "choose a command"),
    ],
)
def test_errors_exit_2_with_one_line(root, capsys, argv, expected):
    before = len(_registry(root).history(MODEL))
    code, out, err = _run(capsys, "--root", root, *argv)
    assert code == 2
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("mlops: error: ") and expected in lines[0], err
    assert "Traceback" not in err
    assert len(_registry(root).history(MODEL)) == before  # nothing was moved


def test_rollback_without_earlier_version(tmp_path, capsys):
    uri = str(tmp_path / "reg")
    registry = ModelRegistry(ArtifactStore(uri))
    registry.register("solo", _model_bytes(1.0), metrics={"roc_auc": 0.8})
    code, _, err = _run(capsys, "--root", uri, "models", "rollback", "solo", "--reason", "x")
    assert code == 2 and "mlops: error:" in err and "no 'champion' alias" in err
    registry.promote("solo", 1, actor="t", reason="first")
    code, _, err = _run(capsys, "--root", uri, "models", "rollback", "solo", "--reason", "x")
    assert code == 2 and "'solo'" in err and "no earlier version" in err


def test_help_exits_0(capsys):
    assert main(["models", "promote", "--help"]) == 0
    assert "--reason" in capsys.readouterr().out


# --------------------------------------------------------------------------- console script
def test_console_script(root):
    script = Path(sys.executable).with_name("mlops")
    cmd = [str(script)] if script.exists() else [sys.executable, "-m", "mlops_provider.cli"]
    env = {**os.environ, "MLOPS_ARTIFACT_ROOT": "/nonexistent-should-not-be-used"}
    done = subprocess.run(
        [*cmd, "--root", root, "models", "list", "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["models"][0]["champion_version"] == 2

    done = subprocess.run(
        [*cmd, "--root", root, "models", "show", "nope"], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 2
    assert (
        done.stderr.startswith("mlops: error: ")
        and "'nope'" in done.stderr
        and "Traceback" not in done.stderr
    )


def test_root_from_environment(root, capsys, monkeypatch):
    monkeypatch.setenv("MLOPS_ARTIFACT_ROOT", root)
    code, out, _ = _run(capsys, "models", "list", "--json")
    assert code == 0 and json.loads(out)["root"] == root


def test_list_reports_an_unreadable_model_and_lists_the_others(root, capsys):
    store = ArtifactStore(root)
    store.write_bytes("registry/broken/versions/1/metadata.json", b"{not json")
    code, out, err = _run(capsys, "--root", root, "models", "list")
    assert code == 2
    assert MODEL in out
    assert err.startswith("mlops: error: model 'broken'") and "Traceback" not in err


def test_show_metric_columns(root, capsys):
    code, out, _ = _run(capsys, "--root", root, "models", "show", MODEL, "--metric", "log_loss,roc_auc")
    assert code == 0
    header = next(line for line in out.splitlines() if line.startswith("VERSION"))
    assert "LOG_LOSS" in header and "ROC_AUC" in header


def test_an_empty_registry_says_which_root_was_looked_at_and_why(tmp_path, monkeypatch, capsys):
    from mlops_provider.cli import main

    monkeypatch.delenv("MLOPS_ARTIFACT_ROOT", raising=False)
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path / "home"))
    assert main(["models", "list"]) == 0
    out = capsys.readouterr().out
    assert f"No models registered under file://{tmp_path}/home/mlops" in out
    assert "the default $AIRFLOW_HOME/mlops" in out and "set MLOPS_ARTIFACT_ROOT or pass --root" in out
    monkeypatch.setenv("MLOPS_ARTIFACT_ROOT", f"file://{tmp_path}/elsewhere")
    assert main(["models", "show", "flights_delay"]) == 2
    err = capsys.readouterr().err
    assert (
        f"registry at file://{tmp_path}/elsewhere, chosen by the environment variable MLOPS_ARTIFACT_ROOT"
        in err
    )
