"""Batch scoring: extract a month's flights, score them with the champion, write Parquet.

Monthly runs score their data interval. With SCORE_ON_NEW_CHAMPION, every champion change (by a
retraining DAG, `mlops models promote|rollback` or the registry page) also starts a run, which
re-scores the most recently scored month with the new champion. Copy this file and edit the config.
"""

from __future__ import annotations

import datetime as dt
import os

from airflow.sdk import DAG, Asset, AssetOrTimeSchedule, AssetWatcher, CronDataIntervalTimetable, Param

from mlops_provider.core.names import check_name
from mlops_provider.operators.batch_score import BatchScoreOperator
from mlops_provider.operators.extract import ExtractOperator
from mlops_provider.operators.windows import ScoringWindowOperator
from mlops_provider.triggers.champion import ChampionChangedTrigger

# ------------------------------------------------------------------ configuration
MODEL_NAME = "flights_delay"  # registry name: datasets, tags and asset URIs derive from it
# unique in your DAG folder (`mlops templates copy` derives it from MODEL_NAME)
DAG_ID = "mlops_batch_score"
CONN_ID = "mlops_warehouse"
FEATURES = ["carrier", "origin", "dest", "hour", "distance", "month", "day_of_week",
            "temp", "dewp", "humid", "wind_dir", "wind_speed", "precip", "pressure", "visib"]
ID_COLUMNS = ["flight_id"]  # copied next to each prediction
SCHEDULE = CronDataIntervalTimetable("0 0 1 * *", timezone="UTC")  # monthly, for the month just ended
SCORE_ON_NEW_CHAMPION = True
CHAMPION_POKE_SECONDS = float(os.environ.get("MLOPS_CHAMPION_POKE_SECONDS", "30"))
CHAMPION = Asset(f"x-mlops://{MODEL_NAME}/champion", watchers=[
    AssetWatcher(name=f"{MODEL_NAME}_champion_watch",
                 trigger=ChampionChangedTrigger(model_name=MODEL_NAME, poke_interval=CHAMPION_POKE_SECONDS))])
SCORE_SQL = f"SELECT id AS flight_id, {', '.join(FEATURES)} FROM flights" + """
 WHERE sched_dep_at >= '{{ ti.xcom_pull(task_ids='window')[0] }}'
   AND sched_dep_at < '{{ ti.xcom_pull(task_ids='window')[1] }}' ORDER BY id"""
BATCH_SIZE = 131_072
# ---------------------------------------------------------------------------------

with DAG(
    dag_id=DAG_ID,
    description=f"Score each month's flights with the {MODEL_NAME} champion",
    schedule=AssetOrTimeSchedule(timetable=SCHEDULE, assets=CHAMPION) if SCORE_ON_NEW_CHAMPION else SCHEDULE,
    start_date=dt.datetime(2013, 4, 1, tzinfo=dt.timezone.utc),
    catchup=False,
    max_active_runs=1,
    render_template_as_native_obj=True,
    default_args={"retries": 2, "retry_delay": dt.timedelta(minutes=1),
                  "execution_timeout": dt.timedelta(hours=4)},
    params={"model_ref": Param("champion", type=["string", "integer"],
                               description="Alias or version number to score with")},
    tags=["mlops", "scoring", check_name(MODEL_NAME, "MODEL_NAME", "the configuration block")],
) as dag:
    # the data interval; after a champion change, the last scored window (skipped if none yet)
    window = ScoringWindowOperator(task_id="window", model_name=MODEL_NAME, retries=0)
    extract = ExtractOperator(task_id="extract", dataset_name=f"{MODEL_NAME}_score", conn_id=CONN_ID,
                              sql=SCORE_SQL)
    window >> extract
    score = BatchScoreOperator(task_id="score", model_name=MODEL_NAME, dataset=extract.output,
                               model_ref="{{ params.model_ref }}", passthrough=ID_COLUMNS,
                               batch_size=BATCH_SIZE, window="{{ ti.xcom_pull(task_ids='window') }}")
