"""Declarative parameter validation for the core steps, in scikit-learn's ``_parameter_constraints``
style.

A step's parameters are a frozen dataclass deriving from :class:`Params`. Each field's annotation
states its type (``Literal[...]`` for choices, ``X | None`` when None is allowed); the class's
``_parameter_constraints`` adds what a type cannot say (a range, the name rule, a key inside the
artifact root). One function, :func:`validate_parameter_constraints`, turns a violation into::

    The 'resamples' parameter of evaluate_challenger must be an int in the range [100, inf).
    Got 5 instead.

:meth:`Params.build` also coerces what Airflow templates render as text (``"0.01"``, ``"true"``,
``'{"roc_auc": 0.7}'``) to the annotated type before validating, so an operator passes its
templated fields through unchanged. Standard library only.
"""

from __future__ import annotations

import contextvars
import dataclasses
import json
import math
import numbers
import types
import typing
from collections.abc import Mapping
from typing import Any, ClassVar, Literal

from mlops_provider.core.errors import InvalidParameterError


# --------------------------------------------------------------------------- constraints
class Constraint:
    """One admissible kind of value; ``str(c)`` describes it ("an int in the range [1, inf)")."""

    def is_satisfied_by(self, value: Any) -> bool:  # pragma: no cover - abstract
        raise NotImplementedError

    def __str__(self) -> str:  # pragma: no cover - abstract
        raise NotImplementedError


class _NoneConstraint(Constraint):
    def is_satisfied_by(self, value: Any) -> bool:
        return value is None

    def __str__(self) -> str:
        return "None"


NONE = _NoneConstraint()


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


class Interval(Constraint):
    """A number of ``kind`` (``int`` or ``float``; a float interval admits ints) between ``left`` and
    ``right`` (None: unbounded), ``closed`` one of "both", "left", "right", "neither"."""

    def __init__(self, kind: type, left: float | None, right: float | None, *, closed: str = "both") -> None:
        if kind not in (int, float):
            raise TypeError("Interval kind must be int or float")
        if closed not in ("both", "left", "right", "neither"):
            raise ValueError(f"closed must be 'both', 'left', 'right' or 'neither', got {closed!r}")
        self.kind, self.left, self.right, self.closed = kind, left, right, closed

    def is_satisfied_by(self, value: Any) -> bool:
        if not (_is_int(value) if self.kind is int else _is_real(value)):
            return False
        if isinstance(value, float) and math.isnan(value):
            return False
        if self.left is not None:
            if value < self.left or (value == self.left and self.closed in ("right", "neither")):
                return False
        if self.right is not None:
            if value > self.right or (value == self.right and self.closed in ("left", "neither")):
                return False
        return True

    def __str__(self) -> str:
        kind = "an int" if self.kind is int else "a float"
        lb = "[" if self.closed in ("both", "left") and self.left is not None else "("
        rb = "]" if self.closed in ("both", "right") and self.right is not None else ")"
        left = "-inf" if self.left is None else f"{self.left}"
        right = "inf" if self.right is None else f"{self.right}"
        return f"{kind} in the range {lb}{left}, {right}{rb}"


class Options(Constraint):
    """One of a fixed set of values (a ``Literal`` annotation)."""

    def __init__(self, values: typing.Iterable[Any]) -> None:
        self.values = tuple(values)

    def is_satisfied_by(self, value: Any) -> bool:
        return any(value == v and type(value) is type(v) for v in self.values)

    def __str__(self) -> str:
        shown = ", ".join(repr(v) for v in self.values)
        return (
            f"a str among {{{shown}}}"
            if all(isinstance(v, str) for v in self.values)
            else f"one of {{{shown}}}"
        )


class InstanceOf(Constraint):
    """An instance of ``kind`` (bool is not an int here)."""

    _NAMES: ClassVar[dict[type, str]] = {
        str: "a str",
        int: "an int",
        float: "a float",
        bool: "a bool",
        dict: "a dict",
        list: "a list",
    }

    def __init__(self, kind: type, description: str | None = None) -> None:
        self.kind, self.description = kind, description

    def is_satisfied_by(self, value: Any) -> bool:
        if self.kind is int:
            return _is_int(value)
        if self.kind is float:
            return _is_real(value)
        if self.kind is dict:
            return isinstance(value, Mapping)
        if self.kind is list:
            return isinstance(value, (list, tuple))
        return isinstance(value, self.kind)

    def __str__(self) -> str:
        return self.description or self._NAMES.get(self.kind, f"an instance of {self.kind.__name__!r}")


class Name(Constraint):
    """A model, alias or dataset name (:data:`mlops_provider.core.names.NAME_RULE`)."""

    def is_satisfied_by(self, value: Any) -> bool:
        from mlops_provider.core.names import is_name

        return is_name(value)

    def __str__(self) -> str:
        from mlops_provider.core.names import NAME_RULE

        return NAME_RULE


class Key(Constraint):
    """A relative artifact key inside the root (no ``..``, no absolute path, no scheme)."""

    def is_satisfied_by(self, value: Any) -> bool:
        from mlops_provider.core.errors import InvalidInputError
        from mlops_provider.core.names import check_key

        try:
            check_key(value, "key")
        except InvalidInputError:
            return False
        return True

    def __str__(self) -> str:
        return "a relative key inside the artifact root ('/'-separated names, no '..')"


class NonEmptyStr(Constraint):
    def is_satisfied_by(self, value: Any) -> bool:
        return isinstance(value, str) and bool(value.strip())

    def __str__(self) -> str:
        return "a non-empty str"


class Text(NonEmptyStr):
    """A non-empty str, described as the parameter needs it ("a file, folder or glob URI")."""

    def __init__(self, description: str) -> None:
        self.description = description

    def __str__(self) -> str:
        return self.description


def _join(constraints: list[Constraint]) -> str:
    texts = [str(c) for c in constraints if c is not NONE]
    if any(c is NONE for c in constraints):
        texts.append("None")
    if len(texts) == 1:
        return texts[0]
    return ", ".join(texts[:-1]) + " or " + texts[-1]


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 200 else text[:199] + "\u2026"


def validate_parameter_constraints(
    constraints: Mapping[str, list[Constraint]], params: Mapping[str, Any], caller: str
) -> None:
    """Raise :class:`InvalidParameterError` for the first parameter no constraint admits."""
    for name, admissible in constraints.items():
        if name not in params:
            continue
        value = params[name]
        if any(c.is_satisfied_by(value) for c in admissible):
            continue
        raise InvalidParameterError(
            f"The {name!r} parameter of {caller} must be {_join(admissible)}. Got {_shown(value)} instead."
        )


def parameter_error(name: str, expected: str, got: Any, caller: str) -> InvalidParameterError:
    """The one parameter error format, for checks a constraint cannot state (several parameters
    together): ``The 'x' parameter of <caller> must be ... Got ... instead.``"""
    return InvalidParameterError(
        f"The {name!r} parameter of {caller} must be {expected}. Got {got!r} instead."
    )


def dataset_uri(value: Any, caller: str, parameter: str = "dataset") -> str:
    """The URI of a dataset given as a URI, an upstream result (a dict with ``uri``), an extract
    step's result or a :class:`~mlops_provider.core.datasets.DatasetSnapshot`."""
    if isinstance(value, Mapping):
        value = value.get("uri")
    elif not isinstance(value, str):
        value = getattr(value, "uri", value)
    if isinstance(value, str) and value.strip():
        return value.strip()
    raise parameter_error(parameter, "a URI or an upstream result with a 'uri' key", value, caller)


# --------------------------------------------------------------------------- annotations
def _constraints_of(annotation: Any) -> list[Constraint]:
    """The constraints an annotation states (an unknown annotation states none)."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        out: list[Constraint] = []
        for arg in typing.get_args(annotation):
            out += [NONE] if arg is type(None) else _constraints_of(arg)
        return out
    if origin is Literal:
        return [Options(typing.get_args(annotation))]
    if annotation is Any:
        return []
    base = origin or annotation
    if base in (dict, Mapping) or (isinstance(base, type) and issubclass(base, Mapping)):
        return [InstanceOf(dict)]
    if base in (list, tuple, typing.Sequence):
        return [InstanceOf(list)]
    if base in (str, int, float, bool):
        return [InstanceOf(base)]
    return []


def _coerce(value: Any, annotation: Any) -> Any:
    """Text a template rendered -> the annotated type, when it parses as one; else unchanged."""
    if not isinstance(value, str):
        return value
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation) if origin in (typing.Union, types.UnionType) else (annotation,)
    text = value.strip()
    for arg in args:
        base = typing.get_origin(arg) or arg
        if arg is type(None) and text in ("", "None", "null"):
            return None
        if base is bool and text.lower() in ("true", "false"):
            return text.lower() == "true"
        if base is int:
            try:
                return int(text)
            except ValueError:
                pass
        if base is float:
            try:
                return float(text)
            except ValueError:
                pass
        if base in (dict, list, Mapping, typing.Sequence) and text[:1] in "{[":
            try:
                return json.loads(text)
            except ValueError:
                pass
    return value


_caller: contextvars.ContextVar[str | None] = contextvars.ContextVar("mlops_params_caller", default=None)


@dataclasses.dataclass(frozen=True)
class Params:
    """Base of the steps' parameter dataclasses, validated when constructed (see the module docstring).

    Subclasses set ``_step`` (the step function's name, used in errors) and may add
    ``_parameter_constraints``."""

    #: extra constraints by field name; they replace what the annotation states (None stays allowed
    #: if the annotation allows it)
    _parameter_constraints: ClassVar[dict[str, list[Constraint]]] = {}
    #: the name errors use when the parameters are built directly (a notebook)
    _step: ClassVar[str] = ""

    def __post_init__(self) -> None:
        self.validate(_caller.get() or self._step or type(self).__name__)

    @classmethod
    def constraints(cls) -> dict[str, list[Constraint]]:
        hints = typing.get_type_hints(cls)
        out = {}
        for f in dataclasses.fields(cls):
            stated = _constraints_of(hints[f.name])
            extra = cls._parameter_constraints.get(f.name)
            if extra:
                stated = [*extra, NONE] if NONE in stated and NONE not in extra else list(extra)
            if stated:
                out[f.name] = stated
        return out

    def validate(self, caller: str) -> None:
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        validate_parameter_constraints(self.constraints(), values, caller)

    @classmethod
    def build(cls, caller: str | None = None, **values: Any):
        """Coerce template-rendered text to the annotated types, then construct (and so validate);
        errors name ``caller`` (e.g. ``"TrainModelOperator (task 'train')"``)."""
        hints = typing.get_type_hints(cls)
        coerced = {k: _coerce(v, hints[k]) if k in hints else v for k, v in values.items()}
        token = _caller.set(caller)
        try:
            return cls(**coerced)
        finally:
            _caller.reset(token)

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
