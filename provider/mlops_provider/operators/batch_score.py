"""BatchScoreOperator: stream a dataset through the champion into Parquet predictions;
ResolveModelVersionOperator: pin the version (and sha256) a run scores with, once."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from mlops_provider.core.names import CHAMPION
from mlops_provider.links.report import ModelVersionLink
from mlops_provider.operators._base import MlopsBaseOperator

if TYPE_CHECKING:
    from airflow.sdk import Context


def __getattr__(name: str) -> Any:
    if name == "PIN_EXPECTED":  # moved to the scoring step
        from mlops_provider.core.steps import score

        return score.PIN_EXPECTED
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class ResolveModelVersionOperator(MlopsBaseOperator):
    """Resolve ``model_ref`` (an alias such as ``"champion"``, or a version number) ONCE, so every
    downstream scoring task (mapped ones included) uses the same version, whatever moves meanwhile.

    :param model_name: registry name.
    :param model_ref: an alias (default ``"champion"``) or a version number (templated).
    :return: the pin ``{"model", "version", "model_sha256", "model_uri", "version_uri", "ref"}``,
        for ``BatchScoreOperator(model_ref=...)``, ``GatherPredictionsOperator(model=...)`` and
        ``ManagedBatchScoreOperator(model=...)``.
    """

    template_fields: Sequence[str] = ("model_name", "model_ref", "artifact_root")
    ui_color = "#e6e3f6"
    operator_extra_links = (ModelVersionLink(),)

    def __init__(
        self, *, model_name: str, model_ref: Any = CHAMPION, artifact_root: str | None = None, **kwargs: Any
    ):
        super().__init__(artifact_root=artifact_root, **kwargs)
        self.model_name = model_name
        self.model_ref = model_ref

    def execute_step(self, context: Context) -> dict[str, Any]:
        from mlops_provider.core.steps.score import ResolveParams, resolve_model_version
        from mlops_provider.links.report import model_version_url

        params = self.params_for(ResolveParams, model_name=self.model_name, model_ref=self.model_ref)
        result = resolve_model_version(params, registry=self.model_registry())
        self.mlops_links[ModelVersionLink.name] = model_version_url(params.model_name, result.version.version)
        return result.to_dict()


class BatchScoreOperator(MlopsBaseOperator):
    """Score ``dataset`` with a registry version, in bounded memory, writing predictions atomically.

    Mapped over partitions (``BatchScoreOperator.partial(...).expand(dataset=partitions.output)``),
    each instance writes its part to ``<output_key or its run folder>/part-<map_index>/``: the same
    key on every retry, replaced atomically; ``GatherPredictionsOperator`` then publishes the parts.

    :param model_name: registry name.
    :param dataset: input snapshot URI / Parquet file URI, or an upstream result with a ``uri``.
    :param model_ref: an alias (default ``"champion"``), a version number, or a pin (the
        ``ResolveModelVersionOperator`` result): that version, refused unless its sha256 is the pinned one.
    :param passthrough: input columns copied to the output (ids, keys).
    :param output_key: artifact key of the output folder (default
        ``predictions/<model>/<dag_id>/<run_id>``; for a mapped instance ``runs/<dag_id>/<run_id>/<task_id>``,
        with ``part-<map_index>`` appended); a rerun replaces it atomically.
    :param batch_size: rows per batch (memory is a few batches, whatever the input size).
    :param trusted_types: extra types the model file may hold.
    :param window: the data window scored (e.g. ``["2013-08-01", "2013-09-01"]``), recorded in the
        predictions' manifest so a later run can re-score it (templated).
    :param compiled: ``"auto"`` (default), ``"off"`` or ``"require"``: score a tree ensembles' trees
        as compiled code (the ``compiled`` extra), checked against scikit-learn on a sample of the
        input first; ``auto`` falls back to scikit-learn with a log line saying why, ``require`` fails
        instead (see :mod:`mlops_provider.core.compiled`; templated).
    :return: rows, input and output URIs, output sha256, model version and sha256, rows/s, the
        ``engine`` that scored (and ``map_index`` when mapped).
    """

    template_fields: Sequence[str] = (
        "model_name",
        "dataset",
        "model_ref",
        "output_key",
        "window",
        "compiled",
        "artifact_root",
    )
    ui_color = "#e6e3f6"
    operator_extra_links = (ModelVersionLink(),)

    def __init__(
        self,
        *,
        model_name: str,
        dataset: Any,
        model_ref: Any = CHAMPION,
        passthrough: list[str] | None = None,
        output_key: str | None = None,
        batch_size: int = 131_072,
        trusted_types: list[str] | None = None,
        window: Any = None,
        compiled: str = "auto",
        artifact_root: str | None = None,
        **kwargs: Any,
    ):
        super().__init__(artifact_root=artifact_root, **kwargs)
        self.model_name = model_name
        self.dataset = dataset
        self.model_ref = model_ref
        self.passthrough = passthrough
        self.output_key = output_key
        self.batch_size = batch_size
        self.trusted_types = trusted_types
        self.window = window
        self.compiled = compiled

    def execute_step(self, context: Context) -> dict[str, Any]:
        from mlops_provider.core.steps.score import ScoreParams, score_batch
        from mlops_provider.links.report import model_version_url

        params = self.params_for(
            ScoreParams,
            model_name=self.model_name,
            model_ref=self.model_ref,
            passthrough=self.passthrough,
            output_key=self.output_key,
            batch_size=self.batch_size,
            trusted_types=self.trusted_types,
            window=self.window,
            compiled=self.compiled,
        )
        dataset = self.as_uri(self.dataset, "dataset")
        store = self.store()

        def record_link(mv) -> None:
            self.mlops_links[ModelVersionLink.name] = model_version_url(params.model_name, mv.version)

        result = score_batch(
            params,
            dataset=dataset,
            store=store,
            registry=self.model_registry(store),
            run=self.run_info(context),
            caller=self.caller,
            on_version=record_link,
        )
        self.lineage_record = result.lineage()
        return result.to_dict()
