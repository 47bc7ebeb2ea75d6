"""ManagedBatchScoreOperator: hand the scoring of a pinned registry version to SageMaker Batch
Transform or Vertex AI batch prediction, through the Amazon / Google providers' own operators.

The provider operator is imported and built when the task runs, never at DAG parse time: importing
``airflow.providers.amazon.aws.operators.sagemaker`` takes 0.4 s and pulls in boto3, and
``airflow.providers.google.cloud.operators.vertex_ai.batch_prediction_job`` 7.5 s
(google-cloud-aiplatform), measured on the reference machine with ``airflow.sdk`` already imported.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from mlops_provider.core.managed import BACKENDS
from mlops_provider.links.report import ModelVersionLink
from mlops_provider.operators._base import MlopsBaseOperator

if TYPE_CHECKING:
    from airflow.sdk import BaseOperator, Context


class ManagedBatchScoreOperator(MlopsBaseOperator):
    """Score with a managed service, then record a manifest of what was scored, with what.

    :param backend: ``"sagemaker"`` (``SageMakerTransformOperator``) or ``"vertex"``
        (``CreateBatchPredictionJobOperator``).
    :param model_name: registry name.
    :param model: the pinned version, a ``ResolveModelVersionOperator`` result (templated).
    :param input_uri: what to score: an ``s3://`` prefix (SageMaker), a ``bq://`` table or ``gs://``
        files (Vertex AI) (templated).
    :param output_uri: where the service writes the predictions (templated).
    :param options: the rest of the job's arguments, see
        :func:`mlops_provider.integrations.sagemaker.managed.sagemaker_transform_config` /
        :func:`~mlops_provider.integrations.vertex.managed.vertex_batch_prediction_kwargs` (templated).
    :param conn_id: the AWS / Google Cloud connection (default ``aws_default`` / ``google_cloud_default``).
    :param deferrable: wait for the job in the triggerer instead of a worker slot.
    :param output_key: where the manifest goes (default ``predictions/<model>/<dag_id>/<run_id>``).
    :param window: the data window scored, recorded in the manifest (templated).
    :return: ``backend``, ``job``, the pin, ``input_uri``, ``output_uri``, ``manifest_uri``.
    """

    template_fields: Sequence[str] = (
        "model_name",
        "model",
        "input_uri",
        "output_uri",
        "options",
        "window",
        "output_key",
        "artifact_root",
    )
    ui_color = "#e6e3f6"
    operator_extra_links = (ModelVersionLink(),)

    def __init__(
        self,
        *,
        backend: str,
        model_name: str,
        model: Any,
        input_uri: str,
        output_uri: str,
        options: dict[str, Any] | None = None,
        conn_id: str | None = None,
        deferrable: bool = False,
        output_key: str | None = None,
        window: Any = None,
        artifact_root: str | None = None,
        **kwargs: Any,
    ):
        super().__init__(artifact_root=artifact_root, **kwargs)
        if backend not in BACKENDS:  # a typo in the DAG file fails its parse, naming the choices
            raise self.param_error("backend", f"one of {list(BACKENDS)}", backend)
        self.backend = backend
        self.model_name = model_name
        self.model = model
        self.input_uri = input_uri
        self.output_uri = output_uri
        self.options = options
        self.conn_id = conn_id
        self.deferrable = deferrable
        self.output_key = output_key
        self.window = window

    def _pin(self) -> dict[str, Any]:
        model = self.as_dict(self.model, "model", allow_none=False)
        if model.get("model", self.model_name) != self.model_name:
            raise self.param_error("model", f"a pinned version of {self.model_name!r}", model)
        return {"model": self.model_name, **model}

    def _params(self):
        from mlops_provider.core.managed import ManagedScoreParams

        return self.params_for(
            ManagedScoreParams,
            backend=self.backend,
            model_name=self.model_name,
            input_uri=self.input_uri,
            output_uri=self.output_uri,
            output_key=self.output_key,
            window=self.window,
        )

    def build_operator(self, context: Context) -> BaseOperator:
        """The provider's operator for this job, its arguments built from the (rendered) fields by
        the service's module (:mod:`mlops_provider.integrations.sagemaker.managed` /
        :mod:`~mlops_provider.integrations.vertex.managed`)."""
        from mlops_provider.core.managed import integration

        return integration(self.backend).build_operator(
            self._pin(),
            task_id=self.task_id,
            conn_id=self.conn_id,
            deferrable=self.deferrable,
            input_uri=self.input_uri,
            output_uri=self.output_uri,
            run_key=self.run_key(context),
            owner=self.caller,
            options=self.as_dict(self.options, "options") or {},
        )

    def execute_step(self, context: Context) -> dict[str, Any]:
        from airflow.sdk.exceptions import TaskDeferred

        self._params()  # refused before the job starts, not after it ran
        op = self.build_operator(context)
        self.log.info(
            "Handing %s v%s to %s (%s)",
            self.model_name,
            self._pin()["version"],
            self.backend,
            type(op).__name__,
        )
        try:
            result = op.execute(context)
        except TaskDeferred as deferred:  # resume here, then in the provider operator's own method
            raise TaskDeferred(
                trigger=deferred.trigger,
                method_name="resume_managed",
                timeout=deferred.timeout,
                kwargs={"inner_method": deferred.method_name, "inner_kwargs": deferred.kwargs or {}},
            ) from None
        return self._record(context, op, result)

    def resume_managed(
        self, context: Context, inner_method: str, inner_kwargs: dict | None = None, event: Any = None
    ) -> dict[str, Any]:
        from airflow.sdk.exceptions import AirflowFailException

        from mlops_provider.core.errors import MlopsError

        try:
            op = self.build_operator(context)
            result = getattr(op, inner_method)(context, event=event, **(inner_kwargs or {}))
            return self._record(context, op, result)
        except MlopsError as err:
            raise AirflowFailException(f"{type(err).__name__}: {err}") from err

    def _record(self, context: Context, op: Any, result: Any) -> dict[str, Any]:
        """After the job: the manifest, written last (a reader sees it only for a finished job)."""
        from mlops_provider.core.managed import integration, record_managed_job
        from mlops_provider.links.report import model_version_url

        pin = self._pin()
        recorded = record_managed_job(
            self._params(),
            job=integration(self.backend).job_name(op, result),
            pin=pin,
            store=self.store(),
            run=self.run_info(context),
        )
        self.mlops_links[ModelVersionLink.name] = model_version_url(self.model_name, pin["version"])
        self.lineage_record = recorded.lineage()
        self.log.info(
            "%s job %s scored %s into %s",
            self.backend,
            recorded.manifest["job"],
            self.input_uri,
            self.output_uri,
        )
        return recorded.to_dict()
