"""The retraining templates' Params form: one typed field per exposed hyperparameter and per gate metric.

:func:`retrain_params` builds the ``params={...}`` of a retraining DAG from its config block:

* one field per entry of ``HYPERPARAMETERS``, typed, titled and described from the estimator's own
  ``_parameter_constraints`` and docstring (:mod:`mlops_provider.core.param_forms`, read from the
  shipped ``estimator_schemas.json``: nothing imports scikit-learn while the DAG file is parsed);
* one number field per gate metric of ``THRESHOLDS`` (``min_roc_auc`` in [0, 1], ``max_rmse`` >= 0),
  named after what the threshold is: a floor for a higher-is-better metric, a ceiling for an error;
* the run's settings: ``train_months`` (a range refused, not clamped), ``seed``, ``compare_metric``,
  ``promote_if``, ``min_improvement``, ``positive_label``.

A config entry that cannot be a field (an unknown parameter, ``random_state``, an array, a callable,
a value the estimator does not admit) fails the parse with an error naming it. Airflow validates
every Param against its JSON schema when a run is created (the trigger form and ``POST
/api/v2/dags/{dag_id}/dagRuns`` alike: ``SerializedDAG.create_dagrun`` -> ``params.validate()``, a 400
naming the Param), so ``max_iter="ten"`` or ``max_iter=0`` never reaches a worker; the
``check_config`` task validates the assembled ``model_params`` with scikit-learn again.

:func:`form_values` gives :func:`mlops_provider.chains.retrain_chain` the Jinja expressions that
gather the fields back into ``model_params`` and ``thresholds``.
"""

from __future__ import annotations

import difflib
import logging
from typing import Any

from airflow.sdk import Param

from mlops_provider.core import param_forms as forms
from mlops_provider.core.errors import InvalidParameterError

log = logging.getLogger(__name__)

HYPERPARAMETER_KEY = "x-mlops-hyperparameter"  # schema keyword marking a field: the parameter's name
THRESHOLD_KEY = "x-mlops-threshold"  # the gate metric's name
TRAIN_MONTHS_RANGE = (1, 24)
_WHERE = "the configuration block"


def _short(path: str) -> str:
    return path.rpartition(".")[2]


def _check_default(key: str, value: Any, schema: dict[str, Any], what: str) -> None:
    from jsonschema import Draft202012Validator

    error = next(iter(Draft202012Validator(schema).iter_errors(value)), None)
    if error is not None:
        raise InvalidParameterError(
            f"{what} = {value!r} in {_WHERE} is refused by its form field: {error.message}."
        )


def hyperparameter_fields(estimator: str, hyperparameters: dict[str, Any]) -> dict[str, Param]:
    """One Param per entry of ``hyperparameters`` (its value the default), typed from the estimator."""
    if not isinstance(hyperparameters, dict):
        raise InvalidParameterError(
            f"HYPERPARAMETERS in {_WHERE} must be a dict of {_short(estimator)} parameter -> default value. "
            f"Got {hyperparameters!r} instead."
        )
    known = forms.load_schemas().get(estimator)
    if known is None and hyperparameters:
        log.info(
            "No typed form fields are shipped for %s: its HYPERPARAMETERS fields are typed after their "
            "values and checked by scikit-learn in check_config (scripts/estimator_schemas.py "
            "--estimator %s --output FILE, then MLOPS_ESTIMATOR_SCHEMAS=FILE, types them).",
            estimator,
            estimator,
        )
    section = f"{_short(estimator)} parameters"
    out: dict[str, Param] = {}
    for name, value in hyperparameters.items():
        what = f"HYPERPARAMETERS[{name!r}]"
        if known is not None and name not in known:
            close = difflib.get_close_matches(str(name), list(known), n=3)
            hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
            raise InvalidParameterError(
                f"{what} in {_WHERE} is not a parameter of {estimator}.{hint} "
                f"Its parameters: {sorted(known)}."
            )
        if name in forms.RESERVED:
            raise InvalidParameterError(f"{what} in {_WHERE} cannot be a form field: {forms.RESERVED[name]}.")
        entry = known.get(name) if known is not None else None
        if entry is not None and "not_exposable" in entry:
            raise InvalidParameterError(
                f"{what} in {_WHERE} cannot be a form field of {_short(estimator)}: "
                f"{entry['not_exposable']}. "
                "Remove it from HYPERPARAMETERS (the estimator's default is used)."
            )
        if entry is None:
            schema = forms.untyped_field(value)
            if not schema:
                raise InvalidParameterError(
                    f"{what} = {value!r} in {_WHERE} cannot be a form field: a form takes a number, a str, "
                    "a bool or None."
                )
            title = forms.humanise(name)
            description = f"Parameter {name} of {estimator} (checked when the run starts)."
        else:
            schema, title, description = entry["schema"], entry["title"], entry["description"]
        _check_default(name, value, schema, what)
        out[name] = Param(value, description=description, title=title, section=section,
                          **{HYPERPARAMETER_KEY: name}, **schema)  # fmt: skip
    return out


def threshold_fields(thresholds: dict[str, Any]) -> dict[str, Param]:
    """One number Param per gate metric: ``min_<metric>`` (higher is better) or ``max_<metric>``."""
    if not isinstance(thresholds, dict):
        raise InvalidParameterError(
            f"THRESHOLDS in {_WHERE} must be a dict of metric -> number. Got {thresholds!r} instead."
        )
    out: dict[str, Param] = {}
    for metric, spec in thresholds.items():
        higher = forms.higher_is_better(metric)
        bound = "min" if higher else "max"
        value = spec
        if isinstance(spec, dict):
            if set(spec) != {bound}:
                raise InvalidParameterError(
                    f"THRESHOLDS[{metric!r}] = {spec!r} in {_WHERE}: {'higher' if higher else 'lower'} "
                    f"{metric} is better, so its threshold is a {'floor' if higher else 'ceiling'}: use "
                    f"{{{bound!r}: x}} or a plain number."
                )
            value = spec[bound]
        bounds = forms.metric_range(metric)
        schema: dict[str, Any] = {"type": "number", **({"allOf": [bounds]} if bounds else {})}
        key = f"{bound}_{metric}"
        _check_default(key, value, schema, f"THRESHOLDS[{metric!r}]")
        out[key] = Param(
            value,
            title=f"{'Minimum' if higher else 'Maximum'} {metric}",
            description=(
                f"Model gate: the challenger's {metric} on the evaluation data must be "
                f"{'at least' if higher else 'at most'} this ({forms.describe_range(bounds)}; "
                f"{'higher' if higher else 'lower'} is better)."
            ),
            section="Model gate",
            **{THRESHOLD_KEY: metric},
            **schema,
        )
    return out


def retrain_params(
    estimator: str,
    hyperparameters: dict[str, Any],
    thresholds: dict[str, Any],
    *,
    train_months: int | None = None,
    compare_metric: str | None = None,
    promote_if: str = "better",
    min_improvement: float = 0.0,
    positive_label: Any = None,
    seed: int = 42,
) -> dict[str, Param]:
    """The Params of a retraining DAG (see the module docstring); ``train_months=None``: no field."""
    out: dict[str, Param] = {}
    if train_months is not None:
        lo, hi = TRAIN_MONTHS_RANGE
        schema = {"type": "integer", "allOf": [{"minimum": lo, "maximum": hi}]}
        _check_default("train_months", train_months, schema, "TRAIN_MONTHS")
        out["train_months"] = Param(
            train_months, title="Training window (months)",
            description=f"Months of history before the evaluated month to train on: an int in [{lo}, {hi}].",
            **schema)  # fmt: skip
    out["seed"] = Param(
        seed, type="integer", allOf=[{"minimum": 0, "maximum": 2**32 - 1}], title="Random seed",
        description="The estimator's random_state (when it has one) and the evaluation's resampling seed: "
        "the same seed and data give the same model file. An int in [0, 2**32 - 1].")  # fmt: skip
    out["positive_label"] = Param(
        positive_label, type=["null", "string", "integer", "boolean"], title="Positive label",
        description="The class of a binary label that precision, recall, F1 and ROC AUC are about; "
        "empty for multiclass or regression.")  # fmt: skip
    hyper, gates = hyperparameter_fields(estimator, hyperparameters), threshold_fields(thresholds)
    fields = {**hyper, **gates}
    out["compare_metric"] = Param(
        compare_metric, type=["null", "string"], title="Compare metric", section="Model gate",
        description="The metric compared with the champion's on the same evaluation data (a scikit-learn "
        "scorer name or alias); empty: roc_auc (binary), log_loss (multiclass), rmse (regression)."
    )  # fmt: skip
    out["promote_if"] = Param(
        promote_if, enum=["better", "significantly_better"], title="Promote if", section="Model gate",
        description="better: the challenger beats the champion by more than the minimum improvement; "
        "significantly_better: the 95% interval of its gain lies above it.")  # fmt: skip
    out["min_improvement"] = Param(
        min_improvement, type="number", allOf=[{"minimum": 0}], title="Minimum improvement",
        section="Model gate",
        description="How much the challenger must beat the champion by on the compare metric, in the "
        "metric's units (ties never promote): a number >= 0.")  # fmt: skip
    clash = sorted((set(fields) & set(out)) | (set(hyper) & set(gates)))
    if clash:
        raise InvalidParameterError(
            f"HYPERPARAMETERS or THRESHOLDS in {_WHERE} name {clash}, which the form uses for its own fields."
        )
    return {**out, **fields}


def form_values(params: Any) -> tuple[str | None, str | None]:
    """Jinja expressions rendering the ``model_params`` and ``thresholds`` dicts from the fields
    :func:`retrain_params` made (None when ``params`` has none of that kind)."""

    def gather(marker: str) -> str | None:
        pairs = []
        for key in params:
            schema = getattr(params.get_param(key), "schema", None) or {}
            if marker in schema:
                pairs.append(f"{schema[marker]!r}: params[{key!r}]")
        return "{{ {" + ", ".join(pairs) + "} | tojson }}" if pairs else None

    return gather(HYPERPARAMETER_KEY), gather(THRESHOLD_KEY)
