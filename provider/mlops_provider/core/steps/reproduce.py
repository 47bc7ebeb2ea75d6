"""Rebuild a registered model version from what it recorded, and say whether it comes out the same.

A version records its training snapshot (URI and sha256), the estimator and its parameters, the
seed, the feature columns (``lineage.train_recipe``; older versions: derived from ``spec`` and
``params``), the evaluation snapshot it was measured on, its metrics and the package versions.
:func:`reproduce` checks both snapshots' sha256 before reading them, trains again into a scratch
location (a temporary folder, or a folder under the artifact root's ``runs/``), then compares:

* the model's sha256: identical for a deterministic estimator on the same package versions;
* each recorded metric, measured again on the recorded evaluation snapshot, within ``tolerance``
  (relative: ``|reproduced - recorded| <= tolerance * |recorded|``);
* the package versions recorded vs installed now.

The version is **reproducible** when its model is identical, or when every recorded metric is within
the tolerance. Package differences are listed either way; they explain, they do not decide.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from typing import Any, ClassVar

from mlops_provider.core.errors import MlopsError
from mlops_provider.core.params import Interval, Name, NonEmptyStr, Params

log = logging.getLogger(__name__)

RESULT_FILE = "reproduce.json"
MODEL_FILE = "model.skops"
#: the scratch folder given by the user must be under this folder of the artifact root
SCRATCH_AREA = "runs/"


class NotReproducibleError(MlopsError):
    """The version cannot be trained again (its metadata lacks what that needs), or was trained
    again and differs beyond the tolerance (``result`` then holds the comparison)."""

    def __init__(self, message: str, result: Any = None):
        super().__init__(message)
        self.result = result


@dataclass(frozen=True)
class ReproduceParams(Params):
    """:param model_name: registry name. :param version: the version to rebuild.
    :param tolerance: the largest relative difference of a metric still called the same (0.01: 1 %).
    :param scratch: a folder (key or URI) under the artifact root's ``runs/`` to train into; None: a
        temporary folder on this machine. :param keep: keep the scratch files (the model, the
        comparison) instead of removing them. :param trusted_types: extra types the model may hold."""

    _step: ClassVar[str] = "reproduce"
    _parameter_constraints: ClassVar = {
        "model_name": [Name()],
        "version": [Interval(int, 1, None)],
        "tolerance": [Interval(float, 0, 1)],
        "scratch": [NonEmptyStr()],
    }

    model_name: str
    version: int
    tolerance: float = 0.01
    scratch: str | None = None
    keep: bool = False
    trusted_types: list[str] | None = None


@dataclass
class ReproduceResult:
    model: str
    version: int
    recorded: dict[str, Any]
    reproduced: dict[str, Any]
    identical: bool
    reproducible: bool
    tolerance: float
    differences: list[dict[str, Any]] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # what the version did not record
    scratch_uri: str | None = None  # where the reproduced model is (None once cleaned up)
    seconds: float = 0.0

    @property
    def summary(self) -> str:
        head = f"{self.model} v{self.version}: "
        if self.identical:
            head += f"reproduced identically (model sha256 {self.recorded['model_sha256'][:12]}... matches)"
        elif self.reproducible:
            head += (
                "reproduced within tolerance: the model differs, every recorded metric is within "
                f"{self.tolerance:.2%}"
            )
        else:
            head += "NOT reproduced: " + self.why_not()
        return head

    def why_not(self) -> str:
        beyond = [d for d in self.differences if d["kind"] == "metric" and not d["within_tolerance"]]
        if beyond:
            return "; ".join(
                f"{d['name']} {_num(d['reproduced'])} vs recorded {_num(d['recorded'])} "
                f"({_pct(d['relative'])}, tolerance {self.tolerance:.2%})"
                for d in beyond
            )
        if not self.recorded.get("metrics"):
            return "the model differs and no metrics on an evaluation snapshot were recorded to compare"
        return "the model differs"

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "version": self.version,
            "recorded": self.recorded,
            "reproduced": self.reproduced,
            "identical": self.identical,
            "reproducible": self.reproducible,
            "tolerance": self.tolerance,
            "differences": self.differences,
            "missing": self.missing,
            "scratch_uri": self.scratch_uri,
            "seconds": self.seconds,
            "summary": self.summary,
        }


def _num(v: Any) -> str:
    return "undefined" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.6g}"


def _pct(v: Any) -> str:
    return "undefined" if v is None or math.isinf(v) or math.isnan(v) else f"{v:+.3%}"


# --------------------------------------------------------------------------- what was recorded
def _recipe(mv) -> tuple[dict[str, Any], list[str]]:
    """The training parameters of ``mv`` and what it did not record. Raises
    :class:`NotReproducibleError` when training again is impossible."""
    lineage = mv.lineage or {}
    spec = mv.spec or {}
    train_ds = lineage.get("train_dataset") or {}
    missing = []
    essential = {
        "lineage.train_dataset.uri": train_ds.get("uri"),
        "lineage.train_dataset.sha256": train_ds.get("sha256"),
        "estimator": mv.estimator,
        "spec.label": spec.get("label"),
    }
    lacking = [k for k, v in essential.items() if not v]
    recipe = lineage.get("train_recipe")
    if not isinstance(recipe, dict):
        missing.append("lineage.train_recipe (derived from spec, params and lineage.seed)")
        if not isinstance(mv.params, dict) or not mv.params:
            lacking.append("params")
        recipe = {
            "label_column": spec.get("label"),
            "estimator": mv.estimator,
            "model_params": dict(mv.params or {}),
            "features": list(spec.get("numeric") or []) + list(spec.get("categorical") or []),
            "categorical": list(spec.get("categorical") or []),
            "seed": lineage.get("seed"),
            "positive_label": spec.get("positive_label"),
            "trusted_types": [],
            "unrecorded": [],
        }
    for name in recipe.get("unrecorded") or []:
        lacking.append(f"lineage.train_recipe.{name} (not recordable as JSON when trained)")
    if lacking:
        raise NotReproducibleError(
            f"{mv.model} v{mv.version} cannot be trained again: its metadata lacks {', '.join(lacking)} "
            f"(recorded: {sorted(k for k, v in (mv.to_dict()).items() if v)})."
        )
    if not (lineage.get("eval_dataset") or {}).get("sha256"):
        missing.append("lineage.eval_dataset (metrics not compared)")
    if not mv.metrics:
        missing.append("metrics (nothing to compare them with)")
    if not lineage.get("packages"):
        missing.append("lineage.packages (package versions not compared)")
    return recipe, missing


# --------------------------------------------------------------------------- comparisons
def _is_metric(name: str) -> bool:
    """A scorer name or alias (a version's metrics also hold counts such as ``rows``)."""
    from mlops_provider.core import metrics as M

    try:
        M.resolve(name)
    except MlopsError:
        return False
    return True


def _relative(recorded: float, reproduced: float) -> float:
    if recorded == reproduced or (math.isnan(recorded) and math.isnan(reproduced)):
        return 0.0
    if math.isnan(recorded) or math.isnan(reproduced):
        return math.nan
    if recorded == 0:
        return math.inf
    return (reproduced - recorded) / abs(recorded)


def compare_metrics(
    recorded: dict[str, Any], reproduced: dict[str, Any], tolerance: float
) -> list[dict[str, Any]]:
    """A difference per recorded metric whose reproduced value is not exactly the same."""
    out = []
    for name in sorted(recorded):
        rec = recorded[name]
        if not isinstance(rec, (int, float)) or isinstance(rec, bool):
            continue
        rep = reproduced.get(name)
        if rep is None:
            out.append(_metric_diff(name, rec, None, math.nan, False))
            continue
        rel = _relative(float(rec), float(rep))
        if rel != 0.0:
            within = not math.isnan(rel) and abs(rel) <= tolerance
            out.append(_metric_diff(name, rec, rep, rel, within))
    return out


def _metric_diff(name: str, rec: Any, rep: Any, rel: float, within: bool) -> dict[str, Any]:
    return {
        "kind": "metric",
        "name": name,
        "recorded": rec,
        "reproduced": rep,
        "relative": None if math.isnan(rel) or math.isinf(rel) else rel,
        "within_tolerance": within,
    }


def compare_packages(recorded: dict[str, Any], installed: dict[str, Any]) -> list[dict[str, Any]]:
    """A difference per package recorded at training whose installed version is not the same."""
    return [
        {"kind": "package", "name": name, "recorded": recorded[name], "reproduced": installed.get(name)}
        for name in sorted(recorded)
        if installed.get(name) != recorded[name]
    ]


# --------------------------------------------------------------------------- the scratch folder
class _Scratch:
    """Where the reproduced files go: a temporary folder, or a folder under ``runs/`` of the store.
    Removing it removes only what was written there."""

    def __init__(self, store, scratch: str | None, caller: str):
        import tempfile

        from mlops_provider.core.params import parameter_error
        from mlops_provider.core.storage import ArtifactStore

        self.written: list[str] = []
        self.tempdir = None
        if scratch is None:
            self.tempdir = tempfile.mkdtemp(prefix="mlops-reproduce-")
            self.store, self.folder = ArtifactStore(f"file://{self.tempdir}"), ""
            return
        try:
            key = store.key_of(scratch)
        except ValueError as err:
            raise parameter_error(
                "scratch", f"a folder under {store.uri(SCRATCH_AREA)}", scratch, caller
            ) from err
        if not key.startswith(SCRATCH_AREA):
            raise parameter_error("scratch", f"a folder under {store.uri(SCRATCH_AREA)}", scratch, caller)
        self.store, self.folder = store, key

    def key(self, name: str) -> str:
        return f"{self.folder}/{name}" if self.folder else name

    def write(self, name: str, data: bytes | None = None, obj: Any = None) -> str:
        key = self.key(name)
        self.written.append(key)
        if data is not None:
            self.store.write_bytes(key, data)
        else:
            self.store.write_json(key, obj)
        return self.store.uri(key)

    def uri(self) -> str:
        return self.store.uri(self.folder)

    def remove(self) -> None:
        import shutil

        for key in self.written:
            self.store.delete(key)
        if self.tempdir is not None:
            shutil.rmtree(self.tempdir, ignore_errors=True)


# --------------------------------------------------------------------------- the step
def reproduce(params: ReproduceParams, *, registry, store=None, caller: str | None = None) -> ReproduceResult:
    """Train version ``params.version`` of ``params.model_name`` again from its lineage and compare
    (see the module docstring). The snapshots live on ``store`` (default: the registry's).

    Raises :class:`~mlops_provider.core.errors.NotFoundError` for an unknown model or version,
    :class:`~mlops_provider.core.errors.IntegrityError` when a recorded snapshot's bytes changed
    (before anything is trained or written), :class:`NotReproducibleError` when the version lacks
    what training needs. A version that differs is a result (``reproducible`` False), not an error."""
    from mlops_provider.core.datasets import read_verified_dataframe
    from mlops_provider.core.evaluation import compute_metrics
    from mlops_provider.core.lineage import package_versions
    from mlops_provider.core.modeling import make_estimator, train_model
    from mlops_provider.core.serialization import dump_model, sha256_bytes

    caller = caller or params._step
    store = store if store is not None else registry.store
    t0 = time.perf_counter()
    mv = registry.get_version(params.model_name, params.version)
    recipe, missing = _recipe(mv)
    lineage = mv.lineage or {}
    train_ds, eval_ds = lineage["train_dataset"], lineage.get("eval_dataset") or {}
    model_params = recipe.get("model_params")
    make_estimator(recipe["estimator"], model_params, recipe.get("seed"), caller)  # before any I/O
    train_df = read_verified_dataframe(store, train_ds["uri"], train_ds["sha256"], "training snapshot")
    eval_df = None
    if eval_ds.get("uri") and eval_ds.get("sha256"):
        eval_df = read_verified_dataframe(store, eval_ds["uri"], eval_ds["sha256"], "evaluation snapshot")
    scratch = _Scratch(store, params.scratch, caller)
    try:
        model, fit = train_model(
            train_df,
            label=recipe["label_column"],
            estimator=recipe["estimator"],
            params=dict(model_params) if model_params is not None else None,
            features=recipe.get("features"),
            categorical=recipe.get("categorical"),
            seed=recipe.get("seed"),
            positive_label=recipe.get("positive_label"),
            owner=caller,
        )
        trusted = [*(recipe.get("trusted_types") or []), *(params.trusted_types or [])]
        data = dump_model(model, trusted)
        model_uri = scratch.write(MODEL_FILE, data)
        sha = sha256_bytes(data)
        recorded_metrics = {
            k: v
            for k, v in (mv.metrics or {}).items()
            if isinstance(v, (int, float)) and not isinstance(v, bool)
        }
        metrics: dict[str, Any] = {}
        if eval_df is not None and recorded_metrics:
            metrics = compute_metrics(
                model,
                eval_df,
                fit.spec,
                f"The evaluation snapshot {eval_ds['uri']}",
                names=[n for n in recorded_metrics if _is_metric(n)],
            )
        installed = package_versions()
        identical = sha == mv.model_sha256
        differences = []
        if not identical:
            differences.append(
                {"kind": "model", "name": "model_sha256", "recorded": mv.model_sha256, "reproduced": sha}
            )
        if mv.spec and fit.spec.to_dict() != mv.spec:
            differences.append(
                {"kind": "spec", "name": "spec", "recorded": mv.spec, "reproduced": fit.spec.to_dict()}
            )
        metric_diffs = compare_metrics(recorded_metrics, metrics, params.tolerance) if metrics else []
        differences += metric_diffs
        differences += compare_packages(lineage.get("packages") or {}, installed)
        reproducible = identical or (bool(metrics) and all(d["within_tolerance"] for d in metric_diffs))
        result = ReproduceResult(
            model=mv.model,
            version=mv.version,
            recorded={
                "model_sha256": mv.model_sha256,
                "estimator": mv.estimator,
                "recipe": recipe,
                "train_dataset": train_ds,
                "eval_dataset": eval_ds or None,
                "metrics": recorded_metrics,
                "packages": lineage.get("packages") or {},
                "code": lineage.get("code") or {},
            },
            reproduced={
                "model_sha256": sha,
                "model_uri": model_uri,
                "model_bytes": len(data),
                "metrics": {k: metrics[k] for k in recorded_metrics if k in metrics},
                "packages": installed,
                "train_seconds": fit.train_seconds,
                "rows": fit.rows,
            },
            identical=identical,
            reproducible=reproducible,
            tolerance=float(params.tolerance),
            differences=differences,
            missing=missing,
            scratch_uri=scratch.uri() if params.keep else None,
        )
        result.seconds = round(time.perf_counter() - t0, 3)
        scratch.write(RESULT_FILE, obj=result.to_dict())
    finally:
        if not params.keep:
            scratch.remove()
    if not params.keep:
        result.reproduced["model_uri"] = None  # removed with the scratch folder
    log.debug("%s (%.1fs)", result.summary, result.seconds)
    return result
