"""The pipeline as plain functions: one per step, each taking a validated parameters dataclass
(:class:`~mlops_provider.core.params.Params`) and returning a result with ``to_dict()``. The
operators are adapters around them; a notebook calls them directly (see the README).

Importing this package is cheap: each step imports pandas, scikit-learn or Great Expectations
when it runs.
"""

from __future__ import annotations

from mlops_provider.core.steps.register import RegisterParams, RegisterResult, register_and_promote
from mlops_provider.core.steps.run import RunInfo

__all__ = ["RegisterParams", "RegisterResult", "RunInfo", "register_and_promote"]
