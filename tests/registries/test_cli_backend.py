"""``mlops models ...`` works on the registry backend the DAGs use (``--registry`` /
``MLOPS_REGISTRY``): here MLflow on a local sqlite tracking store, configured through an Airflow
``mlflow`` connection."""

from __future__ import annotations

import json

from mlops_provider.cli import main
from mlops_provider.registries.mlflow import MlflowRegistry
from tests.registries.conftest import model_bytes


def test_cli_lists_promotes_and_rolls_back_on_mlflow(tmp_path, store, monkeypatch, capsys):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    monkeypatch.setenv("AIRFLOW_CONN_MLOPS_MLFLOW", json.dumps({"conn_type": "mlflow", "host": uri}))
    reg = MlflowRegistry(store, tracking_uri=uri, artifact_location=f"file://{tmp_path}/mlruns")
    reg.register("cli_model", model_bytes(1.0), run_key="d/r1/register", metrics={"roc_auc": 0.7})
    reg.register("cli_model", model_bytes(2.0), run_key="d/r2/register", metrics={"roc_auc": 0.8})
    reg.promote("cli_model", 1, actor="test", reason="first")
    base = ["--root", store.root, "--registry", "mlflow", "--registry-conn-id", "mlops_mlflow"]

    assert main(["models", "list", *base, "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    (model,) = [m for m in listed["models"] if m["name"] == "cli_model"]
    assert model["aliases"] == {"champion": 1}

    assert main(["models", "promote", "cli_model", "2", "--reason", "better on July", *base]) == 0
    capsys.readouterr()
    assert reg.get_alias("cli_model") == 2
    assert (
        int(reg.client.get_model_version_by_alias("cli_model", "champion").version) == 2
    )  # MLflow's own alias

    monkeypatch.setenv("MLOPS_REGISTRY", "mlflow")
    monkeypatch.setenv("MLOPS_REGISTRY_CONN_ID", "mlops_mlflow")
    assert main(["models", "rollback", "cli_model", "--reason", "regression", "--root", store.root]) == 0
    assert reg.get_alias("cli_model") == 1
    assert [(e.version, e.previous_version) for e in reg.history("cli_model")] == [(1, None), (2, 1), (1, 2)]

    assert main(["models", "list", "--root", store.root, "--registry", "nonsense"]) != 0
    assert "nonsense" in capsys.readouterr().err
