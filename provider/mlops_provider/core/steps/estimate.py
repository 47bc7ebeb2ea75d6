"""Estimating the champion's performance on a window whose labels are not known yet (CBPE,
:mod:`mlops_provider.core.cbpe`); a drop of the estimate beyond a tolerance asks for a retrain
(reason ``estimated_performance``). When the window has labels (a later run on the same window),
the realised metrics are recorded next to the estimate, so how good the estimates were is known.

The reference is the champion's evaluation snapshot (``lineage["eval_dataset"]``): its labels and
the champion's probabilities give the reference metric and decide whether the probabilities need
recalibrating (:func:`mlops_provider.core.cbpe.expected_calibration_error` above
``max_calibration_error``).

Artifact layout (under the artifact root, next to the drift reports):

* ``drift/<model>/estimates/calibration/v<version>-<reference sha256[:12]>.json``: the reference
  state (calibration check, calibrators as plain numbers, reference metrics) with a ``digest`` of
  its content; a state that fails its checks (tampered, foreign, truncated) is rebuilt, never used;
* ``drift/<model>/estimates/<window sha256>.json``: the estimate report of a window;
* ``drift/<model>/estimates/history/<UTC stamp>-<window key>.json``: one entry per window (its data
  interval when known, else its sha256); a window estimated again replaces its entry.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from mlops_provider.core.errors import InvalidInputError
from mlops_provider.core.names import CHAMPION
from mlops_provider.core.params import Interval, Name, Params, dataset_uri
from mlops_provider.core.steps.drift import DRIFT_FOLDER, _MonitorResult, _request
from mlops_provider.core.steps.run import RunInfo

log = logging.getLogger(__name__)

STATE_SCHEMA = 1
Z95 = 1.959964


class NotAClassifierError(InvalidInputError):
    """CBPE estimates classifiers' metrics; the model is a regressor."""


def estimates_folder(model: str) -> str:
    return f"{DRIFT_FOLDER}/{model}/estimates"


def estimate_history_folder(model: str) -> str:
    return f"{estimates_folder(model)}/history"


def calibration_key(model: str, version: int, reference_sha256: str) -> str:
    return f"{estimates_folder(model)}/calibration/v{int(version)}-{reference_sha256[:12]}.json"


@dataclass(frozen=True)
class EstimateParams(Params):
    """:param model_name: registry name; its ``alias`` version is estimated.
    :param metric: what decides the retrain: binary ``roc_auc``, ``accuracy`` or ``f1``; multiclass
        ``roc_auc_ovr``, ``accuracy`` or ``f1_macro`` (default: the ROC AUC of the task). All three
        are estimated and reported.
    :param tolerance: a retrain is requested when the estimate is more than this below the
        champion's metric on its reference (evaluation) snapshot.
    :param max_calibration_error: recalibrate on the reference when its expected calibration
        error (10 equal-count bins, worst class) is above this.
    :param draws: label sets drawn for the interval of a multiclass model (a binary one's is
        computed in closed form).
    :param seed: their seed.
    :param alias: the champion's alias.
    :param trusted_types: extra types the model file may hold."""

    _step: ClassVar[str] = "estimate_performance"
    _parameter_constraints: ClassVar = {
        "model_name": [Name()],
        "tolerance": [Interval(float, 0, 1)],
        "max_calibration_error": [Interval(float, 0, 1)],
        "draws": [Interval(int, 20, 10_000)],
        "seed": [Interval(int, 0, None)],
        "alias": [Name()],
    }

    model_name: str
    metric: Literal["roc_auc", "accuracy", "f1", "roc_auc_ovr", "f1_macro"] | None = None
    tolerance: float = 0.02
    max_calibration_error: float = 0.01
    draws: int = 200
    seed: int = 0
    alias: str = CHAMPION
    trusted_types: list[str] | None = None


@dataclass
class EstimateResult(_MonitorResult):
    report: dict[str, Any]  # as saved in drift/<model>/estimates/<window sha256>.json
    history: list[dict[str, Any]]  # this model's windows, oldest first
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
            "step": "estimate_performance",
            "details": {k: self.report[k] for k in ("metric", "estimate", "drop", "retrain")},
        }


# --------------------------------------------------------------------------- model outputs
@dataclass
class _Outputs:
    """A classifier's outputs on some rows, as CBPE sees them."""

    kind: str  # "binary" | "multiclass"
    raw: Any  # binary: P(positive) (n,); multiclass: n x k
    pred: Any  # binary: 0/1; multiclass: class index
    classes: list[Any]


def _outputs(model, df, spec, where: str) -> _Outputs:
    import numpy as np

    from mlops_provider.core.evaluation import _same
    from mlops_provider.core.modeling import predict, prepare_frame

    preds = predict(model, prepare_frame(df, spec, where), spec)
    if spec.kind == "binary":
        return _Outputs(
            "binary", np.asarray(preds.score, "float64"), _same(preds.pred, spec.positive_label), []
        )
    classes = list(preds.classes)
    index = {str(c): i for i, c in enumerate(classes)}
    pred = np.asarray([index[str(v)] for v in preds.pred])
    return _Outputs("multiclass", np.asarray(preds.proba, "float64"), pred, classes)


def _columns(out: _Outputs):
    """(name, raw probability column) for each calibrated column."""
    if out.kind == "binary":
        return [("positive", out.raw)]
    return [(str(c), out.raw[:, i]) for i, c in enumerate(out.classes)]


def _calibrated(out: _Outputs, calibrators: Mapping[str, Any] | None):
    import numpy as np

    from mlops_provider.core.cbpe import apply_calibrator

    if not calibrators:
        return out.raw
    if out.kind == "binary":
        return apply_calibrator(calibrators["positive"], out.raw)
    P = np.column_stack([apply_calibrator(calibrators[name], col) for name, col in _columns(out)])
    total = P.sum(axis=1, keepdims=True)
    return np.where(total > 0, P / np.where(total > 0, total, 1.0), out.raw)


def _expected(out: _Outputs, P) -> dict[str, float]:
    from mlops_provider.core.cbpe import expected_binary, expected_multiclass

    return expected_binary(P, out.pred) if out.kind == "binary" else expected_multiclass(P, out.pred)


# --------------------------------------------------------------------------- reference state
def _digest(state: Mapping[str, Any]) -> str:
    body = {k: v for k, v in state.items() if k != "digest"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, allow_nan=False).encode()).hexdigest()


def _state_problem(state: Any, expect: Mapping[str, Any]) -> str | None:
    """Why a stored reference state must not be used (None: use it)."""
    from mlops_provider.core.cbpe import METRICS, check_calibrator

    if not isinstance(state, dict):
        return f"not a JSON object ({type(state).__name__})"
    for key, want in expect.items():
        if key != "columns" and state.get(key) != want:
            return f"{key} is {state.get(key)!r}, expected {want!r}"
    try:
        if state.get("digest") != _digest(state):
            return "its digest does not match its content"
    except (TypeError, ValueError) as err:
        return f"its content is not plain JSON ({err})"
    ref = state.get("reference_metrics")
    if not isinstance(ref, dict) or set(ref) != set(METRICS[expect["kind"]]):
        return f"reference_metrics must name {list(METRICS[expect['kind']])}"
    cals = state.get("calibrators")
    if cals is None:
        return None
    if not isinstance(cals, dict) or set(cals) != set(expect["columns"]):
        return f"calibrators must be given for {expect['columns']}"
    for name, cal in cals.items():
        why = check_calibrator(cal)
        if why:
            return f"calibrator {name!r}: {why}"
    return None


def reference_state(store, mv, model, spec, params: EstimateParams) -> tuple[dict[str, Any], str, str]:
    """``(state, uri, status)``: the calibration check and calibrators of the champion ``model``
    (version ``mv``) on its evaluation snapshot, reused from the store when it passes every check,
    else (re)built. ``status`` is ``"reused"``, ``"built"`` or ``"rebuilt: <why the stored one was
    refused>"``."""
    from mlops_provider.core.datasets import read_manifest
    from mlops_provider.core.errors import NotFoundError

    name = params.model_name
    ref = (mv.lineage or {}).get("eval_dataset")
    if not isinstance(ref, dict) or not isinstance(ref.get("uri"), str):
        raise NotFoundError(
            f"{name} v{mv.version} records no evaluation snapshot (lineage['eval_dataset']['uri']); got "
            f"{ref!r}. The CBPE reference is the labelled data the champion was evaluated on."
        )
    snap = read_manifest(store, ref["uri"])
    key = calibration_key(name, mv.version, snap.sha256)
    expect = {
        "schema": STATE_SCHEMA,
        "model": name,
        "champion_version": mv.version,
        "model_sha256": mv.model_sha256,
        "reference_sha256": snap.sha256,
        "kind": spec.kind,
        "max_calibration_error": float(params.max_calibration_error),
    }
    status = "built"
    if store.exists(key):
        try:
            stored: Any = store.read_json(key)
            columns = ["positive"] if spec.kind == "binary" else [str(c) for c in spec.classes]
            why = _state_problem(stored, {**expect, "columns": columns})
        except (OSError, ValueError) as err:
            why = f"unreadable ({err})"
        if why is None:
            return stored, store.uri(key), "reused"
        log.warning("Refusing the stored CBPE reference state %s (%s); rebuilding it", store.uri(key), why)
        status = f"rebuilt: {why}"
    state = _build_state(store, snap, expect, model, spec, params)
    store.write_json(key, state)  # atomic: readers see the whole state or none
    return state, store.uri(key), status


def _truth(out: _Outputs, y, spec) -> dict[str, Any]:
    """The 0/1 outcome of each calibrated column."""
    import numpy as np

    from mlops_provider.core.evaluation import _same

    if out.kind == "binary":
        return {"positive": _same(y, spec.positive_label).astype(int)}
    ys = np.asarray([str(v) for v in y], dtype=object)
    return {str(c): (ys == str(c)).astype(int) for c in out.classes}


def _build_state(store, snap, expect, model, spec, params: EstimateParams) -> dict[str, Any]:
    from mlops_provider.core.cbpe import ECE_BINS, METRICS, expected_calibration_error, fit_calibrator
    from mlops_provider.core.datasets import read_dataframe
    from mlops_provider.core.evaluation import encode, metrics_of, score_frame

    df = read_dataframe(store, snap.uri)
    where = f"The reference (evaluation) snapshot {snap.uri}"
    labelled, y, preds = score_frame(model, df, spec, where)
    values = metrics_of(encode(y, preds, spec, where), list(METRICS[spec.kind]))
    realised = {k: values[k] for k in METRICS[spec.kind]}
    out = _outputs(model, labelled, spec, where)
    truth = _truth(out, y, spec)
    ece = {name: expected_calibration_error(col, truth[name]) for name, col in _columns(out)}
    worst = max(ece.values())
    calibrate = worst > float(params.max_calibration_error)
    calibrators = (
        {name: fit_calibrator(col, truth[name]) for name, col in _columns(out)} if calibrate else None
    )
    after = None
    if calibrators:
        P = _calibrated(out, calibrators)
        cols = [P] if out.kind == "binary" else [P[:, i] for i in range(P.shape[1])]
        after = {
            name: expected_calibration_error(c, truth[name])
            for (name, _), c in zip(_columns(out), cols, strict=True)
        }
    state = {
        **expect,
        "reference_uri": snap.uri,
        "reference_rows": len(y),
        "ece_bins": ECE_BINS,
        "ece_before": ece,
        "ece_after_in_sample": after,
        "calibrated": calibrate,
        "method": next(iter(calibrators.values()))["method"] if calibrators else None,
        "calibrators": calibrators,
        "reference_metrics": {k: float(v) for k, v in realised.items()},
        "created_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }
    state["digest"] = _digest(state)
    log.info(
        "%s v%d reference %s: worst ECE %.4f (threshold %.4f) -> %s",
        params.model_name,
        expect["champion_version"],
        snap.uri,
        worst,
        params.max_calibration_error,
        f"recalibrated ({state['method']})" if calibrate else "probabilities used as they are",
    )
    return state


# --------------------------------------------------------------------------- history
def _window_key(window: Mapping[str, str] | None, sha256: str) -> str:
    if window:
        return hashlib.sha256(f"{window['start']}/{window['end']}".encode()).hexdigest()[:12]
    return sha256[:12]


def append_estimate(store, model: str, entry: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Record ``entry`` in ``model``'s estimate history, replacing an earlier entry of the same
    window (``entry["window_key"]``); returns every entry, oldest first."""
    folder = estimate_history_folder(model)
    suffix = f"-{entry['window_key']}.json"
    for name in store.list_dir(folder):
        if name.endswith(suffix):
            store.delete(f"{folder}/{name}")
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    store.write_json(f"{folder}/{stamp}{suffix}", dict(entry))
    return estimate_history(store, model)


def estimate_history(store, model: str) -> list[dict[str, Any]]:
    """Every estimate recorded for ``model``, oldest first (unreadable entries skipped)."""
    folder = estimate_history_folder(model)
    out = []
    for name in sorted(store.list_dir(folder)):
        if name.endswith(".json") and not name.startswith("."):
            try:
                entry = store.read_json(f"{folder}/{name}")
            except (OSError, ValueError):
                continue
            if isinstance(entry, dict):
                out.append(entry)
    return out


# --------------------------------------------------------------------------- the step
def _metric_for(params: EstimateParams, kind: str, caller: str) -> str:
    from mlops_provider.core.cbpe import METRICS
    from mlops_provider.core.params import parameter_error

    metric = params.metric or METRICS[kind][0]
    if metric not in METRICS[kind]:
        raise parameter_error(
            "metric", f"one of {list(METRICS[kind])} for a {kind} classifier", metric, caller
        )
    return metric


def _realised(model, df, spec, where: str) -> tuple[dict[str, float] | None, int]:
    """The window's realised metrics (scikit-learn) on its labelled rows, or None without labels."""
    from mlops_provider.core.cbpe import METRICS
    from mlops_provider.core.errors import SingleClassLabelError
    from mlops_provider.core.evaluation import encode, metrics_of, score_frame

    if spec.label not in df.columns or not df[spec.label].notna().any():
        return None, 0
    df = df.loc[df[spec.label].notna()]
    labels = df[spec.label]
    if labels.dtype.kind == "f" and (labels % 1 == 0).all():  # 0/1 with NULLs arrive as 0.0/1.0
        df = df.assign(**{spec.label: labels.astype("int64")})
    _, y, preds = score_frame(model, df, spec, where)
    try:
        enc = encode(y, preds, spec, where)
    except SingleClassLabelError:
        return None, len(y)
    values = metrics_of(enc, list(METRICS[spec.kind]))
    return {k: float(values[k]) for k in METRICS[spec.kind]}, len(y)


def estimate_performance(
    params: EstimateParams,
    *,
    dataset: Any,
    store,
    registry,
    run: RunInfo | None = None,
    window: Mapping[str, str] | None = None,
    caller: str | None = None,
) -> EstimateResult:
    """Estimate the ``params.alias`` version's accuracy, F1 and ROC AUC on ``dataset`` (a snapshot
    URI or an extract result; labels not needed) by CBPE; request a retrain (``result.request``,
    with ``window``) when the estimate of ``params.metric`` is more than ``params.tolerance`` below
    the champion's value on its reference. Labelled rows in the window give the realised metrics,
    recorded next to the estimate. ``run`` is not used (the artifacts are keyed by model and window)."""
    import time

    import numpy as np

    from mlops_provider.core.cbpe import METRICS, simulate, standard_errors_binary
    from mlops_provider.core.datasets import read_dataframe, read_manifest
    from mlops_provider.core.modeling import FeatureSpec, check_columns

    t0 = time.perf_counter()
    caller = caller or params._step
    name = params.model_name
    uri = dataset_uri(dataset, caller)
    mv = registry.resolve(name, params.alias)
    spec = FeatureSpec.from_dict(mv.spec)
    if spec.kind == "regression":
        raise NotAClassifierError(
            f"{caller}: CBPE estimates the performance of classifiers from their probabilities; {name} "
            f"v{mv.version} is a regressor (task {spec.task!r}, label {spec.label!r}). Monitor a regressor "
            "with drift detection, or with EvaluateChampionOperator once labels arrive."
        )
    metric = _metric_for(params, spec.kind, caller)
    snap = read_manifest(store, uri)
    where = f"The window {snap.uri}"
    check_columns(snap.column_names, spec.features, "feature", where)
    model, mv = registry.load(name, mv.version, params.trusted_types or ())
    state, state_uri, state_status = reference_state(store, mv, model, spec, params)
    df = read_dataframe(store, snap.uri)
    if len(df) == 0:
        raise InvalidInputError(f"{where} has no rows: there is nothing to estimate.")
    out = _outputs(model, df, spec, where)
    P = _calibrated(out, state.get("calibrators"))
    estimates = _expected(out, P)
    if out.kind == "binary":
        ses = standard_errors_binary(P, out.pred, out.raw)
    else:
        sims = simulate(P, out.pred, out.raw, draws=int(params.draws), seed=int(params.seed))
        ses = {
            m: float(np.nanstd(v, ddof=1)) if np.isfinite(v).sum() > 1 else float("nan")
            for m, v in sims.items()
        }
    estimated = {}
    for m in METRICS[spec.kind]:
        value = estimates[m]
        se = ses[m]
        lo, hi = value - Z95 * se, value + Z95 * se
        estimated[m] = {
            "value": value,
            "se": se,
            "lower": max(0.0, lo) if math.isfinite(lo) else None,
            "upper": min(1.0, hi) if math.isfinite(hi) else None,
        }
    realised, labelled_rows = _realised(model, df, spec, where)
    reference = float(state["reference_metrics"][metric])
    estimate = estimated[metric]["value"]
    drop = reference - estimate
    tolerance = float(params.tolerance)
    retrain = bool(math.isfinite(drop) and drop > tolerance)
    report_key = f"{estimates_folder(name)}/{snap.sha256}.json"
    report = {
        "model": name,
        "champion_version": mv.version,
        "kind": spec.kind,
        "metric": metric,
        "reference": reference,
        "estimate": estimate,
        "lower": estimated[metric]["lower"],
        "upper": estimated[metric]["upper"],
        "drop": round(drop, 6) if math.isfinite(drop) else None,
        "tolerance": tolerance,
        "retrain": retrain,
        "estimated": estimated,
        "reference_metrics": dict(state["reference_metrics"]),
        "realised": realised,
        "labelled_rows": labelled_rows,
        "error": (
            {m: realised[m] - estimated[m]["value"] for m in realised} if realised is not None else None
        ),
        "rows": len(df),
        "interval": "95%: estimate +- 1.96 se, se of the realised metric if the labels were drawn from the "
        + (
            "calibrated probabilities (closed form)"
            if out.kind == "binary"
            else f"calibrated probabilities ({int(params.draws)} label sets drawn)"
        ),
        "calibration": {
            "uri": state_uri,
            "status": state_status,
            "calibrated": state["calibrated"],
            "method": state["method"],
            "ece_before": state["ece_before"],
            "max_calibration_error": state["max_calibration_error"],
        },
        "window": dict(window) if window else None,
        "dataset": {"uri": snap.uri, "sha256": snap.sha256, "rows": snap.rows},
        "reference_dataset": {"uri": state["reference_uri"], "sha256": state["reference_sha256"]},
        "seconds": round(time.perf_counter() - t0, 3),
        "created_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "report_uri": store.uri(report_key),
    }
    store.write_json(report_key, report)
    entry = {
        "window_key": _window_key(window, snap.sha256),
        **{
            k: report[k]
            for k in (
                "model",
                "champion_version",
                "metric",
                "reference",
                "estimate",
                "lower",
                "upper",
                "drop",
                "retrain",
                "estimated",
                "realised",
                "labelled_rows",
                "error",
                "rows",
                "window",
                "created_at",
                "report_uri",
            )
        },
        "window_sha256": snap.sha256,
    }
    history = append_estimate(store, name, entry)
    log.info(
        "%s v%d %s: reference %.4f, estimated %.4f [%s, %s] (drop %.4f, tolerance %.4f)%s -> %s",
        name,
        mv.version,
        metric,
        reference,
        estimate,
        report["lower"],
        report["upper"],
        drop,
        tolerance,
        f", realised {realised[metric]:.4f}" if realised else "",
        "retrain" if retrain else "no retrain",
    )
    request = None
    if retrain:
        request = _request(
            store,
            model=name,
            reason="estimated_performance",
            champion_version=mv.version,
            window=window,
            scores={
                "reference": reference,
                "estimated": estimate,
                "lower": report["lower"] if report["lower"] is not None else estimate,
                "upper": report["upper"] if report["upper"] is not None else estimate,
                "drop": round(drop, 6),
            },
            report_uri=report["report_uri"],
        )
    return EstimateResult(
        report=report,
        history=history,
        request=request,
        inputs=[mv.model_uri, (snap.data_uri, snap.columns), f"{state['reference_uri']}/data.parquet"],
    )
