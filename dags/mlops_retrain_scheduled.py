"""Scheduled retraining: extract -> validate -> train -> evaluate vs champion -> register (+promote).

Each monthly run covers the month just ended (its data interval): the model trains on the TRAIN_MONTHS
months before it and is judged, with the champion, on that month. Copy this file and edit the config
block; trigger from the UI to override the Params (model parameters, thresholds, window, seed).
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import DAG, CronDataIntervalTimetable, Param

from mlops_provider.macros import MACROS
from mlops_provider.notifications.quality_gate import GateAlertOperator
from mlops_provider.operators.evaluate import EvaluateModelOperator
from mlops_provider.operators.extract import ExtractOperator
from mlops_provider.operators.register import RegisterModelOperator
from mlops_provider.operators.train import TrainModelOperator
from mlops_provider.operators.validate import ValidateDataOperator

# ------------------------------------------------------------------ configuration
MODEL_NAME = "flights_delay"
CONN_ID = "mlops_warehouse"  # any DB-API connection: postgres, mysql, sqlite, redshift, snowflake...
LABEL = "late"
FEATURES = ["carrier", "origin", "dest", "hour", "distance", "month", "day_of_week",
            "temp", "dewp", "humid", "wind_dir", "wind_speed", "precip", "pressure", "visib"]
CATEGORICAL = ["carrier", "origin", "dest"]
ESTIMATOR = "sklearn.ensemble.HistGradientBoostingClassifier"
MODEL_PARAMS = {"max_iter": 100, "learning_rate": 0.1, "max_leaf_nodes": 31}
TRAIN_MONTHS = 3
THRESHOLDS = {"roc_auc": 0.65}  # absolute gate on the evaluation month
MIN_IMPROVEMENT = 0.0  # the challenger must beat the champion by more than this (ties never promote)
ON_MODEL_GATE_FAIL = "warn"  # "fail" | "skip" | "warn": warn registers the challenger unpromoted
SLICE_COLUMN = "carrier"  # per-slice metrics in the evaluation report
ALERT_CHANNELS = [{"type": "log"}]  # + {"type": "email", "to": [...]}, {"type": "slack", "conn_id": ...}, sns, webhook
REQUIRE_APPROVAL = False  # True: a person approves each promotion in the UI (human-in-the-loop), seeing the verdict
SCHEDULE = CronDataIntervalTimetable("0 0 1 * *", timezone="UTC")  # monthly, for the month just ended
SELECT = f"SELECT id AS flight_id, {', '.join(FEATURES)}, CASE WHEN arr_delay > 15 THEN 1 ELSE 0 END AS {LABEL} FROM flights"
TRAIN_SQL = SELECT + """ WHERE arr_delay IS NOT NULL
  AND sched_dep_at >= '{{ months_before(data_interval_start, params.train_months) }}'
  AND sched_dep_at < '{{ data_interval_start | ds }}' ORDER BY id"""
EVAL_SQL = SELECT + """ WHERE arr_delay IS NOT NULL
  AND sched_dep_at >= '{{ data_interval_start | ds }}' AND sched_dep_at < '{{ data_interval_end | ds }}' ORDER BY id"""
EXPECTATIONS = [
    {"type": "expect_table_row_count_to_be_between", "kwargs": {"min_value": 1000}},
    {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "carrier"}},
    {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "distance"}},
    {"type": "expect_column_values_to_be_between", "kwargs": {"column": "distance", "min_value": 1, "max_value": 5000}},
    {"type": "expect_column_values_to_be_in_set", "kwargs": {"column": "origin", "value_set": ["EWR", "JFK", "LGA"]}},
    {"type": "expect_column_values_to_be_in_set", "kwargs": {"column": LABEL, "value_set": [0, 1]}},
]
# ---------------------------------------------------------------------------------

with DAG(
    dag_id="mlops_retrain_scheduled",
    description=f"Monthly retraining of {MODEL_NAME} with champion/challenger promotion",
    schedule=SCHEDULE,
    start_date=dt.datetime(2013, 4, 1, tzinfo=dt.timezone.utc),
    catchup=False,
    max_active_runs=1,
    render_template_as_native_obj=True,
    user_defined_macros=MACROS,
    default_args={"retries": 0, "execution_timeout": dt.timedelta(hours=2)},
    params={
        "train_months": Param(TRAIN_MONTHS, type="integer", minimum=1, maximum=24, description="Months of history to train on"),
        "model_params": Param(MODEL_PARAMS, type="object", description=f"Parameters of {ESTIMATOR}"),
        "thresholds": Param(THRESHOLDS, type="object", description='Absolute gates, e.g. {"roc_auc": 0.7}'),
        "min_improvement": Param(MIN_IMPROVEMENT, type="number", minimum=0),
        "seed": Param(42, type="integer", minimum=0),
    },
    tags=["mlops", "retraining", MODEL_NAME],
) as dag:
    io_retries = {"retries": 2, "retry_delay": dt.timedelta(minutes=1)}
    extract_train = ExtractOperator(task_id="extract_train", dataset_name=f"{MODEL_NAME}_train",
                                    conn_id=CONN_ID, sql=TRAIN_SQL, **io_retries)
    extract_eval = ExtractOperator(task_id="extract_eval", dataset_name=f"{MODEL_NAME}_eval",
                                   conn_id=CONN_ID, sql=EVAL_SQL, **io_retries)
    validate_train = ValidateDataOperator(task_id="validate_train", dataset=extract_train.output, expectations=EXPECTATIONS)
    validate_eval = ValidateDataOperator(task_id="validate_eval", dataset=extract_eval.output, expectations=EXPECTATIONS)
    train = TrainModelOperator(task_id="train", dataset=extract_train.output, label=LABEL, features=FEATURES,
                               categorical=CATEGORICAL, estimator=ESTIMATOR, model_params="{{ params.model_params }}",
                               seed="{{ params.seed }}")
    evaluate = EvaluateModelOperator(task_id="evaluate", model_name=MODEL_NAME, model=train.output,
                                     dataset=extract_eval.output, thresholds="{{ params.thresholds }}",
                                     min_improvement="{{ params.min_improvement }}", bootstrap="promote",
                                     on_fail=ON_MODEL_GATE_FAIL, slice_column=SLICE_COLUMN)
    register = RegisterModelOperator(task_id="register", model_name=MODEL_NAME, evaluation=evaluate.output, **io_retries)
    alert = GateAlertOperator(task_id="alert", gate_task_ids=["validate_train", "validate_eval", "evaluate"],
                              channels=ALERT_CHANNELS, trigger_rule="all_done")
    validate_train >> train
    validate_eval >> evaluate
    [validate_train, validate_eval, evaluate] >> alert
    if REQUIRE_APPROVAL:
        from airflow.providers.standard.operators.hitl import ApprovalOperator

        approve = ApprovalOperator(task_id="approve_promotion", subject=f"Promote the new {MODEL_NAME} version?",
                                   body="{{ ti.xcom_pull(task_ids='evaluate')['summary'] }}",
                                   response_timeout=dt.timedelta(days=2))
        evaluate >> approve >> register
