"""Event-triggered retraining: a new month of labelled data lands, or drift / a performance drop is
detected (x-mlops://<model>/retrain-requested). The run reads triggering_asset_events to know why and
on which data, rejects any malformed payload, then runs the same chain as the scheduled template.
"""

from __future__ import annotations

import datetime as dt
import os

from airflow.sdk import DAG, Asset, AssetWatcher

from mlops_provider.chains import retrain_chain
from mlops_provider.core.names import check_name
from mlops_provider.forms import retrain_params
from mlops_provider.operators.windows import PlanEventRetrainOperator
from mlops_provider.triggers.new_data import NewDataTrigger

# ------------------------------------------------------------------ configuration
MODEL_NAME = "flights_delay"  # registry name: datasets, tags and asset URIs derive from it
# unique in your DAG folder (`mlops templates copy` derives it from MODEL_NAME)
DAG_ID = "mlops_retrain_on_event"
CONN_ID = "mlops_warehouse"
LANDING_URI = (os.environ.get("MLOPS_LANDING_URI")
               or f"file://{os.environ.get('AIRFLOW_HOME', '/opt/airflow')}/landing/flights/")
# aws / google_cloud_platform connection for s3:// or gs://
LANDING_CONN_ID = os.environ.get("MLOPS_LANDING_CONN_ID")
POKE_SECONDS = float(os.environ.get("MLOPS_LANDING_POKE_SECONDS", "30"))  # SQS instead: see NewDataTrigger
LABEL = "late"
POSITIVE_LABEL = 1  # binary: the class precision/recall/F1/ROC AUC are about; None: multiclass/regression
FEATURES = ["carrier", "origin", "dest", "hour", "distance", "month", "day_of_week",
            "temp", "dewp", "humid", "wind_dir", "wind_speed", "precip", "pressure", "visib"]
CATEGORICAL = ["carrier", "origin", "dest"]
ESTIMATOR = "sklearn.ensemble.HistGradientBoostingClassifier"
HYPERPARAMETERS = {"max_iter": 100, "learning_rate": 0.1}  # one typed form field each
TRAIN_MONTHS = 3
THRESHOLDS = {"roc_auc": 0.65}  # absolute gates by scikit-learn scorer name or alias
COMPARE_METRIC = None  # None: roc_auc (binary), log_loss (multiclass), rmse (regression)
PROMOTE_IF, MIN_IMPROVEMENT = "better", 0.0  # or "significantly_better"; the gain must exceed MIN_IMPROVEMENT
ON_DATA_GATE_FAIL, ON_MODEL_GATE_FAIL = "fail", "warn"  # "fail" | "skip" | "warn": warn registers unpromoted
SLICE_COLUMN, CLUSTER_COLUMN = "carrier", None  # cluster: e.g. a date column (the interval resamples days)
SLICE_GATES = []  # slice/fairness gates, e.g. [{"column": "carrier", "metric": "roc_auc", "min": 0.6}]
ALERT_CHANNELS = [{"type": "log"}]
INTENDED_USE, LIMITATIONS = None, []  # model card (None: derived from MODEL_NAME, LABEL)
SELECT = (f"SELECT id AS flight_id, substr(sched_dep_at, 1, 10) AS dep_date, {', '.join(FEATURES)}, "
          f"CASE WHEN arr_delay > 15 THEN 1 ELSE 0 END AS {LABEL} FROM flights")
# one window's labelled rows: the plan task fills {start} and {end} (ISO dates) for train and eval
WINDOW_SQL = (SELECT + " WHERE arr_delay IS NOT NULL AND sched_dep_at >= '{start}' AND sched_dep_at < '{end}'"
              " ORDER BY id")
EXPECTATIONS = [
    {"type": "expect_table_row_count_to_be_between", "kwargs": {"min_value": 1000}},
    {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "carrier"}},
    {"type": "expect_column_values_to_be_between",
     "kwargs": {"column": "distance", "min_value": 1, "max_value": 5000}},
    {"type": "expect_column_values_to_be_in_set", "kwargs": {"column": LABEL, "value_set": [0, 1]}},
]
NEW_DATA = Asset(name=f"{MODEL_NAME}_landing", uri=LANDING_URI, watchers=[
    AssetWatcher(name=f"{MODEL_NAME}_landing_watch",
                 trigger=NewDataTrigger(uri=LANDING_URI, pattern="*.parquet", conn_id=LANDING_CONN_ID,
                                        poke_interval=POKE_SECONDS))])
RETRAIN_REQUESTED = Asset(f"x-mlops://{MODEL_NAME}/retrain-requested")
# ---------------------------------------------------------------------------------

with DAG(
    dag_id=DAG_ID,
    description=f"Retrain {MODEL_NAME} when new data lands or a retrain is requested",
    schedule=(NEW_DATA | RETRAIN_REQUESTED),
    start_date=dt.datetime(2013, 1, 1, tzinfo=dt.timezone.utc),
    catchup=False, max_active_runs=1,
    render_template_as_native_obj=True,
    params=retrain_params(ESTIMATOR, HYPERPARAMETERS, THRESHOLDS, compare_metric=COMPARE_METRIC,
                          promote_if=PROMOTE_IF, min_improvement=MIN_IMPROVEMENT,
                          positive_label=POSITIVE_LABEL),
    tags=["mlops", "retraining", "event-driven",
          check_name(MODEL_NAME, "MODEL_NAME", "the configuration block")],
) as dag:
    plan = PlanEventRetrainOperator(task_id="plan", landing_uri=LANDING_URI, train_months=TRAIN_MONTHS,
                                    window_sql=WINDOW_SQL)
    tasks = retrain_chain(
        model_name=MODEL_NAME, conn_id=CONN_ID, label=LABEL, features=FEATURES, categorical=CATEGORICAL,
        estimator=ESTIMATOR, expectations=EXPECTATIONS,
        train_sql="{{ ti.xcom_pull(task_ids='plan')['train_sql'] }}",
        eval_sql="{{ ti.xcom_pull(task_ids='plan')['eval_sql'] }}",
        eval_source_uri="{{ ti.xcom_pull(task_ids='plan')['eval_uri'] }}", slice_column=SLICE_COLUMN,
        cluster_column=CLUSTER_COLUMN, slice_gates=SLICE_GATES, intended_use=INTENDED_USE,
        limitations=LIMITATIONS, positive_label="{{ params.positive_label }}",
        compare_metric="{{ params.compare_metric }}", promote_if="{{ params.promote_if }}",
        on_data_gate_fail=ON_DATA_GATE_FAIL, on_model_gate_fail=ON_MODEL_GATE_FAIL,
        alert_channels=ALERT_CHANNELS)
    plan >> [tasks["extract_train"], tasks["extract_eval"]]
