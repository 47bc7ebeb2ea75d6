"""Batch scoring as steps: pin the registry version a run scores with (:func:`resolve_model_version`),
score a dataset with it (:func:`score_batch`), scale out over input partitions
(:func:`list_input_partitions`, :func:`partition_dataset`, then :func:`score_batch` once per
partition and :func:`gather_scored_parts`), and choose the data window a run scores
(:func:`scoring_window`).

From a notebook::

    run = RunInfo.local()
    pin = resolve_model_version(ResolveParams("wine"), registry=registry)
    result = score_batch(ScoreParams("wine", model_ref=pin.to_dict()), dataset=snapshot_uri,
                         store=store, registry=registry, run=run)
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from mlops_provider.core.compiled import MODES as COMPILED_MODES
from mlops_provider.core.errors import IntegrityError, InvalidInputError, InvalidParameterError
from mlops_provider.core.names import CHAMPION, NAME_RULE, check_version, parse_ref
from mlops_provider.core.params import (
    Constraint,
    Interval,
    Key,
    Name,
    NonEmptyStr,
    Options,
    Params,
    dataset_uri,
)
from mlops_provider.core.partitions import MAX_PARTITIONS, SUCCESS
from mlops_provider.core.steps.run import RunInfo
from mlops_provider.core.storage import ArtifactStore

log = logging.getLogger(__name__)

PIN_EXPECTED = (
    "an alias, a version number, or a pinned version {'version': int, 'model_sha256': str} "
    "(a ResolveModelVersionOperator result)"
)
_SHA256 = re.compile(r"[0-9a-f]{64}")


# --------------------------------------------------------------------------- model references
def parse_model_ref(value: Any) -> tuple[int | str, str | None]:
    """(what to load: an alias or a version number, the pinned sha256 or None) from an alias, a
    version number or a pin (``{"version", "model_sha256"}``, a :func:`resolve_model_version` result).

    :raises InvalidInputError: if ``value`` is none of these."""
    if isinstance(value, Mapping):
        try:
            version = check_version(value.get("version"), "model_ref")
        except InvalidInputError:
            version = None
        sha = value.get("model_sha256")
        if version is None or not isinstance(sha, str) or not _SHA256.fullmatch(sha):
            raise InvalidInputError(f"The 'model_ref' must be {PIN_EXPECTED}. Got {value!r} instead.")
        return version, sha
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise InvalidInputError(f"The 'model_ref' must be {PIN_EXPECTED}. Got {value!r} instead.")
    return parse_ref(value, "model_ref"), None


class VersionRef(Constraint):
    """A version number or an alias (:func:`mlops_provider.core.names.parse_ref`)."""

    def is_satisfied_by(self, value: Any) -> bool:
        try:
            parse_ref(value)
        except InvalidInputError:
            return False
        return True

    def __str__(self) -> str:
        return f"a version number or an alias ({NAME_RULE}, e.g. 'champion')"


class ModelRef(Constraint):
    """A version number, an alias, or a pin (:func:`parse_model_ref`)."""

    def is_satisfied_by(self, value: Any) -> bool:
        try:
            parse_model_ref(value)
        except InvalidInputError:
            return False
        return True

    def __str__(self) -> str:
        return PIN_EXPECTED


# --------------------------------------------------------------------------- resolve
@dataclass(frozen=True)
class ResolveParams(Params):
    """:param model_name: registry name. :param model_ref: an alias (default ``"champion"``) or a
    version number."""

    _step: ClassVar[str] = "resolve_model_version"
    _parameter_constraints: ClassVar = {"model_name": [Name()], "model_ref": [VersionRef()]}

    model_name: str
    model_ref: int | str = CHAMPION


@dataclass
class ResolveResult:
    model_name: str
    version: Any  # core.registry.ModelVersion
    ref: int | str

    def to_dict(self) -> dict[str, Any]:
        """The pin, for :class:`ScoreParams` ``model_ref`` and :func:`gather_scored_parts` ``model``."""
        mv = self.version
        return {
            "model": self.model_name,
            "version": mv.version,
            "model_sha256": mv.model_sha256,
            "model_uri": mv.model_uri,
            "version_uri": mv.uri,
            "ref": str(self.ref),
        }


def resolve_model_version(params: ResolveParams, *, registry: Any) -> ResolveResult:
    """Resolve ``params.model_ref`` once, so every scoring step of a run (mapped ones included)
    uses the same version (and sha256), whatever moves meanwhile."""
    ref = parse_ref(params.model_ref, "model_ref")
    mv = registry.resolve(params.model_name, ref)
    log.info("Pinned %s %r -> v%d (sha256 %s)", params.model_name, ref, mv.version, mv.model_sha256)
    return ResolveResult(params.model_name, mv, ref)


# --------------------------------------------------------------------------- score
@dataclass(frozen=True)
class ScoreParams(Params):
    """:param model_name: registry name. :param model_ref: an alias (default ``"champion"``), a
    version number, or a pin (a :func:`resolve_model_version` result): that version, refused
    unless its sha256 is the pinned one. :param passthrough: input columns copied to the output.
    :param output_key: the output folder (default ``predictions/<model>/<dag_id>/<run_id>``; for a
    mapped run ``runs/<dag_id>/<run_id>/<task_id>``, with ``part-<map_index>`` appended).
    :param batch_size: rows per batch. :param trusted_types: extra types the model file may hold.
    :param window: the data window scored, recorded in the manifest. :param compiled: ``"auto"``,
    ``"off"`` or ``"require"``: score a tree ensemble compiled (:mod:`mlops_provider.core.compiled`)."""

    _step: ClassVar[str] = "score_batch"
    _parameter_constraints: ClassVar = {
        "model_name": [Name()],
        "model_ref": [ModelRef()],
        "output_key": [Key()],
        "batch_size": [Interval(int, 1, None)],
        "compiled": [Options(COMPILED_MODES)],
    }

    model_name: str
    model_ref: int | str | dict[str, Any] = CHAMPION
    passthrough: list[str] | None = None
    output_key: str | None = None
    batch_size: int = 131_072
    trusted_types: list[str] | None = None
    window: Any = None
    compiled: str = "auto"

    def validate(self, caller: str) -> None:
        super().validate(caller)
        ref = self.model_ref
        if isinstance(ref, Mapping) and ref.get("model", self.model_name) != self.model_name:
            raise InvalidParameterError(
                f"The 'model_ref' parameter of {caller} must be {PIN_EXPECTED} of model "
                f"{self.model_name!r}. Got {ref!r} instead."
            )

    @property
    def ref(self) -> tuple[int | str, str | None]:
        """(the alias or version to load, the pinned sha256 or None)."""
        return parse_model_ref(self.model_ref)


@dataclass
class ScoreResult:
    scoring: Any  # core.scoring.ScoringResult
    version: Any  # core.registry.ModelVersion
    map_index: int | None = None  # a mapped run's

    def to_dict(self) -> dict[str, Any]:
        out = self.scoring.to_dict()
        if self.map_index is not None:
            out["map_index"] = self.map_index
        return out

    def lineage(self) -> dict[str, Any]:
        s = self.scoring
        return {
            "inputs": [s.input_uri, self.version.model_uri],
            "outputs": [s.output_uri],
            "step": "batch_score",
            "details": {"model": s.model, "version": self.version.version, "rows": s.rows},
        }


def _mapped(run: RunInfo) -> bool:
    return run.map_index not in (-1, None)


def scoring_output_key(params: ScoreParams, run: RunInfo) -> str:
    """Where ``run`` writes its predictions: ``params.output_key``, else
    ``predictions/<model>/<dag_id>/<run_id>``; a mapped run appends ``part-<map_index>`` (to its
    own folder by default): the same key on every retry."""
    if _mapped(run):
        return f"{params.output_key or run.folder}/part-{int(run.map_index):05d}"
    return params.output_key or f"predictions/{params.model_name}/{run.dag_run_path}"


def load_pinned_model(params: ScoreParams, *, registry: Any, caller: str | None = None) -> tuple[Any, Any]:
    """(model, version) for ``params.model_ref``, refused if a pin's sha256 is not the registry's."""
    ref, pinned_sha = params.ref
    model, mv = registry.load(params.model_name, ref, params.trusted_types or ())
    if pinned_sha is not None and mv.model_sha256 != pinned_sha:
        raise IntegrityError(
            f"The 'model_ref' parameter of {caller or params._step} pins {params.model_name} "
            f"v{mv.version} with sha256 {pinned_sha}, but the registry's v{mv.version} has sha256 "
            f"{mv.model_sha256}; refusing to score with another model than the pinned one."
        )
    return model, mv


def score_batch(
    params: ScoreParams,
    *,
    dataset: Any,
    store: ArtifactStore,
    registry: Any,
    run: RunInfo,
    caller: str | None = None,
    on_version: Callable[[Any], None] | None = None,
    progress: Callable[[int, int, float], None] | None = None,
) -> ScoreResult:
    """Score ``dataset`` (a snapshot / Parquet file URI, or an upstream result with its ``uri``)
    with the registry version ``params.model_ref`` names, in bounded memory, into
    :func:`scoring_output_key` (replaced atomically; see :func:`mlops_provider.core.scoring.batch_score`).

    ``on_version`` is called with the version once it is loaded, before scoring (the operator
    records its link, so a failed scoring still shows the model). Errors name ``caller``."""
    from mlops_provider.core.modeling import FeatureSpec
    from mlops_provider.core.scoring import batch_score

    uri = dataset_uri(dataset, caller or params._step)
    model, mv = load_pinned_model(params, registry=registry, caller=caller)
    if on_version is not None:
        on_version(mv)
    log.info("Scoring %s with %s v%d (sha256 %s)", uri, params.model_name, mv.version, mv.model_sha256)
    extra = {"dag_id": run.dag_id, "run_id": run.run_id, "task_id": run.task_id, "window": params.window}
    if _mapped(run):
        extra["map_index"] = int(run.map_index)
    result = batch_score(
        store,
        model,
        FeatureSpec.from_dict(mv.spec),
        model_name=params.model_name,
        model_version=mv.version,
        model_sha256=mv.model_sha256,
        input_uri=uri,
        output_key=scoring_output_key(params, run),
        passthrough=list(params.passthrough or []),
        batch_size=params.batch_size,
        progress=progress,
        extra_manifest=extra,
        compiled=params.compiled,
    )
    log.info(
        "Wrote %d predictions to %s (%.0f rows/s, %s)",
        result.rows,
        result.output_uri,
        result.rows_per_second,
        "compiled" if (result.engine or {}).get("engine") == "tl2cgen" else "scikit-learn",
    )
    return ScoreResult(result, mv, int(run.map_index) if _mapped(run) else None)


# --------------------------------------------------------------------------- partitions
class _Glob(Constraint):
    def is_satisfied_by(self, value: Any) -> bool:
        return isinstance(value, str) and bool(value) and not value.startswith("/")

    def __str__(self) -> str:
        return "a relative glob such as '*.parquet'"


@dataclass(frozen=True)
class ListPartitionsParams(Params):
    """:param uri: the folder (a URI under the artifact root, or a key) holding the files.
    :param pattern: glob of the partition files, relative to ``uri``. :param marker: the file the
    producer writes last (None: list whatever is there). :param max_partitions: refuse more files."""

    _step: ClassVar[str] = "list_input_partitions"
    _parameter_constraints: ClassVar = {
        "uri": [NonEmptyStr()],
        "pattern": [_Glob()],
        "max_partitions": [Interval(int, 1, None)],
    }

    uri: str
    pattern: str = "*.parquet"
    marker: str | None = SUCCESS
    max_partitions: int = MAX_PARTITIONS


@dataclass
class PartitionList:
    """Input partitions, ``[{"uri", "rows", "size", "index"}, ...]`` sorted by name."""

    uri: str
    partitions: list[dict[str, Any]]

    @property
    def rows(self) -> int:
        return sum(p["rows"] for p in self.partitions)

    def to_list(self) -> list[dict[str, Any]]:
        return self.partitions

    def lineage(self) -> dict[str, Any]:
        return {
            "inputs": [p["uri"] for p in self.partitions],
            "step": "list_partitions",
            "details": {"partitions": len(self.partitions), "rows": self.rows},
        }


def list_input_partitions(
    params: ListPartitionsParams, *, store: ArtifactStore, caller: str | None = None
) -> PartitionList:
    """The Parquet files under ``params.uri`` (see :func:`mlops_provider.core.partitions.list_partitions`);
    refused until the producer's marker is there."""
    from mlops_provider.core.partitions import list_partitions

    parts = list_partitions(
        store,
        params.uri,
        pattern=params.pattern,
        marker=params.marker,
        max_partitions=params.max_partitions,
        owner=caller or params._step,
    )
    out = PartitionList(params.uri, parts)
    log.info("%d partitions, %d rows under %s", len(parts), out.rows, params.uri)
    return out


@dataclass(frozen=True)
class PartitionParams(Params):
    """:param output_uri: the folder to write (a URI under the artifact root, or a key).
    :param partitions: how many files."""

    _step: ClassVar[str] = "partition_dataset"
    _parameter_constraints: ClassVar = {
        "output_uri": [NonEmptyStr()],
        "partitions": [Interval(int, 1, MAX_PARTITIONS)],
    }

    output_uri: str
    partitions: int = 8


@dataclass
class PartitionedDataset:
    source_uri: str
    uri: str
    source_sha256: str
    rows: int
    reused: bool
    partitions: list[dict[str, Any]] = field(default_factory=list)

    def to_list(self) -> list[dict[str, Any]]:
        return self.partitions

    def lineage(self) -> dict[str, Any]:
        return {
            "inputs": [self.source_uri],
            "outputs": [p["uri"] for p in self.partitions],
            "step": "partition_dataset",
            "details": {"partitions": len(self.partitions), "rows": self.rows},
        }


def partition_dataset(
    params: PartitionParams, *, dataset: Any, store: ArtifactStore, caller: str | None = None
) -> PartitionedDataset:
    """Write ``dataset`` (a snapshot / Parquet file URI, or an upstream result with its ``uri``) as
    ``params.partitions`` Parquet files of consecutive rows, then the ``_SUCCESS`` marker; reused
    when the same source was split the same way (see :func:`mlops_provider.core.partitions.split_dataset`)."""
    from mlops_provider.core.partitions import split_dataset

    owner = caller or params._step
    source = dataset_uri(dataset, owner)
    out = split_dataset(store, source, params.output_uri, params.partitions, owner=owner)
    result = PartitionedDataset(
        source, out["uri"], out["source_sha256"], out["rows"], out["reused"], out["partitions"]
    )
    log.info(
        "%s %d partitions of %d rows under %s",
        "Reused" if result.reused else "Wrote",
        len(result.partitions),
        result.rows,
        result.uri,
    )
    return result


@dataclass(frozen=True)
class GatherParams(Params):
    """:param model_name: registry name (for the default ``output_key``). :param output_key: the
    prediction set's folder (default ``predictions/<model>/<dag_id>/<run_id>``). :param window: the
    data window scored, recorded in the manifest."""

    _step: ClassVar[str] = "gather_scored_parts"
    _parameter_constraints: ClassVar = {"model_name": [Name()], "output_key": [Key()]}

    model_name: str
    output_key: str | None = None
    window: Any = None


@dataclass
class GatherResult:
    record: dict[str, Any]  # the manifest, manifest_uri, reused

    def to_dict(self) -> dict[str, Any]:
        """The manifest without its ``parts`` (``part_uris`` instead), ``manifest_uri``, ``reused``."""
        return {k: v for k, v in self.record.items() if k != "parts"} | {
            "part_uris": [p["uri"] for p in self.record["parts"]]
        }

    def lineage(self) -> dict[str, Any]:
        r = self.record
        return {
            "inputs": [p["partition"] for p in r["parts"]],
            "outputs": [p["uri"] for p in r["parts"]],
            "step": "gather_predictions",
            "details": {
                "model": r["model"],
                "version": r["model_version"],
                "rows": r["rows"],
                "parts": r["partitions"],
            },
        }


def gather_scored_parts(
    params: GatherParams,
    *,
    partitions: Any,
    parts: Any,
    store: ArtifactStore,
    run: RunInfo,
    model: Mapping[str, Any] | None = None,
    caller: str | None = None,
) -> GatherResult:
    """Verify the parts :func:`score_batch` wrote, one per partition, and publish them as ONE
    prediction set, all or nothing (see :func:`mlops_provider.core.partitions.gather_predictions`).

    :param partitions: the :func:`list_input_partitions` / :func:`partition_dataset` partitions.
    :param parts: the mapped :func:`score_batch` results (``to_dict()``).
    :param model: the pin every part must have used (a :func:`resolve_model_version` ``to_dict()``)."""
    from mlops_provider.core.partitions import gather_predictions

    record = gather_predictions(
        store,
        partitions=partitions,
        parts=parts,
        output_key=params.output_key or f"predictions/{params.model_name}/{run.dag_run_path}",
        model=model,
        owner=caller or params._step,
        extra_manifest={
            "dag_id": run.dag_id,
            "run_id": run.run_id,
            "task_id": run.task_id,
            "window": params.window,
        },
    )
    result = GatherResult(record)
    log.info(
        "%s %d predictions in %d parts at %s",
        "Already published:" if record["reused"] else "Published",
        record["rows"],
        record["partitions"],
        record["manifest_uri"],
    )
    return result


# --------------------------------------------------------------------------- window
def scoring_window(
    model_name: str,
    *,
    store: ArtifactStore | Callable[[], ArtifactStore],
    run_type: Any = "",
    start: Any = None,
    end: Any = None,
) -> list[Any] | None:
    """``[start, end)`` dates to score: the run's data interval (``start``, ``end``: datetimes); for
    a run started by a champion change (an ``asset_triggered`` ``run_type``) or without an
    interval, the most recently scored window, so it is re-scored with the new champion (None if no
    window of ``model_name`` was scored yet). ``store`` may be a function returning the store, so a
    scheduled run never opens it."""
    from mlops_provider.core.partitions import latest_scored_window

    if "asset" not in str(run_type or "").lower() and start is not None and end is not None:
        return [start.strftime("%Y-%m-%d"), end.strftime("%Y-%m-%d")]
    return latest_scored_window(store if isinstance(store, ArtifactStore) else store(), model_name)
