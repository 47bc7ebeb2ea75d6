"""Scale-out batch scoring: list (or split into) input partitions, map ``BatchScoreOperator`` over
them, gather the parts into one prediction set. See :mod:`mlops_provider.core.partitions`.

Usage (in a ``with DAG(...)`` block)::

    partitions = ListPartitionsOperator(task_id="partitions", uri="s3://bucket/landing/2013-08/")
    model = ResolveModelVersionOperator(task_id="model", model_name="flights_delay")
    score = BatchScoreOperator.partial(task_id="score", model_name="flights_delay", model_ref=model.output,
                                       passthrough=["flight_id"]).expand(dataset=partitions.output)
    GatherPredictionsOperator(task_id="gather", model_name="flights_delay", model=model.output,
                              partitions=partitions.output, parts=score.output)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from mlops_provider.operators._base import MlopsBaseOperator

if TYPE_CHECKING:
    from airflow.sdk import Context


def _as_list(value: Any) -> Any:
    """A list from an upstream's XCom: a mapped task's outputs arrive as a lazy sequence, read in
    one request by slicing it (iterating would ask for one more item than there is)."""
    if value is None or isinstance(value, (str, bytes, dict)):
        return value
    try:
        return list(value[:])
    except TypeError:
        return list(value)


class ListPartitionsOperator(MlopsBaseOperator):
    """List the input partitions (Parquet files) under a prefix of the artifact store, for
    ``.expand(dataset=...)``.

    :param uri: the folder (a URI under the artifact root, or a key) holding the files (templated).
    :param pattern: glob of the partition files, relative to ``uri`` (default ``*.parquet``;
        ``**/*.parquet`` for nested folders). Names starting with ``.`` or ``_`` are never partitions.
    :param marker: the file the producer writes last (default ``_SUCCESS``); listing is refused
        without it, so a half-landed folder is never scored. ``None`` to list whatever is there.
    :param max_partitions: refuse more files than this (Airflow maps at most ``[core] max_map_length``,
        1024 by default).
    :return: ``[{"uri", "rows", "size", "index"}, ...]`` sorted by name (rows from each file's footer).
    """

    template_fields: Sequence[str] = ("uri", "pattern", "artifact_root")
    ui_color = "#d6ecf3"

    def __init__(
        self,
        *,
        uri: str,
        pattern: str = "*.parquet",
        marker: str | None = "_SUCCESS",
        max_partitions: int = 1024,
        artifact_root: str | None = None,
        **kwargs: Any,
    ):
        super().__init__(artifact_root=artifact_root, **kwargs)
        self.uri = uri
        self.pattern = pattern
        self.marker = marker
        self.max_partitions = max_partitions

    def execute_step(self, context: Context) -> list[dict[str, Any]]:
        from mlops_provider.core.steps.score import ListPartitionsParams, list_input_partitions

        params = self.params_for(
            ListPartitionsParams,
            uri=self.as_uri(self.uri, "uri"),
            pattern=self.pattern,
            marker=self.marker,
            max_partitions=self.max_partitions,
        )
        result = list_input_partitions(params, store=self.store(), caller=self.caller)
        self.lineage_record = result.lineage()
        return result.to_list()


class PartitionDatasetOperator(MlopsBaseOperator):
    """Write a snapshot as ``partitions`` Parquet files of consecutive rows, then a ``_SUCCESS``
    marker listing them: the landing step of a producer of partitioned data (the partitioned
    template uses it to run on the warehouse out of the box). Rerun on the same data, it reuses them.

    :param dataset: a snapshot / Parquet file URI, or an ``ExtractOperator`` result (templated).
    :param output_uri: the folder to write (a URI under the artifact root, or a key; templated).
    :param partitions: how many files.
    :return: ``[{"uri", "rows", "size", "index"}, ...]``, like ``ListPartitionsOperator``.
    """

    template_fields: Sequence[str] = ("dataset", "output_uri", "artifact_root")
    ui_color = "#d6ecf3"

    def __init__(
        self,
        *,
        dataset: Any,
        output_uri: str,
        partitions: int = 8,
        artifact_root: str | None = None,
        **kwargs: Any,
    ):
        super().__init__(artifact_root=artifact_root, **kwargs)
        self.dataset = dataset
        self.output_uri = output_uri
        self.partitions = partitions

    def execute_step(self, context: Context) -> list[dict[str, Any]]:
        from mlops_provider.core.steps.score import PartitionParams, partition_dataset

        params = self.params_for(
            PartitionParams, output_uri=self.as_uri(self.output_uri, "output_uri"), partitions=self.partitions
        )
        result = partition_dataset(
            params, dataset=self.as_uri(self.dataset, "dataset"), store=self.store(), caller=self.caller
        )
        self.lineage_record = result.lineage()
        return result.to_list()


class GatherPredictionsOperator(MlopsBaseOperator):
    """Verify the mapped scoring tasks' parts and publish them as ONE prediction set, all or nothing.

    Every partition must have exactly one part, with the partition's row count, the sha256 its
    scoring task recorded, and the pinned model version and sha256; otherwise the task fails
    naming every problem, and nothing is published. Then the parts move to
    ``<output_key>/parts/part-<i>-<sha256>.parquet`` and ``<output_key>/manifest.json`` is written
    last. A rerun of the same parts publishes nothing new (``reused``).

    :param model_name: registry name (for the default ``output_key``).
    :param partitions: the input partitions (``ListPartitionsOperator``/``PartitionDatasetOperator`` output).
    :param parts: the mapped ``BatchScoreOperator``'s output (``score.output``).
    :param model: the pin every part must have used (``ResolveModelVersionOperator`` output), or None.
    :param output_key: the prediction set's folder (default ``predictions/<model>/<dag_id>/<run_id>``).
    :param window: the data window scored, recorded in the manifest (templated).
    :return: the manifest (``rows``, ``parts``, ``model_version``, ...), ``manifest_uri``, ``reused``.
    """

    template_fields: Sequence[str] = (
        "model_name",
        "partitions",
        "parts",
        "model",
        "output_key",
        "window",
        "artifact_root",
    )
    ui_color = "#e6e3f6"

    def __init__(
        self,
        *,
        model_name: str,
        partitions: Any,
        parts: Any,
        model: Any = None,
        output_key: str | None = None,
        window: Any = None,
        artifact_root: str | None = None,
        **kwargs: Any,
    ):
        super().__init__(artifact_root=artifact_root, **kwargs)
        self.model_name = model_name
        self.partitions = partitions
        self.parts = parts
        self.model = model
        self.output_key = output_key
        self.window = window

    def execute_step(self, context: Context) -> dict[str, Any]:
        from mlops_provider.core.steps.score import GatherParams, gather_scored_parts

        params = self.params_for(
            GatherParams, model_name=self.model_name, output_key=self.output_key, window=self.window
        )
        result = gather_scored_parts(
            params,
            partitions=_as_list(self.partitions),
            parts=_as_list(self.parts),
            model=self.as_dict(self.model, "model") if isinstance(self.model, str) else self.model,
            store=self.store(),
            run=self.run_info(context),
            caller=self.caller,
        )
        self.lineage_record = result.lineage()
        return result.to_dict()
