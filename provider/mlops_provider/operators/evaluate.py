"""EvaluateModelOperator: the model quality gate, challenger vs champion on the same data."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from mlops_provider.core.names import CHAMPION
from mlops_provider.exceptions import ModelGateFailed
from mlops_provider.links.report import EvaluationReportLink
from mlops_provider.operators._base import MlopsBaseOperator

if TYPE_CHECKING:
    from airflow.sdk import Context


class EvaluateModelOperator(MlopsBaseOperator):
    """Score the challenger (and the current champion) on one evaluation snapshot and decide.

    :param model_name: registry name; its ``alias`` version is the champion.
    :param model: the ``TrainModelOperator``'s result (``train.output``).
    :param dataset: evaluation snapshot URI or the upstream ``ExtractOperator``'s result.
    :param thresholds: absolute gates by scikit-learn scorer name or alias, e.g. ``{"f1_macro": 0.8,
        "log_loss": {"max": 0.55}}`` (templated); a plain number is a floor for a higher-is-better
        metric and a ceiling for an error.
    :param compare_metric: metric for challenger vs champion (default: ``roc_auc`` for binary,
        ``log_loss`` for multiclass, ``rmse`` for regression; see :mod:`mlops_provider.core.metrics`).
    :param min_improvement: the challenger must beat the champion by more than this (ties never promote).
    :param promote_if: ``"better"`` (the improvement exceeds ``min_improvement``) or
        ``"significantly_better"`` (the lower end of its confidence interval does).
    :param bootstrap: first-run policy with no champion: ``"promote"``, ``"require_thresholds"``, ``"fail"``.
    :param on_fail: ``"fail"`` | ``"skip"`` | ``"warn"`` when the verdict does not pass.
    :param slice_column: a column of the evaluation data (e.g. ``"carrier"``) whose values get
        per-slice metrics in the HTML report.
    :param cluster_column: a column of the evaluation data whose rows are correlated within a value
        (e.g. the departure date: one day's flights share its weather): the improvement's confidence
        interval then resamples whole groups, so it reflects day-to-day variation, not only row noise.
    :param resamples: bootstrap resamples for the improvement's confidence interval (without
        ``cluster_column``, binary ROC AUC uses DeLong's method instead).
    :param confidence: the interval's confidence level (default 0.95).
    :param seed: seed of the bootstrap.
    :return: the verdict (passed, decision, reason, checks with metric / threshold / champion /
        challenger / delta and the improvement's interval, metrics, comparison) plus ``challenger``
        (the model result) and ``verdict_uri``.
    """

    template_fields: Sequence[str] = (
        "model_name",
        "model",
        "dataset",
        "thresholds",
        "compare_metric",
        "min_improvement",
        "promote_if",
        "bootstrap",
        "on_fail",
        "artifact_root",
    )
    ui_color = "#f6e3f3"
    operator_extra_links = (EvaluationReportLink(),)

    def __init__(
        self,
        *,
        model_name: str,
        model: Any,
        dataset: Any,
        thresholds: Any = None,
        compare_metric: str | None = None,
        min_improvement: Any = 0.0,
        promote_if: str = "better",
        bootstrap: str = "promote",
        on_fail: str = "fail",
        alias: str = CHAMPION,
        slice_column: str | None = None,
        cluster_column: str | None = None,
        trusted_types: list[str] | None = None,
        resamples: int = 1000,
        confidence: float = 0.95,
        seed: int = 0,
        artifact_root: str | None = None,
        **kwargs: Any,
    ):
        super().__init__(artifact_root=artifact_root, **kwargs)
        self.model_name = model_name
        self.model = model
        self.dataset = dataset
        self.thresholds = thresholds
        self.compare_metric = compare_metric
        self.min_improvement = min_improvement
        self.promote_if = promote_if
        self.bootstrap = bootstrap
        self.on_fail = on_fail
        self.alias = alias
        self.slice_column = slice_column
        self.cluster_column = cluster_column
        self.trusted_types = trusted_types
        self.resamples = resamples
        self.confidence = confidence
        self.seed = seed

    def execute_step(self, context: Context) -> dict[str, Any]:
        from mlops_provider.core import metrics as M
        from mlops_provider.core.datasets import read_dataframe, read_manifest
        from mlops_provider.core.evaluation import judge
        from mlops_provider.core.modeling import FeatureSpec
        from mlops_provider.core.reports import write_evaluation_report
        from mlops_provider.core.serialization import load_model
        from mlops_provider.links.report import artifact_url

        on_fail = self.check_on_fail(self.on_fail)
        self.name_param(self.model_name)
        self.name_param(self.alias, "alias")
        challenger = self.as_dict(self.model, "model", allow_none=False)
        for key in ("model_uri", "model_sha256", "spec"):
            if key not in challenger:
                raise self.param_error(
                    "model", f"a TrainModelOperator result with {key!r}", sorted(challenger)
                )
        thresholds = self.as_dict(self.thresholds, "thresholds")
        try:
            min_improvement = float(self.min_improvement)
        except (TypeError, ValueError) as err:
            raise self.param_error("min_improvement", "a number >= 0", self.min_improvement) from err
        spec = FeatureSpec.from_dict(challenger["spec"])
        owner = self.owner_name()
        M.check_gate_config(
            spec.kind,
            thresholds=thresholds,
            compare_metric=self.compare_metric,
            promote_if=self.promote_if,
            owner=owner,
        )  # before any I/O
        store = self.store()
        snap = read_manifest(store, self.as_uri(self.dataset, "dataset"))
        df = read_dataframe(store, snap.uri)
        if self.slice_column and self.slice_column not in df.columns:
            raise self.param_error(
                "slice_column", f"a column of the evaluation data {list(df.columns)}", self.slice_column
            )
        ch_model = load_model(
            store.read_bytes(store.key_of(challenger["model_uri"])),
            expected_sha256=challenger["model_sha256"],
            source=challenger["model_uri"],
            trusted_types=self.trusted_types or (),
        )
        registry = self.model_registry(store)
        champ_version = registry.get_alias(self.model_name, self.alias)
        champion = None
        if champ_version is not None:
            champ_model, mv = registry.load(self.model_name, champ_version, self.trusted_types or ())
            champion = (champ_model, champ_version, FeatureSpec.from_dict(mv.spec))
        judgement = judge(
            ch_model,
            df,
            spec,
            model=self.model_name,
            champion=champion,
            thresholds=thresholds,
            compare_metric=self.compare_metric,
            min_improvement=min_improvement,
            bootstrap=self.bootstrap,
            promote_if=self.promote_if,
            resamples=self.resamples,
            confidence=self.confidence,
            seed=self.seed,
            cluster_column=self.cluster_column or None,
            eval_dataset={"uri": snap.uri, "sha256": snap.sha256, "rows": snap.rows},
            where=f"The evaluation snapshot {snap.uri}",
            owner=owner,
        )
        verdict = judgement.verdict
        folder = self.run_folder(context)
        result = verdict.to_dict()
        result.update(
            challenger=challenger, verdict_uri=store.uri(f"{folder}/verdict.json"), alias=self.alias
        )
        labelled = judgement.labelled
        report = write_evaluation_report(
            store,
            folder,
            verdict=result,
            y_true=judgement.y,
            challenger=judgement.challenger,
            champion=judgement.champion,
            slice_values=labelled[self.slice_column].to_numpy() if self.slice_column else None,
            slice_column=self.slice_column,
            positive_label=spec.positive_label,
            title=f"{self.model_name}: challenger vs champion v{champ_version}"
            if champ_version
            else self.model_name,
        )
        result["report_html_uri"] = report["html_uri"]
        store.write_json(f"{folder}/verdict.json", result)
        self.mlops_links[EvaluationReportLink.name] = artifact_url(store, report["html_uri"])
        self.lineage_record = {
            "inputs": [challenger["model_uri"], (snap.data_uri, snap.columns)],
            "step": "evaluate",
            "details": {
                k: result[k] for k in ("passed", "decision", "reason", "champion_version", "compare_metric")
            },
        }
        return self.gate_outcome(context, result, verdict.passed, verdict.summary(), on_fail, ModelGateFailed)
