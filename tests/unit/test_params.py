"""Declarative parameter validation of the core steps (core/params.py)."""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, Literal

import pytest

from mlops_provider.core.errors import InvalidParameterError
from mlops_provider.core.params import Interval, Key, Name, Options, Params


@dataclasses.dataclass(frozen=True)
class _Demo(Params):
    _step: ClassVar[str] = "demo_step"
    _parameter_constraints: ClassVar[dict[str, Any]] = {
        "model_name": [Name()],
        "resamples": [Interval(int, 100, None)],
        "confidence": [Interval(float, 0, 1, closed="neither")],
        "output_key": [Key()],
    }

    model_name: str
    resamples: int = 1000
    confidence: float = 0.95
    on_fail: Literal["fail", "skip", "warn"] = "fail"
    thresholds: dict[str, float] | None = None
    output_key: str | None = None
    promote: bool = True


def _error(**kwargs) -> str:
    with pytest.raises(InvalidParameterError) as info:
        _Demo(**kwargs)
    return str(info.value)


def test_valid_parameters_are_kept_as_given():
    p = _Demo("churn", resamples=200, thresholds={"roc_auc": 0.7}, output_key="scores/june")
    assert p.to_dict()["resamples"] == 200 and p.thresholds == {"roc_auc": 0.7}


def test_range_error_names_parameter_range_and_value():
    assert _error(model_name="m", resamples=5) == (
        "The 'resamples' parameter of demo_step must be an int in the range [100, inf). Got 5 instead."
    )


def test_open_interval_excludes_its_bounds():
    assert "a float in the range (0, 1). Got 1.0 instead." in _error(model_name="m", confidence=1.0)
    assert "Got 0 instead." in _error(model_name="m", confidence=0)


def test_nan_is_not_in_any_range():
    assert "confidence" in _error(model_name="m", confidence=float("nan"))


def test_literal_choices_are_listed():
    msg = _error(model_name="m", on_fail="explode")
    assert "'on_fail'" in msg and "{'fail', 'skip', 'warn'}" in msg and "'explode'" in msg


def test_bool_is_not_an_int():
    assert "'resamples'" in _error(model_name="m", resamples=True)


def test_none_allowed_only_where_the_annotation_says_so():
    assert _Demo("m", thresholds=None, output_key=None).thresholds is None
    assert "must be a dict or None" in _error(model_name="m", thresholds=[0.7])
    assert "'model_name'" in _error(model_name=None)


def test_hostile_names_and_keys_are_refused():
    assert "'model_name'" in _error(model_name="../etc")
    msg = _error(model_name="m", output_key="../../outside")
    assert "'output_key'" in msg and "relative key inside the artifact root" in msg


def test_build_coerces_template_text_and_names_the_caller():
    p = _Demo.build(
        "TrainModelOperator (task 'train')",
        model_name="m",
        resamples="2000",
        confidence="0.9",
        thresholds='{"roc_auc": 0.7}',
        promote="false",
        output_key="None",
    )
    assert (p.resamples, p.confidence, p.thresholds, p.promote, p.output_key) == (
        2000,
        0.9,
        {"roc_auc": 0.7},
        False,
        None,
    )
    with pytest.raises(InvalidParameterError, match=r"of TrainModelOperator \(task 'train'\) must be an int"):
        _Demo.build("TrainModelOperator (task 'train')", model_name="m", resamples="many")


def test_build_leaves_unparseable_text_for_the_error():
    with pytest.raises(InvalidParameterError, match="Got '{not json' instead"):
        _Demo.build(None, model_name="m", thresholds="{not json")


def test_options_compare_type_as_well_as_value():
    assert not Options([1, 2]).is_satisfied_by(True)
    assert Options(["a"]).is_satisfied_by("a")


def test_parameters_are_frozen():
    p = _Demo("m")
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.resamples = 5  # type: ignore[misc]
