"""EvaluateModelOperator: the model quality gate, challenger vs champion on the same data."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

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
    :param thresholds: absolute gates, ``{"roc_auc": 0.7, "log_loss": {"max": 0.55}}`` (templated).
    :param compare_metric: metric for challenger vs champion (default roc_auc / rmse).
    :param min_improvement: the challenger must beat the champion by more than this (ties never promote).
    :param bootstrap: first-run policy with no champion: ``"promote"``, ``"require_thresholds"``, ``"fail"``.
    :param on_fail: ``"fail"`` | ``"skip"`` | ``"warn"`` when the verdict does not pass.
    :param slice_column: a column of the evaluation data (e.g. ``"carrier"``) whose values get
        per-slice metrics in the HTML report.
    :return: the verdict (passed, decision, reason, checks with metric / threshold / champion /
        challenger / delta, metrics) plus ``challenger`` (the model result) and ``verdict_uri``.
    """

    template_fields: Sequence[str] = (
        "model_name", "model", "dataset", "thresholds", "compare_metric", "min_improvement", "bootstrap",
        "on_fail", "artifact_root",
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
        bootstrap: str = "promote",
        on_fail: str = "fail",
        alias: str = "champion",
        slice_column: str | None = None,
        trusted_types: list[str] | None = None,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        self.model_name = model_name
        self.model = model
        self.dataset = dataset
        self.thresholds = thresholds
        self.compare_metric = compare_metric
        self.min_improvement = min_improvement
        self.bootstrap = bootstrap
        self.on_fail = on_fail
        self.alias = alias
        self.slice_column = slice_column
        self.trusted_types = trusted_types

    def execute_step(self, context: Context) -> dict[str, Any]:
        from mlops_provider.core.datasets import read_dataframe, read_manifest
        from mlops_provider.core.evaluation import decide, metrics_from, score_frame
        from mlops_provider.core.modeling import FeatureSpec
        from mlops_provider.core.serialization import load_model

        on_fail = self.check_on_fail(self.on_fail)
        self.name_param(self.model_name)
        self.name_param(self.alias, "alias")
        challenger = self.as_dict(self.model, "model", allow_none=False)
        for key in ("model_uri", "model_sha256", "spec"):
            if key not in challenger:
                raise self.param_error("model", f"a TrainModelOperator result with {key!r}", sorted(challenger))
        thresholds = self.as_dict(self.thresholds, "thresholds")
        try:
            min_improvement = float(self.min_improvement)
        except (TypeError, ValueError) as err:
            raise self.param_error("min_improvement", "a number >= 0", self.min_improvement) from err
        store = self.store()
        snap = read_manifest(store, self.as_uri(self.dataset, "dataset"))
        df = read_dataframe(store, snap.uri)
        spec = FeatureSpec.from_dict(challenger["spec"])
        ch_model = load_model(
            store.read_bytes(store.key_of(challenger["model_uri"])),
            expected_sha256=challenger["model_sha256"], source=challenger["model_uri"],
            trusted_types=self.trusted_types or (),
        )
        where = f"The evaluation snapshot {snap.uri}"
        if self.slice_column and self.slice_column not in df.columns:
            raise self.param_error("slice_column", f"a column of the evaluation data {list(df.columns)}", self.slice_column)
        labelled, y, ch_pred, ch_score = score_frame(ch_model, df, spec, where)
        ch_metrics = metrics_from(y, ch_pred, ch_score, spec, where)
        registry = self.model_registry(store)
        champ_version = registry.get_alias(self.model_name, self.alias)
        champ_metrics = champ_score = None
        if champ_version is not None:
            champ_model, mv = registry.load(self.model_name, champ_version, self.trusted_types or ())
            champ_spec = FeatureSpec.from_dict(mv.spec)
            _, y_c, champ_pred, champ_score = score_frame(champ_model, labelled, champ_spec, f"{where} (champion v{champ_version})")
            champ_metrics = metrics_from(y_c, champ_pred, champ_score, champ_spec, where)
        verdict = decide(
            model=self.model_name, task=spec.task, challenger_metrics=ch_metrics, champion_metrics=champ_metrics,
            champion_version=champ_version, thresholds=thresholds, compare_metric=self.compare_metric,
            min_improvement=min_improvement, bootstrap=self.bootstrap,
            eval_dataset={"uri": snap.uri, "sha256": snap.sha256, "rows": snap.rows}, owner=self.owner_name(),
        )
        from mlops_provider.core.reports import write_evaluation_report
        from mlops_provider.links.report import artifact_url

        folder = self.run_folder(context)
        result = verdict.to_dict()
        result.update(challenger=challenger, verdict_uri=store.uri(f"{folder}/verdict.json"), alias=self.alias)
        report = write_evaluation_report(
            store, folder, verdict=result, y_true=y, challenger_score=ch_score, champion_score=champ_score,
            slice_values=labelled[self.slice_column].to_numpy() if self.slice_column else None,
            slice_column=self.slice_column, positive_label=spec.positive_label,
            title=f"{self.model_name}: challenger vs champion v{champ_version}" if champ_version else self.model_name,
        )
        result["report_html_uri"] = report["html_uri"]
        store.write_json(f"{folder}/verdict.json", result)
        self.mlops_links[EvaluationReportLink.name] = artifact_url(store, report["html_uri"])
        self.lineage_record = {
            "inputs": [challenger["model_uri"], (snap.data_uri, snap.columns)], "step": "evaluate",
            "details": {k: result[k] for k in ("passed", "decision", "reason", "champion_version", "compare_metric")},
        }
        return self.gate_outcome(context, result, verdict.passed, verdict.summary(), on_fail, ModelGateFailed)
