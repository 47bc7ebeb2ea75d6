"""Batch scoring: extract the month's flights, score them with the champion, write Parquet.

Each monthly run scores its data interval with whatever version holds the champion alias when it
runs; the predictions carry that version. Copy this file and edit the configuration block.
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import DAG, CronDataIntervalTimetable, Param

from mlops_provider.operators.batch_score import BatchScoreOperator
from mlops_provider.operators.extract import ExtractOperator

# ------------------------------------------------------------------ configuration
MODEL_NAME = "flights_delay"
CONN_ID = "mlops_warehouse"
FEATURES = ["carrier", "origin", "dest", "hour", "distance", "month", "day_of_week",
            "temp", "dewp", "humid", "wind_dir", "wind_speed", "precip", "pressure", "visib"]
ID_COLUMNS = ["flight_id"]  # copied next to each prediction
SCHEDULE = CronDataIntervalTimetable("0 0 1 * *", timezone="UTC")  # monthly, for the month just ended
SCORE_SQL = f"SELECT id AS flight_id, {', '.join(FEATURES)} FROM flights" + """
 WHERE sched_dep_at >= '{{ data_interval_start | ds }}' AND sched_dep_at < '{{ data_interval_end | ds }}' ORDER BY id"""
BATCH_SIZE = 131_072
# ---------------------------------------------------------------------------------

with DAG(
    dag_id="mlops_batch_score",
    description=f"Score each month's flights with the {MODEL_NAME} champion",
    schedule=SCHEDULE,
    start_date=dt.datetime(2013, 4, 1, tzinfo=dt.timezone.utc),
    catchup=False,
    max_active_runs=1,
    render_template_as_native_obj=True,
    default_args={"retries": 2, "retry_delay": dt.timedelta(minutes=1), "execution_timeout": dt.timedelta(hours=4)},
    params={"model_ref": Param("champion", type=["string", "integer"], description="Alias or version number to score with")},
    tags=["mlops", "scoring", MODEL_NAME],
) as dag:
    extract = ExtractOperator(task_id="extract", dataset_name=f"{MODEL_NAME}_score", conn_id=CONN_ID, sql=SCORE_SQL)
    score = BatchScoreOperator(task_id="score", model_name=MODEL_NAME, dataset=extract.output,
                               model_ref="{{ params.model_ref }}", passthrough=ID_COLUMNS, batch_size=BATCH_SIZE)
