"""Monitoring the champion: data drift of a window against its training snapshot
(:func:`detect_drift`), and its score on newly labelled data (:func:`evaluate_champion`). Either
may ask for a retrain; the result then carries the :class:`~mlops_provider.core.events.RetrainRequest`
(``request``) and its ``extra`` (``event``), which the Airflow operators attach to the asset
``x-mlops://<model>/retrain-requested``.

Artifact layout (under the artifact root):

* ``<reference snapshot>/profile.json``: the reference profile, built once per training snapshot;
* ``drift/<model>/<window sha256>.json``: the drift report of a window;
* ``drift/<model>/history/<UTC stamp>-<window sha256[:12]>.json``: one entry per window compared,
  which the persistence policy reads (a window compared again replaces its entry);
* ``<run folder>/champion_evaluation.json``: the champion's score on labelled data.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from mlops_provider.core.names import CHAMPION
from mlops_provider.core.params import Constraint, Interval, Name, Params, dataset_uri
from mlops_provider.core.steps.run import RunInfo

log = logging.getLogger(__name__)

PROFILE_FILE = "profile.json"
DRIFT_FOLDER = "drift"
CHAMPION_EVALUATION_FILE = "champion_evaluation.json"


def drift_report_key(model: str, window_sha256: str) -> str:
    """Artifact key of a window's drift report."""
    return f"{DRIFT_FOLDER}/{model}/{window_sha256}.json"


def drift_history_folder(model: str) -> str:
    """Artifact key of the folder holding one entry per window compared with ``model``'s champions."""
    return f"{DRIFT_FOLDER}/{model}/history"


def profile_key(store, snapshot_uri: str) -> str:
    """Artifact key of the cached reference profile of a snapshot."""
    return f"{store.key_of(snapshot_uri)}/{PROFILE_FILE}"


# --------------------------------------------------------------------------- constraints
def _positive(value: Any) -> bool:
    return (
        isinstance(value, numbers.Real)
        and not isinstance(value, bool)
        and not (isinstance(value, float) and math.isnan(value))
        and value > 0
    )


class _FeatureThresholds(Constraint):
    """``{"temp": 1.0, "default": 0.2}``: thresholds > 0 by feature name."""

    def is_satisfied_by(self, value: Any) -> bool:
        return isinstance(value, Mapping) and all(
            isinstance(k, str) and _positive(v) for k, v in value.items()
        )

    def __str__(self) -> str:
        return "a dict of feature (or 'default') -> a number > 0"


class _ColumnNames(Constraint):
    def is_satisfied_by(self, value: Any) -> bool:
        return (
            isinstance(value, (list, tuple)) and bool(value) and all(isinstance(v, str) and v for v in value)
        )

    def __str__(self) -> str:
        return "a non-empty list of column names"


_POSITIVE = Interval(float, 0, None, closed="neither")


# --------------------------------------------------------------------------- drift
class _MonitorResult:
    """What both monitoring results share: a report (``report["report_uri"]``) and, when a
    retrain is due, ``request``."""

    report: dict[str, Any]
    request: Any

    @property
    def report_uri(self) -> str:
        return self.report["report_uri"]

    @property
    def event(self) -> dict[str, Any] | None:
        """The retrain request's asset-event ``extra``, or None."""
        return self.request.to_extra() if self.request is not None else None


@dataclass(frozen=True)
class DriftParams(Params):
    """:param model_name: registry name; the reference is the training snapshot of its ``alias``
        version (``lineage["train_dataset"]["uri"]``).
    :param features: features to compare (default: the champion's numeric + categorical features).
    :param alias: the champion's alias.
    :param psi_threshold: a number, or per feature ``{"temp": 1.0, "default": 0.2}``.
    :param missing_threshold: a feature drifts when its missing rate moves by this much.
    :param unseen_threshold: a categorical feature drifts when this share of rows has unseen categories.
    :param decide_by: ``"psi"`` or ``"p_value"``.
    :param min_drifted_features: retrain when at least this many features drift ...
    :param persistence: ... in each of the last ``persistence`` windows compared with this champion."""

    _step: ClassVar[str] = "detect_drift"
    _parameter_constraints: ClassVar = {
        "model_name": [Name()],
        "features": [_ColumnNames()],
        "alias": [Name()],
        "psi_threshold": [_POSITIVE, _FeatureThresholds()],
        "missing_threshold": [_POSITIVE],
        "unseen_threshold": [_POSITIVE],
        "min_drifted_features": [Interval(int, 1, None)],
        "persistence": [Interval(int, 1, None)],
    }

    model_name: str
    features: list[str] | None = None
    alias: str = CHAMPION
    psi_threshold: float | dict[str, float] = 0.2
    missing_threshold: float = 0.1
    unseen_threshold: float = 0.05
    decide_by: Literal["psi", "p_value"] = "psi"
    min_drifted_features: int = 1
    persistence: int = 1


@dataclass
class DriftResult(_MonitorResult):
    report: dict[str, Any]  # the drift report as saved (with champion_version)
    retrain: bool
    policy_reason: str
    profile_uri: str
    profile_reused: bool
    history: list[dict[str, Any]]  # this champion's windows, oldest first
    request: Any = None  # core.events.RetrainRequest when a retrain is due
    inputs: list[Any] = field(default_factory=list)

    @property
    def summary(self) -> str:
        return self.report["summary"]

    def to_dict(self) -> dict[str, Any]:
        out = dict(self.report)
        out.update(
            retrain=self.retrain,
            policy_reason=self.policy_reason,
            profile_uri=self.profile_uri,
            profile_reused=self.profile_reused,
            event=self.event,
            history=[{k: h[k] for k in ("window_sha256", "n_drifted")} for h in self.history],
        )
        return out

    def lineage(self) -> dict[str, Any]:
        return {
            "inputs": self.inputs,
            "outputs": [self.report_uri],
            "step": "drift",
            "details": {
                "n_drifted": self.report["n_drifted"],
                "retrain": self.retrain,
                "champion_version": self.report["champion_version"],
            },
        }


def reference_profile(store, reference_uri: str, features: list[str], categorical: list[str]):
    """``(profile, uri, reused)``: the reference profile of a snapshot, from the cache next to it
    (when it covers ``features`` with the same kinds and the snapshot's sha256) or built and cached."""
    from mlops_provider.core.datasets import read_dataframe, read_manifest
    from mlops_provider.core.drift import ReferenceProfile, build_profile

    snap = read_manifest(store, reference_uri)
    key = profile_key(store, snap.uri)
    if store.exists(key):
        cached = ReferenceProfile.from_dict(store.read_json(key))
        fits = all(
            f in cached.features and (cached.features[f].kind == "categorical") == (f in categorical)
            for f in features
        )
        if fits and cached.source.get("sha256") == snap.sha256:
            cached.features = {f: cached.features[f] for f in features}
            return cached, store.uri(key), True
        log.info("Cached profile %s does not cover %s; rebuilding it", store.uri(key), features)
    df = read_dataframe(store, snap.uri, columns=features)
    source = {"uri": snap.uri, "sha256": snap.sha256, "rows": snap.rows}
    profile = build_profile(df, features, categorical, source=source)
    store.write_json(key, profile.to_dict())  # atomic: readers see the whole profile or none
    log.info("Built the reference profile of %s (%d rows) -> %s", snap.uri, snap.rows, store.uri(key))
    return profile, store.uri(key), False


def append_history(store, model: str, entry: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Record ``entry`` (one window compared) in ``model``'s drift history, replacing an earlier
    entry of the same window; returns every entry, oldest first."""
    folder = drift_history_folder(model)
    sha12 = entry["window_sha256"][:12]
    for name in store.list_dir(folder):  # the same window again (a retry, a clear): replace it
        if name.endswith(f"-{sha12}.json"):
            store.delete(f"{folder}/{name}")
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    store.write_json(f"{folder}/{stamp}-{sha12}.json", dict(entry))
    return [
        store.read_json(f"{folder}/{n}")
        for n in store.list_dir(folder)
        if n.endswith(".json") and not n.startswith(".")
    ]


def _reference_of(mv, model: str) -> dict[str, Any]:
    from mlops_provider.core.errors import NotFoundError

    ref = (mv.lineage or {}).get("train_dataset")
    if not isinstance(ref, dict) or not isinstance(ref.get("uri"), str):
        raise NotFoundError(
            f"{model} v{mv.version} records no training snapshot (lineage['train_dataset']['uri']); "
            f"got {ref!r}. The drift reference is the champion's training data."
        )
    return ref


def detect_drift(
    params: DriftParams,
    *,
    dataset: Any,
    store,
    registry,
    run: RunInfo | None = None,
    window: Mapping[str, str] | None = None,
    caller: str | None = None,
) -> DriftResult:
    """Compare ``dataset`` (a snapshot URI or an extract result) with the training data of the
    ``params.alias`` version of ``params.model_name``; save the report and a history entry, and
    decide by the persistence policy whether a retrain is due (then ``result.request`` is set,
    with ``window``, the data interval the snapshot covers, ``{"start": ISO, "end": ISO}``).

    ``run`` is not used (the drift artifacts are keyed by model and window, not by run); it is
    accepted like every step's."""
    from mlops_provider.core.datasets import read_dataframe, read_manifest
    from mlops_provider.core.drift import RetrainPolicy, compare
    from mlops_provider.core.modeling import FeatureSpec, check_columns

    caller = caller or params._step
    model = params.model_name
    policy = RetrainPolicy(params.min_drifted_features, params.persistence)
    uri = dataset_uri(dataset, caller)
    mv = registry.resolve(model, params.alias)
    ref = _reference_of(mv, model)
    spec = FeatureSpec.from_dict(mv.spec)
    features = list(params.features or spec.features)
    categorical = [f for f in features if f in spec.categorical]
    profile, profile_uri, reused = reference_profile(store, ref["uri"], features, categorical)

    snap = read_manifest(store, uri)
    check_columns(snap.column_names, features, "feature", f"The drift window {snap.uri}")
    df = read_dataframe(store, snap.uri, columns=features)
    psi = params.psi_threshold
    report = compare(
        profile,
        df,
        psi_threshold=dict(psi) if isinstance(psi, Mapping) else float(psi),
        missing_threshold=float(params.missing_threshold),
        unseen_threshold=float(params.unseen_threshold),
        decide_by=params.decide_by,
        reference_info={**profile.source, "model": model, "version": mv.version},
        current_info={"uri": snap.uri, "sha256": snap.sha256},
    )
    report_key = drift_report_key(model, snap.sha256)
    report.report_uri = store.uri(report_key)
    out = report.to_dict()
    out["champion_version"] = mv.version
    store.write_json(report_key, out)
    entry = {
        "model": model,
        "champion_version": mv.version,
        "window_sha256": snap.sha256,
        "window_uri": snap.uri,
        "created_at": report.created_at,
        "report_uri": report.report_uri,
        "n_drifted": out["n_drifted"],
        "drifted_features": out["drifted_features"],
    }
    history = [h for h in append_history(store, model, entry) if h.get("champion_version") == mv.version]
    retrain, why = policy.decide(history)
    log.info("%s; %s -> %s", report.summary(), why, "retrain" if retrain else "no retrain")
    request = None
    if retrain:
        request = _request(
            store,
            model=model,
            reason="drift",
            champion_version=mv.version,
            window=window,
            drifted_features=out["drifted_features"],
            scores=dict(out["scores"]),
            report_uri=report.report_uri,
        )
    return DriftResult(
        report=out,
        retrain=retrain,
        policy_reason=why,
        profile_uri=profile_uri,
        profile_reused=reused,
        history=history,
        request=request,
        inputs=[f"{ref['uri']}/data.parquet", (snap.data_uri, snap.columns)],
    )


def _request(store, *, window: Mapping[str, str] | None, **fields: Any):
    """A retrain request, checked as its consumers will parse it (never send what they would refuse)."""
    from mlops_provider.core.events import RetrainRequest

    request = RetrainRequest(window=dict(window) if window is not None else None, **fields)
    RetrainRequest.parse(request.to_extra(), artifact_root=store.root)
    return request


# --------------------------------------------------------------------------- champion performance
@dataclass(frozen=True)
class ChampionCheckParams(Params):
    """:param model_name: registry name (its ``alias`` version is scored).
    :param metric: a scikit-learn scorer name or alias (default: the compare metric of the
        champion's verdict, else the task's default).
    :param tolerance: absolute drop allowed before a retrain is requested (for lower-is-better
        metrics the drop is the increase).
    :param alias: the champion's alias.
    :param trusted_types: extra types the model file may hold."""

    _step: ClassVar[str] = "evaluate_champion"
    _parameter_constraints: ClassVar = {
        "model_name": [Name()],
        "tolerance": [Interval(float, 0, None)],
        "alias": [Name()],
    }

    model_name: str
    metric: str | None = None
    tolerance: float = 0.02
    alias: str = CHAMPION
    trusted_types: list[str] | None = None

    def validate(self, caller: str) -> None:
        """The declared constraints, then the metric name (a known scorer; close matches named)."""
        super().validate(caller)
        if self.metric is not None:
            from mlops_provider.core import metrics as M

            M.resolve(self.metric, "metric", caller)


@dataclass
class ChampionCheckResult(_MonitorResult):
    report: dict[str, Any]  # as saved in champion_evaluation.json
    request: Any = None  # core.events.RetrainRequest when a retrain is due
    inputs: list[Any] = field(default_factory=list)

    @property
    def retrain(self) -> bool:
        return bool(self.report["retrain"])

    def to_dict(self) -> dict[str, Any]:
        return {**self.report, "event": self.event}

    def lineage(self) -> dict[str, Any]:
        return {
            "inputs": self.inputs,
            "outputs": [self.report_uri],
            "step": "evaluate_champion",
            "details": {k: self.report[k] for k in ("metric", "drop", "retrain")},
        }


def _recorded_metric(mv, metric: str, model_name: str) -> float:
    """The value measured when the version was evaluated (its verdict, else its metrics)."""
    from mlops_provider.core.errors import NotFoundError

    recorded = (
        ((mv.verdict or {}).get("metrics") or {}).get("challenger", {}).get(metric, mv.metrics.get(metric))
    )
    if recorded is None:
        raise NotFoundError(
            f"{model_name} v{mv.version} has no recorded {metric!r} (verdict metrics or version metrics); "
            f"recorded: {sorted(mv.metrics)}. Pass a metric it has."
        )
    return float(recorded)


def evaluate_champion(
    params: ChampionCheckParams,
    *,
    dataset: Any,
    store,
    registry,
    run: RunInfo,
    window: Mapping[str, str] | None = None,
    caller: str | None = None,
) -> ChampionCheckResult:
    """Score the ``params.alias`` version of ``params.model_name`` on ``dataset`` (a labelled
    snapshot URI or an extract result) and compare with the value recorded when it was evaluated;
    a drop beyond ``params.tolerance`` asks for a retrain (``result.request``, with ``window``).
    The report goes to ``<run.folder>/champion_evaluation.json``."""
    from mlops_provider.core import metrics as M
    from mlops_provider.core.datasets import read_dataframe, read_manifest
    from mlops_provider.core.evaluation import encode, metric_names, metrics_of, score_frame
    from mlops_provider.core.modeling import FeatureSpec

    caller = caller or params._step
    name = params.model_name
    uri = dataset_uri(dataset, caller)
    model, mv = registry.load(name, params.alias, params.trusted_types or ())
    spec = FeatureSpec.from_dict(mv.spec)
    if params.metric is not None:
        M.check_fit(M.resolve(params.metric), spec.kind, "metric", caller)
    metric = params.metric or (mv.verdict or {}).get("compare_metric") or M.DEFAULT_COMPARE[spec.kind]
    recorded = _recorded_metric(mv, metric, name)
    snap = read_manifest(store, uri)
    df = read_dataframe(store, snap.uri)
    where = f"The labelled snapshot {snap.uri}"
    _, y, preds = score_frame(model, df, spec, where)
    metrics = metrics_of(encode(y, preds, spec, where), metric_names(spec.kind, compare_metric=metric))
    current = float(metrics[metric])
    drop = recorded - current if M.resolve(metric).higher_is_better else current - recorded
    tolerance = float(params.tolerance)
    retrain = drop > tolerance
    key = f"{run.folder}/{CHAMPION_EVALUATION_FILE}"
    out = {
        "model": name,
        "champion_version": mv.version,
        "metric": metric,
        "recorded": recorded,
        "current": current,
        "drop": round(drop, 6),
        "tolerance": tolerance,
        "retrain": retrain,
        "metrics": {k: float(v) for k, v in metrics.items()},
        "rows": int(len(y)),
        "dataset": {"uri": snap.uri, "sha256": snap.sha256, "rows": snap.rows},
        "report_uri": store.uri(key),
    }
    store.write_json(key, out)
    log.info(
        "%s v%d %s: recorded %.4f, now %.4f (drop %.4f, tolerance %.4f) -> %s",
        name,
        mv.version,
        metric,
        recorded,
        current,
        drop,
        tolerance,
        "retrain" if retrain else "no retrain",
    )
    request = None
    if retrain:
        request = _request(
            store,
            model=name,
            reason="performance",
            champion_version=mv.version,
            window=window,
            scores={"recorded": recorded, "current": current, "drop": round(drop, 6)},
            report_uri=out["report_uri"],
        )
    return ChampionCheckResult(
        report=out, request=request, inputs=[mv.model_uri, (snap.data_uri, snap.columns)]
    )
