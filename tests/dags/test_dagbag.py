"""The templates parse cleanly, cheaply, and are wired as documented."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

DAGS = Path(__file__).resolve().parents[2] / "dags"
TEMPLATES = {
    "mlops_retrain_scheduled",
    "mlops_batch_score",
    "mlops_retrain_on_event",
    "mlops_monitor_drift",
    "mlops_batch_score_partitioned",
    "mlops_batch_score_managed",
}
HEAVY = ("pandas", "numpy", "sklearn", "great_expectations", "pyarrow", "scipy", "boto3", "skops", "mlflow")


@pytest.fixture(scope="module")
def bag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS))


def test_no_import_errors_and_templates_present(bag):
    assert bag.import_errors == {}
    assert TEMPLATES <= set(bag.dag_ids)


@pytest.mark.parametrize("dag_id", sorted(TEMPLATES))
def test_template_conventions(bag, dag_id):
    dag = bag.dags[dag_id]
    assert dag.catchup is False
    assert dag.max_active_runs == 1
    assert "mlops" in dag.tags
    for task in dag.tasks:
        if type(task).__name__ in ("ExtractOperator", "RegisterModelOperator", "BatchScoreOperator"):
            assert task.retries >= 1, f"{dag_id}.{task.task_id} does I/O and should retry"
    src = (DAGS / f"{dag_id}.py").read_text()
    assert len(src.splitlines()) <= 100, "a template is one screen"


def test_retrain_wiring_and_params(bag):
    dag = bag.dags["mlops_retrain_scheduled"]
    assert set(dag.params) >= {
        "train_months",
        "max_iter",
        "learning_rate",
        "min_roc_auc",
        "min_improvement",
        "seed",
    }
    up = {t.task_id: set(t.upstream_task_ids) for t in dag.tasks}
    assert up["train"] == {"extract_train", "validate_train"}
    assert up["evaluate"] == {"train", "extract_eval", "validate_eval"}
    assert up["register"] == {"evaluate"}


def test_parsing_templates_imports_nothing_heavy():
    code = (
        "import sys, json, runpy\n"
        f"for f in {sorted(str(p) for p in DAGS.glob('*.py'))!r}: runpy.run_path(f)\n"
        f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=os.environ, check=True
    )
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


def test_alert_always_runs_after_the_gates_and_approval_is_optional(bag):
    dag = bag.dags["mlops_retrain_scheduled"]
    alert = dag.get_task("alert")
    assert str(alert.trigger_rule) in ("all_done", "TriggerRule.ALL_DONE")
    assert set(alert.upstream_task_ids) == {"validate_train", "validate_eval", "evaluate"}
    assert "approve_promotion" not in dag.task_ids  # off by default
    src = (
        (DAGS / "mlops_retrain_scheduled.py")
        .read_text()
        .replace("REQUIRE_APPROVAL = False", "REQUIRE_APPROVAL = True")
    )
    namespace: dict = {"__name__": "approval_variant"}
    exec(compile(src, "approval_variant.py", "exec"), namespace)
    approved = namespace["dag"]
    assert approved.get_task("approve_promotion").upstream_task_ids == {"evaluate"}
    assert approved.get_task("register").upstream_task_ids == {"evaluate", "approve_promotion"}
