"""Managed batch scoring: when a month outgrows the Airflow workers, SageMaker Batch Transform or
Vertex AI batch prediction (BACKEND) scores it, through the Amazon / Google providers' operators.

`model` resolves the champion (or the `model_ref` Param) ONCE into a version + sha256; `score`
builds the job for that pinned version from the config below and runs the provider's operator
(imported when the task runs: at parse time it would cost 0.4 s and boto3, or 7.5 s for
google-cloud-aiplatform). When the job has finished, a manifest (backend, job, version, sha256,
input, output, window) is written under predictions/<model>/<dag_id>/<run>/ like the other scoring
templates, so a later run can find the window.

Not in this file, to provide on your side:
* the month's features under INPUT: CSV files with the id first (SageMaker; e.g. a Redshift
  UNLOAD), or a BigQuery table (Vertex AI);
* SageMaker: with the sagemaker registry backend, model packages with an inference image; with
  the registry on the artifact store (on S3), image_uri: a serving image whose inference code loads
  the version folder's model.skops (and may check MLOPS_MODEL_SHA256);
* Vertex AI: the vertex registry backend (vertex_model_id None), or each version uploaded as
  vertex_model_id with the version alias v<version>.
Copy this file and edit the config.
"""

from __future__ import annotations

import datetime as dt
import os

from airflow.sdk import DAG, CronDataIntervalTimetable, Param

from mlops_provider.core.names import check_name
from mlops_provider.operators.batch_score import ResolveModelVersionOperator
from mlops_provider.operators.managed import ManagedBatchScoreOperator
from mlops_provider.operators.windows import ScoringWindowOperator

# ------------------------------------------------------------------ configuration
BACKEND = os.environ.get("MLOPS_MANAGED_BACKEND", "sagemaker")  # "sagemaker" or "vertex"
MODEL_NAME = "flights_delay"  # registry name: datasets, tags and asset URIs derive from it
# unique in your DAG folder (`mlops templates copy` derives it from MODEL_NAME)
DAG_ID = "mlops_batch_score_managed"
SCHEDULE = CronDataIntervalTimetable("0 0 1 * *", timezone="UTC")  # monthly, for the month just ended
MONTH = "{{ ti.xcom_pull(task_ids='window')[0][:7] }}"  # e.g. 2013-08
SAGEMAKER = {  # SageMakerTransformOperator (config built by mlops_provider.core.managed)
    "conn_id": "aws_default",
    "input_uri": f"s3://my-bucket/exports/flights/{MONTH}/",  # CSV: flight_id, then the features
    "output_uri": f"s3://my-bucket/predictions/{MODEL_NAME}/{MONTH}/",
    # image_uri: serves the versions of the registry on the artifact store (sagemaker registry: unused)
    "options": {"image_uri": "123456789012.dkr.ecr.us-east-1.amazonaws.com/mlops-skops-serving:1",
                "role_arn": "arn:aws:iam::123456789012:role/mlops-batch-transform",
                "instance_type": "ml.m5.xlarge", "instance_count": 4, "content_type": "text/csv",
                "split_type": "Line", "max_payload_mb": 6,
                # score the features, keep the id: output rows are "flight_id,score"
                "input_filter": "$[1:]", "join_source": "Input", "output_filter": "$[0,-1]"},
}
VERTEX = {  # CreateBatchPredictionJobOperator
    "conn_id": "google_cloud_default",
    "input_uri": "bq://my-project.flights.scoring_"
                 "{{ ti.xcom_pull(task_ids='window')[0][:7] | replace('-', '_') }}",
    "output_uri": "bq://my-project.predictions",
    # vertex_model_id: None with the vertex registry backend
    "options": {"project_id": "my-project", "region": "us-central1", "vertex_model_id": MODEL_NAME,
                "machine_type": "n1-standard-4", "starting_replica_count": 1, "max_replica_count": 8},
}
DEFERRABLE = False  # True: wait for the job in the triggerer, not in a worker slot
# ---------------------------------------------------------------------------------

with DAG(
    dag_id=DAG_ID,
    description=f"Score each month with the {MODEL_NAME} champion on {BACKEND}",
    schedule=SCHEDULE,
    start_date=dt.datetime(2013, 4, 1, tzinfo=dt.timezone.utc),
    catchup=False,
    max_active_runs=1,
    render_template_as_native_obj=True,
    default_args={"retries": 2, "retry_delay": dt.timedelta(minutes=5),
                  "execution_timeout": dt.timedelta(hours=12)},
    params={"model_ref": Param("champion", type=["string", "integer"],
                               description="Alias or version number to score with")},
    tags=["mlops", "scoring", "managed", check_name(MODEL_NAME, "MODEL_NAME", "the configuration block")],
) as dag:
    window = ScoringWindowOperator(task_id="window", model_name=MODEL_NAME, retries=0)
    model = ResolveModelVersionOperator(task_id="model", model_name=MODEL_NAME,
                                        model_ref="{{ params.model_ref }}")
    score = ManagedBatchScoreOperator(
        task_id="score", backend=BACKEND, model_name=MODEL_NAME, model=model.output, deferrable=DEFERRABLE,
        window="{{ ti.xcom_pull(task_ids='window') }}", **(SAGEMAKER if BACKEND == "sagemaker" else VERTEX),
    )
    window >> model >> score
