"""ReproduceModelOperator: train a registered version again from its lineage; fail unless it comes out
the same (an identical model, or every recorded metric within the tolerance)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from mlops_provider.operators._base import MlopsBaseOperator

if TYPE_CHECKING:
    from airflow.sdk import Context


class ReproduceModelOperator(MlopsBaseOperator):
    """Rebuild version ``version`` of ``model_name`` from what it recorded and compare
    (:func:`mlops_provider.core.steps.reproduce.reproduce`).

    :param model_name: registry name.
    :param version: the version to rebuild (a number).
    :param tolerance: the largest relative metric difference still called the same (default 0.01).
    :param scratch: a folder under the artifact root's ``runs/`` to train into (default: a temporary
        folder on the worker).
    :param keep: keep the scratch files (the reproduced model and the comparison).
    :param trusted_types: extra types the model may hold.

    A snapshot whose bytes changed, or a version that differs beyond the tolerance, fails the task
    (no retry); the comparison is in XCom first.
    :return: ``{"recorded", "reproduced", "identical", "reproducible", "differences", ...}``.
    """

    template_fields: Sequence[str] = ("model_name", "version", "tolerance", "scratch", "artifact_root")
    ui_color = "#e6f2e6"

    def __init__(
        self,
        *,
        model_name: str,
        version: Any,
        tolerance: Any = 0.01,
        scratch: str | None = None,
        keep: bool = False,
        trusted_types: list[str] | None = None,
        artifact_root: str | None = None,
        **kwargs: Any,
    ):
        super().__init__(artifact_root=artifact_root, **kwargs)
        self.model_name = model_name
        self.version = version
        self.tolerance = tolerance
        self.scratch = scratch
        self.keep = keep
        self.trusted_types = trusted_types

    def execute_step(self, context: Context) -> dict[str, Any]:
        from mlops_provider.core.steps.reproduce import NotReproducibleError, ReproduceParams, reproduce

        params = self.params_for(
            ReproduceParams,
            model_name=self.model_name,
            version=self.version,
            tolerance=self.tolerance,
            scratch=self.scratch or None,
            keep=self.keep,
            trusted_types=self.trusted_types,
        )
        store = self.store()
        result = reproduce(params, registry=self.model_registry(store), store=store, caller=self.caller)
        out = result.to_dict()
        if not result.reproducible:
            context["ti"].xcom_push(key="return_value", value=out)
            raise NotReproducibleError(result.summary, out)
        self.log.info("%s", result.summary)
        return out
