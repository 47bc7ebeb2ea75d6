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

    Re-running the task for the same DAG run returns the version it registered before. Promotion
    is refused if the champion changed since the evaluation (the comparison would be stale).
    :return: the version record plus ``created`` and ``promoted``.
    """

    template_fields: Sequence[str] = ("model_name", "evaluation", "model", "tags", "artifact_root")
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

    def execute_step(self, context: Context) -> dict[str, Any]:
        from mlops_provider.core.lineage import code_version, package_versions
        from mlops_provider.core.registry import StaleAliasError

        self.name_param(self.model_name)
        self.name_param(self.alias, "alias")
        evaluation = self.as_dict(self.evaluation, "evaluation")
        if evaluation is not None:
            model = evaluation.get("challenger")
            verdict = {k: v for k, v in evaluation.items() if k != "challenger"}
        else:
            model, verdict = self.as_dict(self.model, "model", allow_none=False), None
        if not isinstance(model, dict) or "model_uri" not in model:
            raise self.param_error(
                "evaluation / model", "an EvaluateModelOperator or TrainModelOperator result", model
            )
        store = self.store()
        data = store.read_bytes(store.key_of(model["model_uri"]))
        from mlops_provider.core.errors import IntegrityError
        from mlops_provider.core.serialization import sha256_bytes

        if sha256_bytes(data) != model["model_sha256"]:
            raise IntegrityError(
                f"{model['model_uri']} has sha256 {sha256_bytes(data)}, but training recorded {model['model_sha256']}; "
                "refusing to register a model file that changed after training."
            )
        ti = context["ti"]
        dag = context.get("dag")
        lineage = {
            "train_dataset": model.get("dataset"),
            "eval_dataset": (verdict or {}).get("eval_dataset"),
            "dag_id": ti.dag_id,
            "run_id": ti.run_id,
            "task_id": ti.task_id,
            "try_number": getattr(ti, "try_number", None),
            "data_interval_start": str(context.get("data_interval_start")),
            "data_interval_end": str(context.get("data_interval_end")),
            "seed": model.get("seed"),
            "packages": package_versions(),
            "code": code_version(getattr(dag, "fileloc", None)),
            "bundle_version": getattr(context.get("dag_run"), "bundle_version", None),
            "model_sha256": model["model_sha256"],
            "train_seconds": model.get("train_seconds"),
            "train_rows": model.get("rows"),
        }
        metrics = (verdict or {}).get("metrics", {}).get("challenger", {})
        registry = self.model_registry(store)
        mv, created = registry.register(
            self.model_name,
            data,
            run_key=self.run_key(context),
            estimator=model.get("estimator"),
            metrics=metrics,
            verdict=verdict,
            lineage=lineage,
            spec=model.get("spec"),
            params=model.get("params"),
            tags=self.tags,
        )
        self.log.info(
            "%s %s v%d (%s)", "Registered" if created else "Reusing", self.model_name, mv.version, mv.uri
        )
        promoted = False
        current = registry.get_alias(self.model_name, self.alias)
        if not self.promote or verdict is None:
            self.log.info("Not promoting: %s", "promote=False" if not self.promote else "no verdict given")
        elif not verdict.get("passed"):
            self.log.warning(
                "Not promoting v%d: the gate did not pass (%s)", mv.version, verdict.get("reason")
            )
        elif current == mv.version:
            promoted = True
            self.log.info("v%d is already %r", mv.version, self.alias)
        elif current != verdict.get("champion_version"):
            self.log.warning(
                "Not promoting v%d: %r moved from v%s to v%s since the evaluation; re-run the evaluation",
                mv.version,
                self.alias,
                verdict.get("champion_version"),
                current,
            )
        else:
            try:
                registry.promote(
                    self.model_name,
                    mv.version,
                    alias=self.alias,
                    actor=f"airflow:{ti.dag_id}/{ti.run_id}",
                    reason=verdict.get("reason", "verdict passed"),
                    expected_current=current,
                )
                promoted = True
                self.log.info(
                    "Promoted %s v%d to %r (was v%s)", self.model_name, mv.version, self.alias, current
                )
            except StaleAliasError as err:  # another run promoted in between: its verdict stands
                self.log.warning("Not promoting v%d: %s; re-run the evaluation", mv.version, err)
        from mlops_provider.links.report import model_version_url

        self.mlops_links[ModelVersionLink.name] = model_version_url(self.model_name, mv.version)
        self.lineage_record = {
            "inputs": [model["model_uri"]],
            "outputs": [mv.model_uri],
            "step": "register",
            "details": {
                "model": self.model_name,
                "version": mv.version,
                "promoted": promoted,
                "model_sha256": mv.model_sha256,
            },
        }
        out = mv.to_dict()
        out.update(
            created=created,
            promoted=promoted,
            alias=self.alias,
            champion_version=registry.get_alias(self.model_name, self.alias),
        )
        return out
