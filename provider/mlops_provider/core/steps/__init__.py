"""The pipeline as plain functions: one per step, each taking a validated parameters dataclass
(:class:`~mlops_provider.core.params.Params`) and returning a result with ``to_dict()``. The
operators are adapters around them; a notebook calls them directly (see the README).

========================  ==========================  =====================================
step                      parameters                  operator
========================  ==========================  =====================================
``check_config``          ``ConfigParams``            ``CheckRetrainConfigOperator``
``extract_snapshot``      ``ExtractParams``           ``ExtractOperator``
``validate_snapshot``     ``ValidateParams``          ``ValidateDataOperator``
``train``                 ``TrainParams``             ``TrainModelOperator``
``evaluate_challenger``   ``EvaluateParams``          ``EvaluateModelOperator``
``register_and_promote``  ``RegisterParams``          ``RegisterModelOperator``
``resolve_model_version`` ``ResolveParams``           ``ResolveModelVersionOperator``
``score_batch``           ``ScoreParams``             ``BatchScoreOperator``
``detect_drift``          ``DriftParams``             ``DetectDriftOperator``
``evaluate_champion``     ``ChampionCheckParams``     ``EvaluateChampionOperator``
``reproduce``             ``ReproduceParams``         ``ReproduceModelOperator``
========================  ==========================  =====================================

Importing this package is cheap: each step imports pandas, scikit-learn or Great Expectations
when it runs.
"""

from __future__ import annotations

from mlops_provider.core.steps.config import ConfigParams, ConfigResult, check_config
from mlops_provider.core.steps.drift import (
    ChampionCheckParams,
    ChampionCheckResult,
    DriftParams,
    DriftResult,
    detect_drift,
    evaluate_champion,
)
from mlops_provider.core.steps.evaluate import EvaluateParams, EvaluationResult, evaluate_challenger
from mlops_provider.core.steps.extract import ExtractParams, SnapshotResult, extract_snapshot, sql_source
from mlops_provider.core.steps.register import RegisterParams, RegisterResult, register_and_promote
from mlops_provider.core.steps.reproduce import ReproduceParams, ReproduceResult, reproduce
from mlops_provider.core.steps.run import RunInfo
from mlops_provider.core.steps.score import (
    GatherParams,
    ListPartitionsParams,
    PartitionParams,
    ResolveParams,
    ScoreParams,
    ScoreResult,
    gather_scored_parts,
    list_input_partitions,
    partition_dataset,
    resolve_model_version,
    score_batch,
)
from mlops_provider.core.steps.train import TrainParams, TrainResult, train
from mlops_provider.core.steps.validate import ValidateParams, ValidationResult, validate_snapshot

__all__ = [
    "ChampionCheckParams",
    "ChampionCheckResult",
    "ConfigParams",
    "ConfigResult",
    "DriftParams",
    "DriftResult",
    "EvaluateParams",
    "EvaluationResult",
    "ExtractParams",
    "GatherParams",
    "ListPartitionsParams",
    "PartitionParams",
    "RegisterParams",
    "RegisterResult",
    "ReproduceParams",
    "ReproduceResult",
    "ResolveParams",
    "RunInfo",
    "ScoreParams",
    "ScoreResult",
    "SnapshotResult",
    "TrainParams",
    "TrainResult",
    "ValidateParams",
    "ValidationResult",
    "check_config",
    "detect_drift",
    "evaluate_challenger",
    "evaluate_champion",
    "extract_snapshot",
    "gather_scored_parts",
    "list_input_partitions",
    "partition_dataset",
    "register_and_promote",
    "reproduce",
    "resolve_model_version",
    "score_batch",
    "sql_source",
    "train",
    "validate_snapshot",
]
