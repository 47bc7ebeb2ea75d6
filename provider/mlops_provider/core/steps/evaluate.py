"""The model quality gate: score a trained challenger (and the current champion) on one evaluation
snapshot, decide (:func:`mlops_provider.core.evaluation.judge`), and write the verdict and its
HTML report."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from mlops_provider.core.errors import InvalidParameterError
from mlops_provider.core.names import CHAMPION
from mlops_provider.core.params import Interval, Name, NonEmptyStr, Params, dataset_uri
from mlops_provider.core.steps.run import RunInfo

log = logging.getLogger(__name__)

#: what a training result must carry to be evaluated
TRAINED_KEYS = ("model_uri", "model_sha256", "spec")
VERDICT_FILE = "verdict.json"


@dataclass(frozen=True)
class EvaluateParams(Params):
    """:param model_name: registry name; its ``alias`` version is the champion.
    :param thresholds: absolute gates by scikit-learn scorer name or alias, e.g. ``{"f1_macro": 0.8,
        "log_loss": {"max": 0.55}}``; a plain number is a floor for a higher-is-better metric and a
        ceiling for an error.
    :param compare_metric: metric for challenger vs champion (default: by task, see
        :data:`mlops_provider.core.metrics.DEFAULT_COMPARE`).
    :param min_improvement: the challenger must beat the champion by more than this.
    :param promote_if: ``"better"`` or ``"significantly_better"`` (the lower end of the improvement's
        confidence interval exceeds ``min_improvement``).
    :param bootstrap: the policy when there is no champion yet.
    :param on_fail: what the caller does with a failed verdict (the step itself never raises on one).
    :param alias: the champion's alias.
    :param slice_column: a column whose values get per-slice metrics in the report.
    :param slice_gates: slice and fairness gates, e.g. ``[{"column": "carrier", "metric": "roc_auc",
        "min": 0.6, "max_gap": 0.08, "min_rows": 300}]`` (:mod:`mlops_provider.core.slices`).
    :param cluster_column: a column whose rows are correlated within a value; the improvement's
        interval then resamples whole groups.
    :param trusted_types: extra types the model files may hold.
    :param resamples: bootstrap resamples of the improvement's interval.
    :param confidence: the interval's confidence level.
    :param seed: seed of the bootstrap."""

    _step: ClassVar[str] = "evaluate_challenger"
    _parameter_constraints: ClassVar = {
        "model_name": [Name()],
        "alias": [Name()],
        "compare_metric": [NonEmptyStr()],
        "min_improvement": [Interval(float, 0, None)],
        "slice_column": [NonEmptyStr()],
        "cluster_column": [NonEmptyStr()],
        "resamples": [Interval(int, 100, 100_000)],
        "confidence": [Interval(float, 0.5, 1, closed="left")],
        "seed": [Interval(int, 0, None)],
    }

    model_name: str
    thresholds: dict[str, Any] | None = None
    compare_metric: str | None = None
    min_improvement: float = 0.0
    promote_if: Literal["better", "significantly_better"] = "better"
    bootstrap: Literal["promote", "require_thresholds", "fail"] = "promote"
    on_fail: Literal["fail", "skip", "warn"] = "fail"
    alias: str = CHAMPION
    slice_column: str | None = None
    slice_gates: list[Any] | None = None
    cluster_column: str | None = None
    trusted_types: list[str] | None = None
    resamples: int = 1000
    confidence: float = 0.95
    seed: int | None = 0

    def validate(self, caller: str) -> None:
        """The declared constraints, then the metric names (known scorers; close matches named)."""
        from mlops_provider.core import metrics as M
        from mlops_provider.core.slices import normalize_slice_gates

        super().validate(caller)
        M.normalize_thresholds(self.thresholds, None, caller)
        normalize_slice_gates(self.slice_gates, None, caller)
        if self.compare_metric is not None:
            M.resolve(self.compare_metric, "compare_metric", caller)


@dataclass
class EvaluationResult:
    verdict: Any  # core.evaluation.Verdict
    challenger: dict[str, Any]
    alias: str
    verdict_uri: str
    report_uri: str  # the HTML report
    inputs: list[Any] = field(default_factory=list)
    judged: dict[str, Any] = field(default_factory=dict)  # core.registration_check.write_judged_sample

    @property
    def passed(self) -> bool:
        return bool(self.verdict.passed)

    @property
    def summary(self) -> str:
        return self.verdict.summary()

    def to_dict(self) -> dict[str, Any]:
        out = self.verdict.to_dict()
        out.update(challenger=self.challenger, verdict_uri=self.verdict_uri, alias=self.alias)
        if self.verdict.slices:  # what an approver reads (chains.retrain_chain's approval body)
            from mlops_provider.core.slices import markdown_table

            out["slice_table"] = markdown_table(self.verdict.slices)
        if self.judged:
            out["judged"] = self.judged
        out["report_html_uri"] = self.report_uri
        return out

    def lineage(self) -> dict[str, Any]:
        v = self.verdict
        return {
            "inputs": self.inputs,
            "step": "evaluate",
            "details": {
                "passed": v.passed,
                "decision": v.decision,
                "reason": v.reason,
                "champion_version": v.champion_version,
                "compare_metric": v.compare_metric,
            },
        }


def check_trained(
    model: Any, caller: str = "evaluate_challenger", name: str = "challenger"
) -> dict[str, Any]:
    """``model`` as a training result (a :func:`train` result or ``TrainModelOperator``'s XCom)."""
    if not isinstance(model, Mapping):
        raise InvalidParameterError(
            f"The {name!r} parameter of {caller} must be a dict. Got {model!r} instead."
        )
    for key in TRAINED_KEYS:
        if key not in model:
            raise InvalidParameterError(
                f"The {name!r} parameter of {caller} must be a TrainModelOperator result with {key!r}. "
                f"Got {sorted(model)!r} instead."
            )
    return dict(model)


def evaluate_challenger(
    params: EvaluateParams,
    *,
    challenger: Mapping[str, Any],
    dataset: Any,
    store,
    registry,
    run: RunInfo,
    caller: str | None = None,
) -> EvaluationResult:
    """Score ``challenger`` (a training result) and the ``params.alias`` version of
    ``params.model_name`` on the labelled rows of ``dataset`` (a snapshot URI or an extract result),
    decide, and write ``verdict.json`` and the HTML report under ``run.folder``.

    The gate settings are checked against the challenger's task before anything is read. A failed
    verdict is a result (``passed`` False), not an error; ``caller`` names who called in error
    messages (default ``evaluate_challenger``)."""
    from mlops_provider.core import metrics as M
    from mlops_provider.core.datasets import read_dataframe, read_manifest
    from mlops_provider.core.evaluation import judge
    from mlops_provider.core.modeling import FeatureSpec
    from mlops_provider.core.registration_check import write_judged_sample
    from mlops_provider.core.serialization import load_model
    from mlops_provider.core.slices import normalize_slice_gates

    caller = caller or params._step
    challenger = check_trained(challenger, caller)
    spec = FeatureSpec.from_dict(challenger["spec"])
    M.check_gate_config(
        spec.kind,
        thresholds=params.thresholds,
        compare_metric=params.compare_metric,
        promote_if=params.promote_if,
        owner=caller,
    )  # before any I/O
    normalize_slice_gates(params.slice_gates, spec.kind, caller, classes=spec.classes)
    uri = dataset_uri(dataset, caller)
    snap = read_manifest(store, uri)
    df = read_dataframe(store, snap.uri)
    # the slice columns against the snapshot, before any model is loaded or scored
    gates = normalize_slice_gates(
        params.slice_gates, spec.kind, caller, columns=df.columns, classes=spec.classes
    )
    if params.slice_column and params.slice_column not in df.columns:
        raise InvalidParameterError(
            f"The 'slice_column' parameter of {caller} must be a column of the evaluation data "
            f"{list(df.columns)}. Got {params.slice_column!r} instead."
        )
    trusted = params.trusted_types or ()
    ch_model = load_model(
        store.read_bytes(store.key_of(challenger["model_uri"])),
        expected_sha256=challenger["model_sha256"],
        source=challenger["model_uri"],
        trusted_types=trusted,
    )
    champion = None
    champ_version = registry.get_alias(params.model_name, params.alias)
    if champ_version is not None:
        champ_model, mv = registry.load(params.model_name, champ_version, trusted)
        champion = (champ_model, champ_version, FeatureSpec.from_dict(mv.spec))
    judgement = judge(
        ch_model,
        df,
        spec,
        model=params.model_name,
        champion=champion,
        thresholds=params.thresholds,
        compare_metric=params.compare_metric,
        min_improvement=float(params.min_improvement),
        bootstrap=params.bootstrap,
        promote_if=params.promote_if,
        resamples=params.resamples,
        confidence=float(params.confidence),
        seed=params.seed,
        cluster_column=params.cluster_column or None,
        eval_dataset=_eval_dataset(snap),
        where=f"The evaluation snapshot {snap.uri}",
        owner=caller,
        slice_gates=params.slice_gates,
    )
    result = EvaluationResult(
        verdict=judgement.verdict,
        challenger=challenger,
        alias=params.alias,
        verdict_uri=store.uri(f"{run.folder}/{VERDICT_FILE}"),
        report_uri="",
        inputs=[challenger["model_uri"], (snap.data_uri, snap.columns)],
    )
    result.judged = write_judged_sample(
        store,
        run.folder,
        judgement.labelled,
        spec,
        judgement.challenger,
        seed=params.seed,
        trusted_types=trusted,
    )
    links = run.report_links(model=params.model_name, snapshot_uri=snap.uri, store=store)
    result.report_uri = _write_report(params, judgement, result, store, run.folder, gates, links)
    store.write_json(f"{run.folder}/{VERDICT_FILE}", result.to_dict())
    return result


def _eval_dataset(snap) -> dict[str, Any]:
    """How the verdict names its evaluation data: URI, sha256, rows and, when the snapshot's extract
    recorded it, its window (``[data_interval_start, data_interval_end)`` of that run)."""
    out: dict[str, Any] = {"uri": snap.uri, "sha256": snap.sha256, "rows": snap.rows}
    extra = snap.extra or {}
    window = [extra.get("data_interval_start"), extra.get("data_interval_end")]
    window = [None if w in (None, "", "None") else str(w) for w in window]
    if any(window):
        out["window"] = window
    return out


def _write_report(
    params: EvaluateParams, judgement, result: EvaluationResult, store, folder: str, gates=(), links=()
) -> str:
    """The HTML report (and its plots) under ``folder``; returns its URI."""
    from mlops_provider.core.reports import write_evaluation_report

    verdict = result.to_dict()
    del verdict["report_html_uri"]  # not known yet: the report shows the verdict without it
    champ_version = judgement.verdict.champion_version
    name = params.model_name
    column = params.slice_column or (gates[0].column if gates else None)
    report = write_evaluation_report(
        store,
        folder,
        verdict=verdict,
        y_true=judgement.y,
        challenger=judgement.challenger,
        champion=judgement.champion,
        slice_values=judgement.labelled[column].to_numpy() if column else None,
        slice_column=column,
        positive_label=judgement.spec.positive_label,
        title=f"{name}: challenger vs champion v{champ_version}" if champ_version else name,
        links=links,
    )
    return report["html_uri"]
