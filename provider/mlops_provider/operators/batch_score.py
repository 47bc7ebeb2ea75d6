"""BatchScoreOperator: stream a dataset through the champion into Parquet predictions;
ResolveModelVersionOperator: pin the version (and sha256) a run scores with, once."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from mlops_provider.core.names import CHAMPION
from mlops_provider.links.report import ModelVersionLink
from mlops_provider.operators._base import MlopsBaseOperator

if TYPE_CHECKING:
    from airflow.sdk import Context

PIN_EXPECTED = "an alias, a version number, or a pinned version {'version': int, 'model_sha256': str} (a ResolveModelVersionOperator result)"


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
        from mlops_provider.core.names import parse_ref
        from mlops_provider.links.report import model_version_url

        name = self.name_param(self.model_name)
        ref = parse_ref(self.model_ref, "model_ref", f"{self.owner_name()} (task {self.task_id!r})")
        mv = self.model_registry().resolve(name, ref)
        self.mlops_links[ModelVersionLink.name] = model_version_url(self.model_name, mv.version)
        self.log.info("Pinned %s %r -> v%d (sha256 %s)", self.model_name, ref, mv.version, mv.model_sha256)
        return {
            "model": self.model_name,
            "version": mv.version,
            "model_sha256": mv.model_sha256,
            "model_uri": mv.model_uri,
            "version_uri": mv.uri,
            "ref": str(ref),
        }


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
    :return: rows, input and output URIs, output sha256, model version and sha256, rows/s (and
        ``map_index`` when mapped).
    """

    template_fields: Sequence[str] = (
        "model_name",
        "dataset",
        "model_ref",
        "output_key",
        "window",
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

    def _ref(self) -> tuple[Any, str | None]:
        """(what to load: alias or version, the pinned sha256 or None)."""
        from mlops_provider.core.errors import InvalidInputError
        from mlops_provider.core.names import check_version, parse_ref

        ref = self.model_ref
        if isinstance(ref, str) and ref.strip().startswith("{"):
            ref = self.as_dict(ref, "model_ref")
        if isinstance(ref, dict):
            version, sha = ref.get("version"), ref.get("model_sha256")
            try:
                version = check_version(version, "model_ref")
            except InvalidInputError:
                version = None
            if (
                version is None
                or not isinstance(sha, str)
                or not re.fullmatch(r"[0-9a-f]{64}", sha)
                or ref.get("model", self.model_name) != self.model_name
            ):
                raise self.param_error(
                    "model_ref", f"{PIN_EXPECTED} of model {self.model_name!r}", self.model_ref
                )
            return version, sha
        if isinstance(ref, bool) or not isinstance(ref, (int, str)):
            raise self.param_error("model_ref", PIN_EXPECTED, ref)
        return parse_ref(ref, "model_ref", f"{self.owner_name()} (task {self.task_id!r})"), None

    def execute_step(self, context: Context) -> dict[str, Any]:
        from mlops_provider.core.errors import IntegrityError
        from mlops_provider.core.modeling import FeatureSpec
        from mlops_provider.core.scoring import batch_score

        self.name_param(self.model_name)
        output_key = self.output_key_param(self.output_key)
        store = self.store()
        uri = self.as_uri(self.dataset, "dataset")
        ref, pinned_sha = self._ref()
        model, mv = self.model_registry(store).load(self.model_name, ref, self.trusted_types or ())
        if pinned_sha is not None and mv.model_sha256 != pinned_sha:
            raise IntegrityError(
                f"The 'model_ref' parameter of {self.owner_name()} (task {self.task_id!r}) pins {self.model_name} "
                f"v{mv.version} with sha256 {pinned_sha}, but the registry's v{mv.version} has sha256 "
                f"{mv.model_sha256}; refusing to score with another model than the pinned one."
            )
        ti = context["ti"]
        map_index = getattr(ti, "map_index", -1)
        mapped = map_index not in (-1, None)
        if mapped:
            output_key = f"{output_key or self.run_folder(context)}/part-{int(map_index):05d}"
        else:
            output_key = output_key or f"predictions/{self.model_name}/{self.dag_run_path(context)}"
        from mlops_provider.links.report import model_version_url

        self.mlops_links[ModelVersionLink.name] = model_version_url(self.model_name, mv.version)
        self.log.info("Scoring %s with %s v%d (sha256 %s)", uri, self.model_name, mv.version, mv.model_sha256)
        extra = {"dag_id": ti.dag_id, "run_id": ti.run_id, "task_id": ti.task_id, "window": self.window}
        if mapped:
            extra["map_index"] = int(map_index)
        result = batch_score(
            store,
            model,
            FeatureSpec.from_dict(mv.spec),
            model_name=self.model_name,
            model_version=mv.version,
            model_sha256=mv.model_sha256,
            input_uri=uri,
            output_key=output_key,
            passthrough=list(self.passthrough or []),
            batch_size=self.batch_size,
            extra_manifest=extra,
        )
        self.lineage_record = {
            "inputs": [result.input_uri, mv.model_uri],
            "outputs": [result.output_uri],
            "step": "batch_score",
            "details": {"model": self.model_name, "version": mv.version, "rows": result.rows},
        }
        self.log.info(
            "Wrote %d predictions to %s (%.0f rows/s)", result.rows, result.output_uri, result.rows_per_second
        )
        out = result.to_dict()
        if mapped:
            out["map_index"] = int(map_index)
        return out
