"""Typed form fields from scikit-learn's parameter constraints (core/param_forms.py): the shipped
file is what the installed scikit-learn gives, and each field admits exactly what the estimator's
own validation admits."""

from __future__ import annotations

import json
import math

import pytest

from mlops_provider.core import param_forms as P

jsonschema = pytest.importorskip("jsonschema")

ESTIMATORS = [
    "sklearn.ensemble.HistGradientBoostingClassifier",
    "sklearn.ensemble.RandomForestRegressor",
    "sklearn.linear_model.LogisticRegression",
]
# generic probes, plus each field's own enum values and the values next to its bounds (added below)
PROBES = [-1, 0, 1, 2, 3, 31, 255, 256, 10**6, -0.5, 0.3, 0.5, 0.999, 1.5, 2.5, 1e9,
          "auto", "sqrt", "log2", "balanced", "from_dtype", "ten", "", True, False, None]  # fmt: skip


def test_shipped_schemas_are_what_the_installed_scikit_learn_gives():
    """A scikit-learn upgrade that changes a constraint or a docstring fails here: run
    ``python scripts/estimator_schemas.py`` and review the diff."""
    shipped = P.SCHEMA_FILE.read_text(encoding="utf-8")
    assert shipped == P.dump(P.generate()), "stale estimator_schemas.json: run scripts/estimator_schemas.py"


def test_constraint_mapping_examples():
    from numbers import Integral, Real

    from sklearn.utils._param_validation import HasMethods, Interval, StrOptions

    one_up = Interval(Integral, 1, None, closed="left")
    assert P.constraint_schema(one_up) == {"type": "integer", "minimum": 1}
    assert P.constraint_schema(Interval(Real, 0, 1, closed="neither")) == {
        "type": "number",
        "exclusiveMinimum": 0,
        "exclusiveMaximum": 1,
    }
    assert P.constraint_schema(StrOptions({"b", "a"})) == {"enum": ["a", "b"]}
    assert P.constraint_schema("boolean") == {"type": "boolean"}
    assert P.constraint_schema(None) == {"type": "null"}
    for not_typable in ("random_state", "array-like", callable, HasMethods("fit"), dict):
        assert P.constraint_schema(not_typable) is None


def _probes(schema: dict) -> list:
    values = list(PROBES)
    for part in [schema, *schema.get("allOf", []), *schema.get("anyOf", [])]:
        values += part.get("enum", [])
        for key in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
            if key in part:
                b = part[key]
                values += [b, b - 1, b + 1, b - 0.25, b + 0.25]
    return values


def _sklearn_admits(path, name, value) -> bool:
    """The estimator's own ``_validate_params()``, on the value as check_config and train pass it
    (``make_estimator``: a whole number where only a non-integer float is allowed becomes that float,
    as JSON cannot tell 1 from 1.0)."""
    from mlops_provider.core.errors import InvalidParameterError
    from mlops_provider.core.modeling import make_estimator

    try:
        make_estimator(path, {name: value}, None)
    except InvalidParameterError:
        return False
    return True


@pytest.mark.parametrize("path", ESTIMATORS)
def test_each_field_admits_what_the_estimator_admits(path):
    """For every exposable parameter, jsonschema on the field and the estimator's own
    ``_validate_params()`` agree on every probe, but for two documented differences: a whole float
    (1.0) is an integer to JSON (a form cannot tell them apart), so it is not probed; and a bool
    in a numeric field is refused by the form though scikit-learn's Interval(Integral) takes it."""
    fields = P.estimator_schema(path)["params"]
    checked = 0
    for name, entry in fields.items():
        if "schema" not in entry:
            continue
        validator = jsonschema.Draft202012Validator(entry["schema"])
        for value in _probes(entry["schema"]):
            if isinstance(value, float) and (value.is_integer() or not math.isfinite(value)):
                continue
            form_ok = validator.is_valid(value)
            sk_ok = _sklearn_admits(path, name, value)
            if isinstance(value, bool) and not form_ok and sk_ok:
                assert "boolean" not in json.dumps(entry["schema"]), (name, value)
                continue
            assert form_ok == sk_ok, f"{path}.{name}={value!r}: form {form_ok}, scikit-learn {sk_ok}"
            checked += 1
    assert checked > 200


def test_fields_are_titled_and_described_from_the_docstring():
    hgb = P.load_schemas()["sklearn.ensemble.HistGradientBoostingClassifier"]
    assert hgb["max_iter"]["title"] == "Max iter"
    assert hgb["l2_regularization"]["title"] == "L2 regularization"
    assert hgb["max_iter"]["description"].startswith("The maximum number of iterations of the boosting")
    assert "Allowed: an int in the range [1, inf)." in hgb["max_iter"]["description"]
    assert hgb["early_stopping"]["schema"] == {"type": ["string", "boolean"], "enum": ["auto", True, False]}
    assert "not_exposable" in hgb["random_state"] and "not_exposable" in hgb["monotonic_cst"]
    # only the typable alternatives of class_weight: "balanced" or None (a dict cannot be typed)
    assert hgb["class_weight"]["schema"] == {"type": ["string", "null"], "enum": ["balanced", None]}


def test_metric_ranges_hold_for_scikit_learns_scores():
    """The threshold fields' bounds, against values scikit-learn computes on random predictions."""
    import numpy as np
    from sklearn import metrics

    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    p = rng.random(200)
    values = {
        "roc_auc": metrics.roc_auc_score(y, p),
        "f1": metrics.f1_score(y, p > 0.5),
        "accuracy": metrics.accuracy_score(y, p > 0.5),
        "log_loss": metrics.log_loss(y, p),
        "brier": metrics.brier_score_loss(y, p),
        "rmse": metrics.root_mean_squared_error(y * 10.0, p * 3),
        "r2": metrics.r2_score(y * 10.0, p * 3),
        "matthews_corrcoef": metrics.matthews_corrcoef(y, p > 0.5),
        "neg_log_loss": -metrics.log_loss(y, p),
    }
    for name, value in values.items():
        bounds = P.metric_range(name)
        assert bounds, name
        assert jsonschema.Draft202012Validator({"type": "number", **bounds}).is_valid(float(value)), name
    assert P.metric_range("roc_auc") == {"minimum": 0, "maximum": 1}
    assert P.metric_range("rmse") == {"minimum": 0}
    assert not P.higher_is_better("rmse") and P.higher_is_better("roc_auc")


def test_schemas_load_without_scikit_learn():
    import subprocess
    import sys

    code = (
        "import sys; from mlops_provider.core import param_forms as P; s = P.load_schemas(); "
        "print(len(s), 'sklearn' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == [str(len(P.COMMON_ESTIMATORS)), "False"]
