"""The core steps package as a notebook user meets it: cheap to import, one parameters dataclass
per step whose errors name the step."""

from __future__ import annotations

import subprocess
import sys

import pytest

from mlops_provider.core import steps
from mlops_provider.core.errors import InvalidParameterError
from mlops_provider.core.params import Params


def test_importing_the_steps_loads_no_heavy_library_and_no_airflow():
    code = (
        "import sys, mlops_provider.core.steps\n"
        "heavy = [m for m in ('pandas', 'numpy', 'sklearn', 'pyarrow', 'great_expectations', 'airflow')"
        " if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


PARAMS = sorted(
    (name for name in steps.__all__ if isinstance(getattr(steps, name), type) and name.endswith("Params")),
)


@pytest.mark.parametrize("name", PARAMS)
def test_each_params_class_names_its_step_in_errors(name):
    cls = getattr(steps, name)
    assert issubclass(cls, Params)
    step = cls._step
    assert callable(getattr(steps, step, None)), f"{name}._step = {step!r} is not a step of core.steps"
    with pytest.raises(InvalidParameterError, match=rf"parameter of {step} must be"):
        cls.build(None, **{f: object() for f in cls.constraints()})
