"""The retraining chain shared by the templates: extract -> validate -> train -> evaluate ->
(approve) -> register, with an alert after the gates. Call it inside a ``with DAG(...)`` block.

Light at import (the DAG processor imports it): operators are imported lazily by their modules.
"""

from __future__ import annotations

import datetime as dt
from typing import Any


def retrain_chain(
    *,
    model_name: str,
    conn_id: str | None,
    train_sql: str | None,
    eval_sql: str | None,
    label: str,
    features: list[str],
    expectations: Any,
    categorical: list[str] | None = None,
    eval_source_uri: str | None = None,
    train_source_uri: str | None = None,
    estimator: str = "sklearn.ensemble.HistGradientBoostingClassifier",
    model_params: Any = "{{ params.model_params }}",
    seed: Any = "{{ params.seed }}",
    thresholds: Any = "{{ params.thresholds }}",
    min_improvement: Any = "{{ params.min_improvement }}",
    bootstrap: str = "promote",
    on_model_gate_fail: str = "warn",
    slice_column: str | None = None,
    alert_channels: Any = ({"type": "log"},),
    require_approval: bool = False,
    io_retries: int = 2,
) -> dict[str, Any]:
    """Create the chain's tasks in the current DAG; returns them by task id."""
    from mlops_provider.notifications.quality_gate import GateAlertOperator
    from mlops_provider.operators.evaluate import EvaluateModelOperator
    from mlops_provider.operators.extract import ExtractOperator
    from mlops_provider.operators.register import RegisterModelOperator
    from mlops_provider.operators.train import TrainModelOperator
    from mlops_provider.operators.validate import ValidateDataOperator

    io = {"retries": io_retries, "retry_delay": dt.timedelta(minutes=1)}
    extract_train = ExtractOperator(task_id="extract_train", dataset_name=f"{model_name}_train", conn_id=conn_id,
                                    sql=train_sql, source_uri=train_source_uri, **io)
    extract_eval = ExtractOperator(task_id="extract_eval", dataset_name=f"{model_name}_eval", conn_id=conn_id,
                                   sql=eval_sql, source_uri=eval_source_uri, **io)
    validate_train = ValidateDataOperator(task_id="validate_train", dataset=extract_train.output, expectations=expectations)
    validate_eval = ValidateDataOperator(task_id="validate_eval", dataset=extract_eval.output, expectations=expectations)
    train = TrainModelOperator(task_id="train", dataset=extract_train.output, label=label, features=features,
                               categorical=categorical, estimator=estimator, model_params=model_params, seed=seed)
    evaluate = EvaluateModelOperator(task_id="evaluate", model_name=model_name, model=train.output,
                                     dataset=extract_eval.output, thresholds=thresholds,
                                     min_improvement=min_improvement, bootstrap=bootstrap,
                                     on_fail=on_model_gate_fail, slice_column=slice_column)
    register = RegisterModelOperator(task_id="register", model_name=model_name, evaluation=evaluate.output, **io)
    alert = GateAlertOperator(task_id="alert", gate_task_ids=["validate_train", "validate_eval", "evaluate"],
                              channels=list(alert_channels), trigger_rule="all_done")
    validate_train >> train
    validate_eval >> evaluate
    [validate_train, validate_eval, evaluate] >> alert
    tasks = {t.task_id: t for t in (extract_train, extract_eval, validate_train, validate_eval, train, evaluate,
                                    register, alert)}
    if require_approval:
        from airflow.providers.standard.operators.hitl import ApprovalOperator

        approve = ApprovalOperator(task_id="approve_promotion", subject=f"Promote the new {model_name} version?",
                                   body="{{ ti.xcom_pull(task_ids='evaluate')['summary'] }}",
                                   response_timeout=dt.timedelta(days=2))
        evaluate >> approve >> register
        tasks["approve_promotion"] = approve
    return tasks
