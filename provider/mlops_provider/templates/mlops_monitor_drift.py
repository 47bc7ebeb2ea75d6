"""Drift monitoring: each month, compare the month just ended with the champion's training data
(found through the registry's lineage) and, when the policy says so, request a retrain with an
asset event on x-mlops://<model>/retrain-requested (mlops_retrain_on_event is scheduled on it).

The same window also gets the champion's performance estimated before its labels are known (CBPE,
from its calibrated probabilities): an estimated drop beyond ESTIMATE_TOLERANCE requests a retrain
with reason "estimated_performance". Rows whose label is already known give the realised metrics,
recorded next to the estimate (the registry page shows both).
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import DAG, CronDataIntervalTimetable

from mlops_provider.core.names import check_name
from mlops_provider.operators.drift import DetectDriftOperator
from mlops_provider.operators.estimate import EstimatePerformanceOperator
from mlops_provider.operators.extract import ExtractOperator

# ------------------------------------------------------------------ configuration
MODEL_NAME = "flights_delay"  # registry name: datasets, tags and asset URIs derive from it
# unique in your DAG folder (`mlops templates copy` derives it from MODEL_NAME)
DAG_ID = "mlops_monitor_drift"
CONN_ID = "mlops_warehouse"
FEATURES = ["carrier", "origin", "dest", "hour", "distance", "day_of_week",  # not "month": it always moves
            "temp", "dewp", "humid", "wind_dir", "wind_speed", "precip", "pressure", "visib"]
# PSI per feature: hourly weather moves month to month far more than routes and carriers do
PSI_THRESHOLD = {"default": 0.2, "temp": 1.0, "dewp": 1.0, "pressure": 1.0, "wind_dir": 0.5, "humid": 0.5}
MIN_DRIFTED_FEATURES = 2  # retrain when at least this many features drift ...
PERSISTENCE = 1  # ... in each of the last PERSISTENCE monthly windows
# performance estimated before labels (CBPE): binary roc_auc, accuracy or f1; multiclass roc_auc_ovr,
# accuracy or f1_macro; a retrain is requested when the estimate falls more than ESTIMATE_TOLERANCE
# below the champion's value on its evaluation data (ESTIMATE_METRIC = None: no estimate task)
ESTIMATE_METRIC = "accuracy"
ESTIMATE_TOLERANCE = 0.03
MAX_CALIBRATION_ERROR = 0.01  # recalibrate the probabilities on the evaluation data above this ECE
# the label where it is already known (NULL until then): gives the realised metrics (None: no label)
LABEL_SQL = "CASE WHEN arr_delay IS NULL THEN NULL WHEN arr_delay > 15 THEN 1 ELSE 0 END AS late"
SCHEDULE = CronDataIntervalTimetable("0 0 1 * *", timezone="UTC")  # monthly, for the month just ended
MODEL_ONLY_COLUMNS = ["month"]  # the champion's other inputs: the estimate needs every feature it uses
WINDOW_COLUMNS = FEATURES + MODEL_ONLY_COLUMNS + ([LABEL_SQL] if LABEL_SQL else [])
WINDOW_SQL = f"SELECT id AS flight_id, {', '.join(WINDOW_COLUMNS)}" + """
 FROM flights
 WHERE sched_dep_at >= '{{ data_interval_start | ds }}'
   AND sched_dep_at < '{{ data_interval_end | ds }}' ORDER BY id"""
# ---------------------------------------------------------------------------------

with DAG(
    dag_id=DAG_ID,
    description=f"Monthly drift check of {MODEL_NAME}'s inputs against its champion's training data",
    schedule=SCHEDULE,
    start_date=dt.datetime(2013, 4, 1, tzinfo=dt.timezone.utc),
    catchup=False,
    max_active_runs=1,
    default_args={"execution_timeout": dt.timedelta(hours=1)},
    tags=["mlops", "monitoring", "drift", check_name(MODEL_NAME, "MODEL_NAME", "the configuration block")],
) as dag:
    window = ExtractOperator(task_id="extract_window", dataset_name=f"{MODEL_NAME}_window", conn_id=CONN_ID,
                             sql=WINDOW_SQL, retries=2, retry_delay=dt.timedelta(minutes=1))
    DetectDriftOperator(task_id="detect_drift", model_name=MODEL_NAME, dataset=window.output,
                        features=FEATURES, psi_threshold=PSI_THRESHOLD,
                        min_drifted_features=MIN_DRIFTED_FEATURES, persistence=PERSISTENCE)
    if ESTIMATE_METRIC:
        EstimatePerformanceOperator(task_id="estimate_performance", model_name=MODEL_NAME,
                                    dataset=window.output, metric=ESTIMATE_METRIC,
                                    tolerance=ESTIMATE_TOLERANCE, max_calibration_error=MAX_CALIBRATION_ERROR)
