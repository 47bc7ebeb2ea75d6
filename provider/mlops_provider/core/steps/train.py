"""Train an allow-listed scikit-learn estimator on a dataset snapshot, seeded and reproducible.

The model goes to the run's folder as ``model.skops`` (with its sha256), next to ``train.json``
(the result). The estimator, its parameters and the gate's metric names are checked before the
data is read; the positive label and the metrics' fit to the labels before fitting.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, ClassVar

from mlops_provider.core.params import Constraint, Interval, Params, Text, dataset_uri
from mlops_provider.core.steps.run import RunInfo

log = logging.getLogger(__name__)

DEFAULT_ESTIMATOR = "sklearn.ensemble.HistGradientBoostingClassifier"


class _Columns(Constraint):
    """A list of column names."""

    def is_satisfied_by(self, value: Any) -> bool:
        return isinstance(value, (list, tuple)) and all(isinstance(c, str) for c in value)

    def __str__(self) -> str:
        return "a list of column names"


@dataclass(frozen=True)
class TrainParams(Params):
    """:param label_column: the label column. :param estimator: an allow-listed import path
    (:mod:`mlops_provider.core.modeling`). :param model_params: the estimator's parameters.
    :param features: feature columns (None: every column but the label and ``exclude``).
    :param categorical: columns treated as categories even if numeric. :param exclude: columns never
    used as features. :param seed: random seed (``random_state`` unless ``model_params`` sets it).
    :param positive_label: a binary label's positive class (required unless the labels are 0/1 or
    False/True); None for multiclass and regression. :param gate_metrics: metric names the model
    gate will use, checked against the labels' task before fitting (a list, or text "a, b").
    :param trusted_types: extra types the saved model may hold (:mod:`~mlops_provider.core.serialization`)."""

    _step: ClassVar[str] = "train"
    _parameter_constraints: ClassVar = {
        "label_column": [Text("the name of the label column")],
        "estimator": [
            Text("an estimator import path such as 'sklearn.ensemble.HistGradientBoostingClassifier'")
        ],
        "features": [_Columns()],
        "categorical": [_Columns()],
        "exclude": [_Columns()],
        "seed": [Interval(int, 0, 2**32, closed="left")],
        "gate_metrics": [_Columns()],
        "trusted_types": [_Columns()],
    }

    label_column: str
    estimator: str = DEFAULT_ESTIMATOR
    model_params: dict[str, Any] | None = None
    features: list[str] | None = None
    categorical: list[str] | None = None
    exclude: list[str] | None = None
    seed: int = 42
    positive_label: Any = None
    gate_metrics: list[str] | None = None
    trusted_types: list[str] | None = None

    def __post_init__(self) -> None:
        # what forms send: a seed of 7.0, metric names as "roc_auc, f1"
        if isinstance(self.seed, float) and self.seed.is_integer():
            object.__setattr__(self, "seed", int(self.seed))
        if isinstance(self.gate_metrics, str):
            names = [n.strip() for n in self.gate_metrics.split(",") if n.strip()]
            object.__setattr__(self, "gate_metrics", names)
        super().__post_init__()


@dataclass
class TrainResult:
    fit: Any  # core.modeling.TrainResult: estimator, params, seed, spec, rows, timing
    model: Any  # the fitted Pipeline
    model_uri: str
    model_sha256: str
    model_bytes: int
    snapshot: Any  # core.datasets.DatasetSnapshot trained on
    recipe: dict[str, Any] | None = None  # what to train again: see :func:`recipe_of`

    def to_dict(self) -> dict[str, Any]:
        snap = self.snapshot
        out = self.fit.to_dict()
        out.update(
            recipe=self.recipe,
            model_uri=self.model_uri,
            model_sha256=self.model_sha256,
            model_bytes=self.model_bytes,
            dataset={
                "uri": snap.uri,
                "sha256": snap.sha256,
                "rows": snap.rows,
                "source": snap.source,
                "query": snap.query,
            },
        )
        return out

    def lineage(self) -> dict[str, Any]:
        fit = self.fit
        return {
            "inputs": [(self.snapshot.data_uri, self.snapshot.columns)],
            "outputs": [self.model_uri],
            "step": "train",
            "details": {
                "estimator": fit.estimator,
                "model_sha256": self.model_sha256,
                "seed": fit.seed,
                "rows": fit.rows,
            },
        }


def _gate_check(params: TrainParams, caller: str):
    """Resolve the gate's metric names now; check their fit to the labels just before fitting."""
    from mlops_provider.core import metrics as M

    metrics = [M.resolve(name, "gate_metrics", caller) for name in params.gate_metrics or []]

    def before_fit(spec) -> None:
        where = (
            f"{caller} (the label {spec.label!r} is {spec.kind}, {len(spec.classes)} classes)"
            if spec.kind != "regression"
            else caller
        )
        for metric in metrics:
            M.check_fit(metric, spec.kind, "gate_metrics", where)

    return before_fit


def _as_json(value: Any) -> Any:
    """``value`` if it survives a JSON round trip unchanged, else None (not recordable)."""
    import json

    try:
        back = json.loads(json.dumps(value))
    except (TypeError, ValueError):
        return None
    return back if back == value else None


def recipe_of(params: TrainParams, features: list[str]) -> dict[str, Any]:
    """What a version records to be trained again (``mlops models reproduce``): the parameters as
    given, with the feature columns resolved. ``model_params`` that JSON cannot hold exactly (an
    object, a dict with int keys) are recorded as None and listed in ``unrecorded``."""
    model_params = params.model_params
    recorded = _as_json(dict(model_params)) if model_params is not None else None
    return {
        "label_column": params.label_column,
        "estimator": params.estimator,
        "model_params": recorded,
        "features": list(features),
        "categorical": list(params.categorical) if params.categorical is not None else None,
        "seed": params.seed,
        "positive_label": _as_json(params.positive_label),
        "trusted_types": list(params.trusted_types or []),
        "unrecorded": ["model_params"] if model_params is not None and recorded is None else [],
    }


def train(
    params: TrainParams, *, dataset: Any, store, run: RunInfo, caller: str | None = None
) -> TrainResult:
    """Fit ``params.estimator`` on the snapshot ``dataset`` (its URI, or an extract result) and save
    the model to ``<run folder>/model.skops`` with ``train.json``; ``caller`` names the step in
    errors (default ``train``). Re-running for the same run overwrites the same files."""
    from mlops_provider.core.datasets import read_dataframe, read_manifest
    from mlops_provider.core.modeling import make_estimator, train_model
    from mlops_provider.core.serialization import dump_model

    caller = caller or TrainParams._step
    uri = dataset_uri(dataset, caller)
    model_params = dict(params.model_params) if params.model_params is not None else None
    make_estimator(params.estimator, model_params, params.seed, caller)  # fail fast, before any I/O
    before_fit = _gate_check(params, caller)
    snap = read_manifest(store, uri)
    df = read_dataframe(store, snap.uri)
    features = params.features
    if features is None:
        exclude = set(params.exclude or [])
        features = [c for c in df.columns if c != params.label_column and c not in exclude]
    model, fit = train_model(
        df,
        label=params.label_column,
        estimator=params.estimator,
        params=model_params,
        features=list(features),
        categorical=params.categorical,
        seed=params.seed,
        positive_label=params.positive_label,
        owner=caller,
        before_fit=before_fit,
    )
    data = dump_model(model, params.trusted_types or ())
    key = f"{run.folder}/model.skops"
    sha = store.write_bytes(key, data)
    result = TrainResult(fit, model, store.uri(key), sha, len(data), snap, recipe_of(params, list(features)))
    store.write_json(f"{run.folder}/train.json", result.to_dict())
    log.info(
        "Trained %s on %d rows in %.1fs; model %s (sha256 %s)",
        params.estimator,
        fit.rows,
        fit.train_seconds,
        result.model_uri,
        sha,
    )
    return result
