"""Typed form fields from an estimator's own parameter constraints.

scikit-learn states what each parameter of an estimator admits in ``_parameter_constraints``
(``Interval(Integral, 1, None, closed="left")``, ``StrOptions({"auto"})``, ``"boolean"``, ``None``...).
:func:`estimator_schema` turns that table into one JSON-schema field per parameter, with a title
(the name, humanised) and a description (the first sentence of the parameter's entry in the
estimator's numpydoc docstring, then what it admits, in scikit-learn's words). The DAG templates
build their Params form from it (:mod:`mlops_provider.forms`), so an out-of-range or mistyped value
is refused when the run is triggered, not when the model trains.

Parsing a DAG file must not import scikit-learn, so the schemas of the common estimators are
generated once and shipped in ``estimator_schemas.json`` next to this module
(``python scripts/estimator_schemas.py`` rewrites it; a test checks it against the installed
scikit-learn). :func:`load_schemas` reads that file, plus the file named by
``MLOPS_ESTIMATOR_SCHEMAS`` if set (``scripts/estimator_schemas.py --estimator my.Model --output
path`` writes one for any other estimator). For an estimator in neither, the form types each field
after its configured value (:func:`untyped_field`) and the ``check_config`` task validates the
values with scikit-learn when the run starts.

Mapping (a field admits a value if any of its parameter's constraints does)::

    Interval(Integral, 1, None, closed="left")   {"type": "integer", "minimum": 1}
    Interval(Real, 0, 1, closed="neither")       {"type": "number", "exclusiveMinimum": 0,
                                                  "exclusiveMaximum": 1}
    StrOptions({"a", "b"}) / Options             {"enum": ["a", "b"]}   (deprecated options left out)
    "boolean"                                    {"type": "boolean"}
    None                                         {"type": "null"}
    str / Integral / Real / bool                 {"type": "string" | "integer" | "number" | "boolean"}
    "verbose"                                    an int >= 0 or a boolean
    "random_state", callables, "array-like", sparse matrices, HasMethods, dict, list, classes,
    cross-validation objects, missing-value markers: not typable in a form (the parameter cannot
    be exposed, or only its other alternatives are offered: ``class_weight`` -> "balanced" or None)

Standard library only at import; scikit-learn is imported only to generate schemas.
"""

from __future__ import annotations

import functools
import json
import math
import os
import re
from pathlib import Path
from typing import Any

SCHEMA_FILE = Path(__file__).with_name("estimator_schemas.json")
ENV_EXTRA = "MLOPS_ESTIMATOR_SCHEMAS"
#: the estimators whose schemas are shipped
COMMON_ESTIMATORS = (
    "sklearn.ensemble.HistGradientBoostingClassifier",
    "sklearn.ensemble.HistGradientBoostingRegressor",
    "sklearn.ensemble.RandomForestClassifier",
    "sklearn.ensemble.RandomForestRegressor",
    "sklearn.ensemble.ExtraTreesClassifier",
    "sklearn.ensemble.ExtraTreesRegressor",
    "sklearn.ensemble.GradientBoostingClassifier",
    "sklearn.ensemble.GradientBoostingRegressor",
    "sklearn.linear_model.LogisticRegression",
    "sklearn.linear_model.Ridge",
    "sklearn.linear_model.RidgeClassifier",
    "sklearn.linear_model.ElasticNet",
    "sklearn.linear_model.Lasso",
    "sklearn.tree.DecisionTreeClassifier",
    "sklearn.tree.DecisionTreeRegressor",
    "sklearn.neighbors.KNeighborsClassifier",
    "sklearn.neighbors.KNeighborsRegressor",
)
#: parameters the templates set themselves
RESERVED = {"random_state": "the 'seed' Param sets random_state"}
_ACRONYMS = {"l1": "L1", "l2": "L2", "c": "C", "cst": "constraints", "oob": "OOB", "ccp": "CCP"}


def humanise(name: str) -> str:
    """``max_leaf_nodes`` -> ``Max leaf nodes``; ``l2_regularization`` -> ``L2 regularization``."""
    words = [_ACRONYMS.get(w, w) for w in name.split("_") if w]
    if not words:
        return name
    first = words[0]
    return " ".join([first[:1].upper() + first[1:], *words[1:]])


# --------------------------------------------------------------------------- constraints -> schema
def _number(value: Any) -> Any:
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _interval_schema(c: Any) -> dict[str, Any]:
    from numbers import Integral

    out: dict[str, Any] = {"type": "integer" if c.type is Integral else "number"}
    if c.left is not None and math.isfinite(c.left):
        key = "minimum" if c.closed in ("left", "both") else "exclusiveMinimum"
        out[key] = _number(c.left)
    if c.right is not None and math.isfinite(c.right):
        key = "maximum" if c.closed in ("right", "both") else "exclusiveMaximum"
        out[key] = _number(c.right)
    return out


def _jsonable(value: Any) -> bool:
    if isinstance(value, float) and not math.isfinite(value):
        return False
    return value is None or isinstance(value, (str, bool, int, float))


def constraint_schema(constraint: Any) -> dict[str, Any] | None:
    """The JSON-schema fragment of one scikit-learn constraint, or None if a form cannot type it."""
    from numbers import Integral, Real

    from sklearn.utils import _param_validation as pv

    if isinstance(constraint, pv.Hidden):
        return None
    c = pv.make_constraint(constraint)
    if isinstance(c, pv.Interval):
        return _interval_schema(c)
    if isinstance(c, pv.Options):
        values = sorted(
            (v for v in c.options if v not in c.deprecated and _jsonable(v)), key=lambda v: (str(type(v)), v)
        )
        return {"enum": values} if values else None
    if isinstance(c, pv._NoneConstraint):
        return {"type": "null"}
    if isinstance(c, pv._Booleans):
        return {"type": "boolean"}
    if isinstance(c, pv._VerboseHelper):
        return {"anyOf": [{"type": "integer", "minimum": 0}, {"type": "boolean"}]}
    if isinstance(c, pv._InstancesOf):
        kinds = {str: "string", bool: "boolean", int: "integer", Integral: "integer"}
        kinds.update({float: "number", Real: "number"})
        return {"type": kinds[c.type]} if c.type in kinds else None
    return None


def describe_constraint(constraint: Any) -> str:
    """What one constraint admits, in words (deterministic: options sorted); '' for a hidden one."""
    from sklearn.utils import _param_validation as pv

    if isinstance(constraint, pv.Hidden):
        return ""
    c = pv.make_constraint(constraint)
    if isinstance(c, pv.Options):
        shown = sorted((v for v in c.options if v not in c.deprecated), key=lambda v: (str(type(v)), str(v)))
        return f"one of {{{', '.join(map(repr, shown))}}}"
    if isinstance(c, pv._Booleans):
        return "a bool"
    if isinstance(c, pv._VerboseHelper):
        return "an int >= 0 or a bool"
    return str(c)


def _alternatives(fragments: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for f in fragments:
        out += f["anyOf"] if set(f) == {"anyOf"} else [f]
    return out


def _types_of(values: list[Any]) -> list[str]:
    names = {str: "string", bool: "boolean", int: "integer", float: "number", type(None): "null"}
    order = ["string", "integer", "number", "boolean", "null"]
    return sorted({names[type(v)] for v in values}, key=order.index)


def form_schema(fragments: list[dict[str, Any]]) -> dict[str, Any]:
    """One form field admitting what any fragment admits, shaped for Airflow's trigger form.

    Airflow's form picks a widget from the top-level ``type`` (a number input, a drop-down for an
    ``enum``, a checkbox, a free-text box for several types) and its number input clamps an entry to
    a top-level ``minimum``/``maximum`` on blur, silently. So the bounds go under ``allOf``: the form
    does not clamp, and the trigger refuses an out-of-range value with the reason (JSON-schema
    validation of every Param when the run is created: the UI and REST API alike)."""
    alts = _alternatives(fragments)
    choices: list[Any] = []
    typed: list[dict[str, Any]] = []
    for a in alts:
        if "enum" in a:
            choices += a["enum"]
        elif a == {"type": "boolean"}:
            choices += [True, False]
        elif a == {"type": "null"}:
            choices.append(None)
        else:
            typed.append(a)
    choices = list({(type(v), v): v for v in choices}.values())
    if not typed:
        if set(map(type, choices)) == {bool} and len(choices) == 2:
            return {"type": "boolean"}
        return {"type": _types_of(choices), "enum": choices}
    nullable = None in choices
    others = [v for v in choices if v is not None]
    if len(typed) == 1 and not others:
        frag = typed[0]
        bounds = {k: v for k, v in frag.items() if k != "type"}
        out: dict[str, Any] = {"type": [frag["type"], "null"] if nullable else frag["type"]}
        if bounds:
            out["allOf"] = [bounds]
        return out
    types = [*dict.fromkeys([*(t["type"] for t in typed), *_types_of(others)])]
    any_of = [*typed, *([{"enum": others}] if others else []), *([{"type": "null"}] if nullable else [])]
    return {"type": [*types, "null"] if nullable else types, "anyOf": any_of}


# --------------------------------------------------------------------------- docstrings
_SECTION = re.compile(r"^Parameters\n-{3,}\n(.*?)(?:\n\n[A-Z][A-Za-z ]+\n-{3,}\n|\Z)", re.S | re.M)


def parameter_docs(doc: str | None) -> dict[str, str]:
    """First sentence of each parameter's entry in a numpydoc ``Parameters`` section."""
    import inspect

    text = inspect.cleandoc(doc or "")
    m = _SECTION.search(text)
    if not m:
        return {}
    out: dict[str, str] = {}
    name, lines = None, []  # type: ignore[var-annotated]

    def flush() -> None:
        if name:
            para: list[str] = []
            start = next((i for i, line in enumerate(lines) if line), len(lines))
            for line in lines[start:]:  # the first paragraph, up to a bullet list or a directive
                if not line or line.startswith(("- ", "* ", ".. ")):
                    break
                para.append(line)
            body = " ".join(" ".join(para).split())
            sentence = re.split(r"(?<=[a-z0-9)\]`'\"*])\.\s+(?=[A-Z(`])", body, maxsplit=1)[0].strip()
            sentence = sentence.rstrip(":;, ")
            out[name] = sentence if sentence.endswith(".") or not sentence else sentence + "."

    for line in m.group(1).splitlines():
        if line and not line[0].isspace():
            flush()
            name, lines = line.split(":")[0].strip(), []
        else:
            lines.append(line.strip())
    flush()
    return out


# --------------------------------------------------------------------------- estimators
def _import(path: str) -> type:
    import importlib

    module, _, name = path.rpartition(".")
    return getattr(importlib.import_module(module), name)


def estimator_schema(path: str) -> dict[str, Any]:
    """``{"estimator", "params": {name: {"title", "description", "schema"} or {"not_exposable"}}}``
    for the estimator class at ``path``, from its ``_parameter_constraints`` and docstring."""
    cls = _import(path)
    constraints = getattr(cls, "_parameter_constraints", None)
    if not isinstance(constraints, dict):
        raise ValueError(f"{path} declares no _parameter_constraints; its form fields cannot be typed.")
    docs = parameter_docs(cls.__doc__)
    params: dict[str, Any] = {}
    for name in sorted(cls().get_params(deep=False)):
        admissible = constraints.get(name)
        if admissible is None:
            params[name] = {"not_exposable": "it declares no constraint"}
            continue
        shown = [t for t in (describe_constraint(c) for c in admissible) if t]
        allowed = (", ".join(shown[:-1]) + " or " + shown[-1]) if len(shown) > 1 else "".join(shown)
        fragments = [f for f in (constraint_schema(c) for c in admissible) if f is not None]
        if name in RESERVED:
            params[name] = {"not_exposable": RESERVED[name]}
        elif not [f for f in fragments if f != {"type": "null"}]:
            params[name] = {"not_exposable": f"it takes {allowed}, which a form cannot type"}
        else:
            params[name] = {
                "title": humanise(name),
                "description": " ".join(filter(None, [docs.get(name, ""), f"Allowed: {allowed}."])),
                "schema": form_schema(fragments),
            }
    return {"estimator": path, "params": params}


def generate(paths: tuple[str, ...] | list[str] = COMMON_ESTIMATORS) -> dict[str, Any]:
    """The content of ``estimator_schemas.json`` for ``paths`` and the installed scikit-learn."""
    import sklearn

    return {
        "generated_by": "python scripts/estimator_schemas.py",
        "sklearn_version": sklearn.__version__,
        "estimators": {p: estimator_schema(p)["params"] for p in paths},
    }


def dump(content: dict[str, Any]) -> str:
    return json.dumps(content, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


@functools.lru_cache(maxsize=4)
def _read(path: str, mtime: float) -> dict[str, Any]:
    with open(path, encoding="utf-8") as f:
        return json.load(f).get("estimators", {})


def load_schemas() -> dict[str, Any]:
    """The shipped schemas, updated with those of the file named by ``MLOPS_ESTIMATOR_SCHEMAS``."""
    out = dict(_read(str(SCHEMA_FILE), SCHEMA_FILE.stat().st_mtime))
    extra = os.environ.get(ENV_EXTRA)
    if extra:
        out.update(_read(extra, os.stat(extra).st_mtime))
    return out


def untyped_field(value: Any) -> dict[str, Any]:
    """A field typed after a configured value (for an estimator without a shipped schema)."""
    if isinstance(value, bool):
        return {"type": "boolean"}
    if isinstance(value, (int, float)):
        return {"type": "number"}
    if isinstance(value, str):
        return {"type": "string"}
    if value is None:
        return {"type": ["string", "number", "null"]}
    return {}


# --------------------------------------------------------------------------- gate metrics
_UNIT = ("accuracy", "balanced_accuracy", "top_k_accuracy", "average_precision", "brier")
_UNIT_PREFIXES = ("roc_auc", "f1", "precision", "recall", "jaccard")


def metric_range(name: str) -> dict[str, Any]:
    """The values metric ``name`` (a scikit-learn scorer name or one of the error aliases of
    :mod:`mlops_provider.core.metrics`) can take, as JSON-schema bounds ({} when unknown)."""
    from mlops_provider.core.metrics import ALIASES

    if name in _UNIT or name.startswith(_UNIT_PREFIXES):
        return {"minimum": 0, "maximum": 1}
    if name in ALIASES:
        return {"minimum": 0}
    if name.startswith("neg_") or name == "max_error":
        return {"maximum": 0}
    if name == "matthews_corrcoef":
        return {"minimum": -1, "maximum": 1}
    if name in ("r2", "explained_variance") or name.startswith("d2_"):
        return {"maximum": 1}
    return {}


def higher_is_better(name: str) -> bool:
    """Every scikit-learn scorer is greater-is-better; the error aliases are not."""
    from mlops_provider.core.metrics import ALIASES

    return name not in ALIASES


def describe_range(bounds: dict[str, Any]) -> str:
    lo, hi = bounds.get("minimum"), bounds.get("maximum")
    if lo is not None and hi is not None:
        return f"a number in [{lo}, {hi}]"
    if lo is not None:
        return f"a number >= {lo}"
    if hi is not None:
        return f"a number <= {hi}"
    return "a number"
