"""RegisterModelOperator: a registry version with full lineage; promotion only on a passing verdict."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from mlops_provider.core.names import CHAMPION
from mlops_provider.links.report import ModelVersionLink
from mlops_provider.operators._base import MlopsBaseOperator

if TYPE_CHECKING:
    from airflow.sdk import Context


class RegisterModelOperator(MlopsBaseOperator):
    """Register the trained model as a new version and, if the verdict passed, promote it.

    :param model_name: registry name.
    :param evaluation: the ``EvaluateModelOperator``'s result (carries the verdict and the model).
    :param model: instead of ``evaluation``, a ``TrainModelOperator`` result to register without a
        verdict (never promoted).
    :param promote: move ``alias`` to the new version when the verdict passed (default True).
    :param alias: the alias to move (default ``"champion"``).
    :param tags: free-form metadata stored with the version.
    :param intended_use: what the model is for, written in the version's model card (default:
        derived from the model's name and label).
    :param limitations: known limitations listed in the model card.

    Re-running the task for the same DAG run returns the version it registered before. Promotion
    is refused if the champion changed since the evaluation (the comparison would be stale).
    :return: the version record plus ``created`` and ``promoted``.
    """

    template_fields: Sequence[str] = (
        "model_name",
        "evaluation",
        "model",
        "tags",
        "intended_use",
        "limitations",
        "artifact_root",
    )
    ui_color = "#f3f0d6"
    operator_extra_links = (ModelVersionLink(),)

    def __init__(
        self,
        *,
        model_name: str,
        evaluation: Any = None,
        model: Any = None,
        promote: bool = True,
        alias: str = CHAMPION,
        tags: dict[str, Any] | None = None,
        intended_use: str | None = None,
        limitations: list[str] | None = None,
        artifact_root: str | None = None,
        **kwargs: Any,
    ):
        super().__init__(artifact_root=artifact_root, **kwargs)
        self.model_name = model_name
        self.evaluation = evaluation
        self.model = model
        self.promote = promote
        self.alias = alias
        self.tags = tags
        self.intended_use = intended_use
        self.limitations = limitations

    def execute_step(self, context: Context) -> dict[str, Any]:
        from mlops_provider.core.steps.register import RegisterParams, register_and_promote, split_evaluation
        from mlops_provider.links.report import model_version_url

        params = self.params_for(
            RegisterParams,
            model_name=self.model_name,
            promote=self.promote,
            alias=self.alias,
            tags=self.tags,
            intended_use=self.intended_use or None,
            limitations=self.limitations or None,
        )
        trained, verdict = split_evaluation(
            self.as_dict(self.evaluation, "evaluation"),
            self.as_dict(self.model, "model") if self.evaluation in (None, "") else None,
            self.caller,
        )
        store = self.store()
        result = register_and_promote(
            params,
            trained=trained,
            verdict=verdict,
            store=store,
            registry=self.model_registry(store),
            run=self.run_info(context),
        )
        self.mlops_links[ModelVersionLink.name] = model_version_url(params.model_name, result.version.version)
        self.lineage_record = result.lineage()
        return result.to_dict()
