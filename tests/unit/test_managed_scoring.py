"""The managed scoring template (SageMaker Batch Transform / Vertex AI batch prediction): it parses
without any cloud SDK, its jobs are built from the config for the pinned version (checked against
the services' request schemas), bad config is refused by name, and the SageMaker job is submitted
through the Amazon provider's operator to moto_server (no AWS): what reaches the API is checked."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

from tests.conftest import REPO
from tests.helpers import context_for

TEMPLATE = REPO / "dags" / "mlops_batch_score_managed.py"
SHA = "ab" * 32
CLOUD_SDKS = ("boto3", "botocore", "google.cloud.aiplatform", "google.cloud.bigquery", "pandas", "pyarrow")


def pin(version_uri="s3://my-bucket/mlops/registry/flights_delay/versions/3"):
    return {
        "model": "flights_delay",
        "version": 3,
        "model_sha256": SHA,
        "version_uri": version_uri,
        "model_uri": f"{version_uri}/model.skops",
        "ref": "champion",
    }


class WindowTI:
    """The task instance fields rendering reads, with the `window` task's XCom."""

    def __init__(self, task_id="score"):
        self.dag_id, self.run_id, self.task_id, self.map_index = (
            "mlops_batch_score_managed",
            "scheduled__2013-09-01",
            task_id,
            -1,
        )

    def xcom_pull(self, task_ids=None, key="return_value", **_):
        return {"window": ["2013-08-01", "2013-09-01"]}[task_ids]


def load_dag(monkeypatch, backend):
    import runpy

    monkeypatch.setenv("MLOPS_MANAGED_BACKEND", backend)
    return runpy.run_path(str(TEMPLATE), run_name=f"managed_{backend}")["dag"]


def rendered_score_task(monkeypatch, backend):
    task = load_dag(monkeypatch, backend).get_task("score")
    task.model = pin()  # what model.output resolves to at run time
    context = {"ti": WindowTI(), "params": {"model_ref": "champion"}}
    task.render_template_fields(context)
    return task, context


def test_template_parses_without_cloud_sdks_for_either_backend():
    code = (
        "import sys, os, json, runpy\nout = []\n"
        "for backend in ('sagemaker', 'vertex'):\n"
        "    os.environ['MLOPS_MANAGED_BACKEND'] = backend\n"
        f"    d = runpy.run_path({str(TEMPLATE)!r})['dag']\n"
        "    up = {t.task_id: sorted(t.upstream_task_ids) for t in d.tasks}\n"
        "    out.append([up, type(d.get_task('score')).__name__, d.get_task('score').backend])\n"
        f"print(json.dumps([out, [m for m in {CLOUD_SDKS!r} if m in sys.modules]]))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=os.environ, check=True
    )
    parsed, heavy = json.loads(proc.stdout.strip().splitlines()[-1])
    assert heavy == []
    for backend, (up, cls, got) in zip(("sagemaker", "vertex"), parsed, strict=True):
        assert up == {"window": [], "model": ["window"], "score": ["model"]}
        assert (cls, got) == ("ManagedBatchScoreOperator", backend)


def test_sagemaker_job_is_built_from_config_for_the_pinned_version(monkeypatch):
    import botocore.session
    from botocore.validate import validate_parameters

    task, context = rendered_score_task(monkeypatch, "sagemaker")
    op = task.build_operator(context)
    assert type(op).__name__ == "SageMakerTransformOperator" and op.aws_conn_id == "aws_default"
    model, transform = op.config["Model"], op.config["Transform"]
    assert transform["TransformInput"]["DataSource"]["S3DataSource"] == {
        "S3DataType": "S3Prefix",
        "S3Uri": "s3://my-bucket/exports/flights/2013-08/",
    }
    assert transform["TransformOutput"]["S3OutputPath"] == "s3://my-bucket/predictions/flights_delay/2013-08/"
    assert transform["ModelName"] == model["ModelName"] == "flights-delay-v3"
    assert re.fullmatch(r"flights-delay-v3-[0-9a-f]{10}", transform["TransformJobName"])
    assert transform["TransformResources"] == {"InstanceType": "ml.m5.xlarge", "InstanceCount": 4}
    assert transform["DataProcessing"] == {
        "InputFilter": "$[1:]",
        "JoinSource": "Input",
        "OutputFilter": "$[0,-1]",
    }
    container = model["PrimaryContainer"]
    assert container["ModelDataSource"]["S3DataSource"] == {
        "S3Uri": "s3://my-bucket/mlops/registry/flights_delay/versions/3/",
        "S3DataType": "S3Prefix",
        "CompressionType": "None",
    }
    assert (
        container["Environment"]["MLOPS_MODEL_SHA256"] == SHA
        and container["Environment"]["MLOPS_MODEL_VERSION"] == "3"
    )
    # the requests are valid for the SageMaker API (botocore's schema: types, required fields, lengths, names)
    api = botocore.session.get_session().get_service_model("sagemaker")
    for operation, request in (("CreateModel", model), ("CreateTransformJob", transform)):
        shape = api.operation_model(operation).input_shape
        validate_parameters(request, shape)
        for field in ("ModelName", "TransformJobName"):
            if field in request:
                assert re.fullmatch(shape.members[field].metadata["pattern"], request[field]), field
    # the same run always gets the same job name; another run another one
    assert (
        task.build_operator(context).config["Transform"]["TransformJobName"] == transform["TransformJobName"]
    )
    context["ti"].run_id = "manual__other"
    assert (
        task.build_operator(context).config["Transform"]["TransformJobName"] != transform["TransformJobName"]
    )


def test_vertex_job_is_built_from_config_for_the_pinned_version(monkeypatch):
    task, context = rendered_score_task(monkeypatch, "vertex")
    op = task.build_operator(context)  # imports google-cloud-aiplatform (seconds): only when the task runs
    assert (
        type(op).__name__ == "CreateBatchPredictionJobOperator" and op.gcp_conn_id == "google_cloud_default"
    )
    assert op.model_name == "projects/my-project/locations/us-central1/models/flights_delay@v3"
    assert (op.project_id, op.region) == ("my-project", "us-central1")
    assert op.bigquery_source == "bq://my-project.flights.scoring_2013_08" and op.gcs_source is None
    assert op.bigquery_destination_prefix == "bq://my-project.predictions"
    assert (op.machine_type, op.starting_replica_count, op.max_replica_count) == ("n1-standard-4", 1, 8)
    assert op.labels == {"mlops-model": "flights_delay", "mlops-version": "3", "mlops-model-sha256": SHA[:63]}
    assert re.fullmatch(r"flights_delay-v3-[0-9a-f]{10}", op.job_display_name)


def test_bad_config_is_refused_by_name(monkeypatch):
    from airflow.sdk.exceptions import AirflowFailException

    from mlops_provider.core.errors import InvalidInputError, InvalidParameterError
    from mlops_provider.core.managed import sagemaker_transform_config, vertex_batch_prediction_kwargs
    from mlops_provider.operators.managed import ManagedBatchScoreOperator

    with pytest.raises(
        InvalidParameterError,
        match=r"'backend' parameter .* one of \['sagemaker', 'vertex'\]. Got 'sagemake'",
    ):
        ManagedBatchScoreOperator(
            task_id="score",
            backend="sagemake",
            model_name="m",
            model={},
            input_uri="s3://b/",
            output_uri="s3://b/o/",
        )
    common = {"run_key": "d/r/t", "image_uri": "img", "role_arn": "arn:aws:iam::123456789012:role/r"}
    with pytest.raises(InvalidInputError, match=r"'input_uri' parameter .* s3://\.\.\. URI. Got 'gs://b/x/'"):
        sagemaker_transform_config(pin(), input_uri="gs://b/x/", output_uri="s3://b/o/", **common)
    with pytest.raises(
        InvalidInputError, match=r"the artifact root must be on S3.* Got 'file:///tmp/registry"
    ):
        sagemaker_transform_config(
            pin("file:///tmp/registry/v3"), input_uri="s3://b/x/", output_uri="s3://b/o/", **common
        )
    with pytest.raises(
        InvalidInputError, match=r"'model' parameter .* pinned version .* Got \{'version': 3\}"
    ):
        sagemaker_transform_config({"version": 3}, input_uri="s3://b/x/", output_uri="s3://b/o/", **common)
    with pytest.raises(
        InvalidInputError, match=r"'max_replica_count' parameter .* >= starting_replica_count \(4\). Got 2"
    ):
        vertex_batch_prediction_kwargs(
            pin(),
            input_uri="bq://p.d.t",
            output_uri="bq://p",
            run_key="k",
            project_id="p",
            region="r",
            vertex_model_id="m",
            starting_replica_count=4,
            max_replica_count=2,
        )
    task, context = rendered_score_task(monkeypatch, "sagemaker")
    task.options = {**task.options, "instance_count": 0}
    with pytest.raises(
        AirflowFailException,
        match=r"'instance_count' parameter of ManagedBatchScoreOperator \(task "
        r"'score'\) must be an int >= 1. Got 0",
    ):
        task.execute(context)


def test_sagemaker_job_is_submitted_through_the_provider_operator(s3_root, s3_server, flights_frame):
    """Against moto_server (the SageMaker and S3 APIs, no AWS): the model and the transform job are
    created as built, for the pinned version; the manifest is written once the job has finished.
    moto does not run the model: this checks the hand-off, not SageMaker's predictions."""
    from mlops_provider.core.registry import ModelRegistry
    from mlops_provider.hooks.artifacts import ArtifactStoreHook
    from mlops_provider.operators.batch_score import ResolveModelVersionOperator
    from mlops_provider.operators.managed import ManagedBatchScoreOperator
    from tests.unit.test_registry import model_bytes

    store = ArtifactStoreHook().get_store()
    reg = ModelRegistry(store)
    mv, _ = reg.register("flights_delay", model_bytes(), run_key="r1")
    reg.promote("flights_delay", mv.version, actor="test", reason="test")
    pinned = ResolveModelVersionOperator(task_id="model", model_name="flights_delay").execute(
        context_for("model")
    )
    _, evaluation = flights_frame
    bucket = s3_root.split("/")[2]
    s3 = s3_server.client("s3")
    s3.put_object(
        Bucket=bucket,
        Key="exports/2013-06/part-0.csv",
        Body=evaluation.head(100).to_csv(index=False).encode(),
    )
    op = ManagedBatchScoreOperator(
        task_id="score",
        backend="sagemaker",
        model_name="flights_delay",
        model=pinned,
        conn_id="mlops_s3",
        input_uri=f"s3://{bucket}/exports/2013-06/",
        output_uri=f"s3://{bucket}/scored/2013-06/",
        window=["2013-06-01", "2013-07-01"],
        options={
            "image_uri": "123456789012.dkr.ecr.us-east-1.amazonaws.com/serve:1",
            "check_interval": 1,
            "role_arn": "arn:aws:iam::123456789012:role/mlops",
            "instance_count": 2,
        },
    )
    out = op.execute(context_for("score", "scheduled__2013-07-01"))
    sm = s3_server.client("sagemaker")
    job = sm.describe_transform_job(TransformJobName=out["job"])
    assert job["TransformJobStatus"] == "Completed" and job["ModelName"] == "flights-delay-v1"
    assert job["TransformInput"]["DataSource"]["S3DataSource"]["S3Uri"] == f"s3://{bucket}/exports/2013-06/"
    assert job["TransformResources"]["InstanceCount"] == 2
    container = sm.describe_model(ModelName="flights-delay-v1")["PrimaryContainer"]
    assert container["Environment"]["MLOPS_MODEL_SHA256"] == mv.model_sha256
    assert container["ModelDataSource"]["S3DataSource"]["S3Uri"] == f"{mv.uri}/"
    manifest = store.read_json("predictions/flights_delay/test_dag/scheduled__2013-07-01/manifest.json")
    assert manifest["model_version"] == mv.version and manifest["model_sha256"] == mv.model_sha256
    assert manifest["job"] == out["job"] and manifest["window"] == ["2013-06-01", "2013-07-01"]


def test_a_deferred_provider_operator_resumes_in_its_own_method(artifact_root, monkeypatch):
    """deferrable=True: the provider operator's TaskDeferred is re-raised to resume in
    ManagedBatchScoreOperator, which hands the trigger's event to the provider's own method."""
    from airflow.sdk.exceptions import TaskDeferred

    from mlops_provider.core.storage import ArtifactStore
    from mlops_provider.operators.managed import ManagedBatchScoreOperator

    calls = []

    class Inner:  # stands in for SageMakerTransformOperator once its job is submitted
        config = {"Transform": {"TransformJobName": "flights-delay-v3-0123456789"}}

        def execute(self, context):
            raise TaskDeferred(
                trigger="the-trigger", method_name="execute_complete", kwargs={"extra": 1}, timeout=None
            )

        def execute_complete(self, context, event=None, extra=None):
            calls.append((event, extra))
            return {"Transform": {"TransformJobStatus": "Completed"}}

    op = ManagedBatchScoreOperator(
        task_id="score",
        backend="sagemaker",
        model_name="flights_delay",
        model=pin(),
        input_uri="s3://b/in/",
        output_uri="s3://b/out/",
        deferrable=True,
    )
    monkeypatch.setattr(op, "build_operator", lambda context: Inner())
    context = context_for("score", "scheduled__2013-09-01")
    with pytest.raises(TaskDeferred) as deferred:
        op.execute(context)
    assert deferred.value.trigger == "the-trigger" and deferred.value.method_name == "resume_managed"
    store = ArtifactStore(artifact_root)
    key = "predictions/flights_delay/test_dag/scheduled__2013-09-01/manifest.json"
    assert not store.exists(key)  # nothing recorded before the job has finished
    out = op.resume_execution(
        "resume_managed", {**deferred.value.kwargs, "event": {"status": "success"}}, context
    )
    assert calls == [({"status": "success"}, 1)]
    assert out["job"] == "flights-delay-v3-0123456789" and store.read_json(key)["model_sha256"] == SHA


def test_service_registry_backends_name_the_model_themselves():
    """With the sagemaker / vertex registry backends the pinned version's URI is the service's own
    model version: a model package ARN (the Model is made from it), a Vertex model version."""
    import botocore.session
    from botocore.validate import validate_parameters

    from mlops_provider.core.errors import InvalidInputError
    from mlops_provider.core.managed import sagemaker_transform_config, vertex_batch_prediction_kwargs

    arn = "arn:aws:sagemaker:us-east-1:123456789012:model-package/flights-delay/3"
    config = sagemaker_transform_config(
        pin(arn),
        input_uri="s3://b/in/",
        output_uri="s3://b/out/",
        run_key="d/r/t",
        role_arn="arn:aws:iam::123456789012:role/r",
    )
    container = config["Model"]["PrimaryContainer"]
    assert (
        container["ModelPackageName"] == arn
        and "Image" not in container
        and "ModelDataSource" not in container
    )
    validate_parameters(
        config["Model"],
        botocore.session.get_session()
        .get_service_model("sagemaker")
        .operation_model("CreateModel")
        .input_shape,
    )
    versioned = "projects/p/locations/us-central1/models/flights_delay@3"
    kwargs = vertex_batch_prediction_kwargs(
        pin(versioned),
        input_uri="gs://b/in/*.jsonl",
        output_uri="gs://b/out/",
        run_key="k",
        project_id="p",
        region="us-central1",
    )
    assert kwargs["model_name"] == versioned and kwargs["gcs_source"] == ["gs://b/in/*.jsonl"]
    assert kwargs["instances_format"] == "jsonl" and kwargs["gcs_destination_prefix"] == "gs://b/out/"
    with pytest.raises(
        InvalidInputError,
        match=r"'vertex_model_id' parameter .* Got None, and the pinned version's "
        r"URI 's3://my-bucket/.*' is not a Vertex AI model version",
    ):
        vertex_batch_prediction_kwargs(
            pin(), input_uri="bq://p.d.t", output_uri="bq://p", run_key="k", project_id="p", region="r"
        )
