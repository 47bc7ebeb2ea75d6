"""Register a trained model with its lineage and, if its verdict passed, promote it."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from mlops_provider.core.errors import IntegrityError, InvalidParameterError
from mlops_provider.core.names import CHAMPION
from mlops_provider.core.params import Name, NonEmptyStr, Params
from mlops_provider.core.steps.run import RunInfo

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RegisterParams(Params):
    """:param model_name: registry name. :param promote: move ``alias`` to the new version when
    the verdict passed. :param alias: the alias to move. :param tags: metadata stored with the version."""

    _step: ClassVar[str] = "register_and_promote"
    _parameter_constraints: ClassVar = {
        "model_name": [Name()],
        "alias": [Name()],
        "intended_use": [NonEmptyStr()],
    }

    model_name: str
    promote: bool = True
    alias: str = CHAMPION
    tags: dict[str, Any] | None = None
    intended_use: str | None = None
    limitations: list[str] | None = None


@dataclass
class RegisterResult:
    version: Any  # core.registry.ModelVersion
    created: bool
    promoted: bool
    alias: str
    champion_version: int | None
    why: str  # why it was (not) promoted
    inputs: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        out = self.version.to_dict()
        out.update(
            created=self.created,
            promoted=self.promoted,
            alias=self.alias,
            champion_version=self.champion_version,
        )
        return out

    def lineage(self) -> dict[str, Any]:
        mv = self.version
        return {
            "inputs": self.inputs,
            "outputs": [mv.model_uri],
            "step": "register",
            "details": {
                "model": mv.model,
                "version": mv.version,
                "promoted": self.promoted,
                "model_sha256": mv.model_sha256,
            },
        }


def split_evaluation(
    evaluation: Mapping[str, Any] | None, trained: Mapping[str, Any] | None, caller: str
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """(trained model, verdict) from an evaluation result (which carries the model as
    ``challenger``), or from a training result alone (no verdict)."""
    if evaluation is not None:
        model = evaluation.get("challenger")
        verdict = {k: v for k, v in evaluation.items() if k != "challenger"}
    else:
        model, verdict = trained, None
    if not isinstance(model, Mapping) or "model_uri" not in model:
        raise InvalidParameterError(
            f"The 'evaluation / model' parameter of {caller} must be an evaluation or training result "
            f"(with the model's 'model_uri'). Got {model!r} instead."
        )
    return dict(model), verdict


def register_and_promote(
    params: RegisterParams,
    *,
    trained: Mapping[str, Any],
    verdict: Mapping[str, Any] | None,
    store,
    registry,
    run: RunInfo,
) -> RegisterResult:
    """Register ``trained`` (a :func:`~mlops_provider.core.steps.train` result) as a new version of
    ``params.model_name`` with its lineage, then move ``params.alias`` to it if ``verdict`` passed and
    the alias still points where the evaluation saw it (compare-and-set).

    The model file must still have the sha256 training recorded, and, loaded through the safe
    loader in a fresh process, predict on the evaluation's judged sample what the judged model
    predicted (:mod:`mlops_provider.core.registration_check`); otherwise nothing is registered.
    Registering again for the same
    ``run.run_key`` returns the version registered before."""
    from mlops_provider.core.lineage import package_versions
    from mlops_provider.core.model_card import build_card
    from mlops_provider.core.registration_check import check_registered_model
    from mlops_provider.core.registry import StaleAliasError
    from mlops_provider.core.serialization import sha256_bytes

    data = store.read_bytes(store.key_of(trained["model_uri"]))
    if sha256_bytes(data) != trained["model_sha256"]:
        raise IntegrityError(
            f"{trained['model_uri']} has sha256 {sha256_bytes(data)}, but training recorded "
            f"{trained['model_sha256']}; refusing to register a model file that changed after training."
        )
    check = check_registered_model(
        model=params.model_name,
        model_bytes=data,
        sha256=trained["model_sha256"],
        model_uri=trained["model_uri"],
        spec=trained.get("spec"),
        judged=(verdict or {}).get("judged"),
        store=store,
    )
    log.info("Registration check: %s", check)
    info = run.lineage()
    lineage = {
        "train_dataset": trained.get("dataset"),
        "eval_dataset": (verdict or {}).get("eval_dataset"),
        **{k: info[k] for k in ("dag_id", "run_id", "task_id", "try_number")},
        "data_interval_start": info["data_interval_start"],
        "data_interval_end": info["data_interval_end"],
        "seed": trained.get("seed"),
        "train_recipe": trained.get("recipe"),  # what `mlops models reproduce` trains again
        "packages": package_versions(),
        "code": info["code"],
        "bundle_version": info["bundle_version"],
        "model_sha256": trained["model_sha256"],
        "train_seconds": trained.get("train_seconds"),
        "train_rows": trained.get("rows"),
        "registration_check": check,
        "model_card": {"intended_use": params.intended_use, "limitations": list(params.limitations or [])},
    }
    name, alias = params.model_name, params.alias
    mv, created = registry.register(
        name,
        data,
        run_key=run.run_key,
        estimator=trained.get("estimator"),
        metrics=(verdict or {}).get("metrics", {}).get("challenger", {}),
        verdict=verdict,
        lineage=lineage,
        spec=trained.get("spec"),
        params=trained.get("params"),
        tags=params.tags,
        card=lambda v: build_card(v.to_dict(), promotion="decided after registration"),
    )
    log.info("%s %s v%d (%s)", "Registered" if created else "Reusing", name, mv.version, mv.uri)
    promoted, why = _promote(params, mv.version, verdict, registry, run, StaleAliasError)
    events = [e.to_dict() for e in registry.history(name) if e.version == mv.version]
    registry.write_card(name, mv.version, build_card(mv.to_dict(), events=events, promotion=why))
    return RegisterResult(
        version=mv,
        created=created,
        promoted=promoted,
        alias=alias,
        champion_version=registry.get_alias(name, alias),
        why=why,
        inputs=[trained["model_uri"]],
    )


def _promote(params, version, verdict, registry, run, stale_error) -> tuple[bool, str]:
    """The promotion policy: only a passing verdict, only over the champion it was compared with."""
    name, alias = params.model_name, params.alias
    current = registry.get_alias(name, alias)
    if not params.promote or verdict is None:
        why = "promote=False" if not params.promote else "no verdict given"
        log.info("Not promoting: %s", why)
        return False, why
    if not verdict.get("passed"):
        log.warning("Not promoting v%d: the gate did not pass (%s)", version, verdict.get("reason"))
        return False, "the gate did not pass"
    if current == version:
        log.info("v%d is already %r", version, alias)
        return True, f"already {alias}"
    if current != verdict.get("champion_version"):
        why = f"{alias!r} moved from v{verdict.get('champion_version')} to v{current} since the evaluation"
        log.warning("Not promoting v%d: %s; re-run the evaluation", version, why)
        return False, why
    try:
        registry.promote(
            name,
            version,
            alias=alias,
            actor=run.actor,
            reason=verdict.get("reason", "verdict passed"),
            expected_current=current,
        )
    except stale_error as err:  # another run promoted in between: its verdict stands
        log.warning("Not promoting v%d: %s; re-run the evaluation", version, err)
        return False, str(err)
    log.info("Promoted %s v%d to %r (was v%s)", name, version, alias, current)
    return True, "verdict passed"
