"""BatchScoreOperator: stream a dataset through the champion into Parquet predictions."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from mlops_provider.links.report import ModelVersionLink
from mlops_provider.operators._base import MlopsBaseOperator

if TYPE_CHECKING:
    from airflow.sdk import Context


class BatchScoreOperator(MlopsBaseOperator):
    """Score ``dataset`` with a registry version, in bounded memory, writing predictions atomically.

    :param model_name: registry name.
    :param dataset: input snapshot URI / Parquet file URI, or an ``ExtractOperator`` result.
    :param model_ref: an alias (default ``"champion"``) or a version number.
    :param passthrough: input columns copied to the output (ids, keys).
    :param output_key: artifact key of the output folder (default
        ``predictions/<model>/<dag_id>/<run_id>``); a rerun replaces it atomically.
    :param batch_size: rows per batch (memory is a few batches, whatever the input size).
    :param trusted_types: extra types the model file may hold.
    :param window: the data window scored (e.g. ``["2013-08-01", "2013-09-01"]``), recorded in the
        predictions' manifest so a later run can re-score it (templated).
    :return: rows, output URI, model version and sha256, rows/s.
    """

    template_fields: Sequence[str] = ("model_name", "dataset", "model_ref", "output_key", "window", "artifact_root")
    ui_color = "#e6e3f6"
    operator_extra_links = (ModelVersionLink(),)

    def __init__(
        self,
        *,
        model_name: str,
        dataset: Any,
        model_ref: Any = "champion",
        passthrough: list[str] | None = None,
        output_key: str | None = None,
        batch_size: int = 131_072,
        trusted_types: list[str] | None = None,
        window: Any = None,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        self.model_name = model_name
        self.dataset = dataset
        self.model_ref = model_ref
        self.passthrough = passthrough
        self.output_key = output_key
        self.batch_size = batch_size
        self.trusted_types = trusted_types
        self.window = window

    def execute_step(self, context: Context) -> dict[str, Any]:
        from mlops_provider.core.modeling import FeatureSpec
        from mlops_provider.core.scoring import batch_score

        store = self.store()
        uri = self.as_uri(self.dataset, "dataset")
        model, mv = self.model_registry(store).load(self.model_name, self.model_ref, self.trusted_types or ())
        ti = context["ti"]
        output_key = self.output_key or f"predictions/{self.model_name}/{self.dag_run_path(context)}"
        from mlops_provider.links.report import model_version_url

        self.mlops_links[ModelVersionLink.name] = model_version_url(self.model_name, mv.version)
        self.log.info("Scoring %s with %s v%d (sha256 %s)", uri, self.model_name, mv.version, mv.model_sha256)
        result = batch_score(
            store, model, FeatureSpec.from_dict(mv.spec), model_name=self.model_name, model_version=mv.version,
            model_sha256=mv.model_sha256, input_uri=uri, output_key=output_key,
            passthrough=list(self.passthrough or []), batch_size=self.batch_size,
            extra_manifest={"dag_id": ti.dag_id, "run_id": ti.run_id, "task_id": ti.task_id, "window": self.window},
        )
        self.lineage_record = {"inputs": [result.input_uri, mv.model_uri], "outputs": [result.output_uri],
                               "step": "batch_score", "details": {"model": self.model_name, "version": mv.version,
                                                                  "rows": result.rows}}
        self.log.info("Wrote %d predictions to %s (%.0f rows/s)", result.rows, result.output_uri, result.rows_per_second)
        return result.to_dict()
