"""Monitoring the champion: data drift against its training snapshot, and its score on newly
labelled data. Either can ask for a retrain through the asset ``x-mlops://<model>/retrain-requested``.

How the event is emitted, and why through an alias: in Airflow 3 every *successful* task records an
asset event for every ``Asset`` in its ``outlets``, with or without an ``extra`` (see
``TaskInstance.register_asset_changes_in_db``). A statically declared ``Asset`` outlet would thus
trigger the retraining DAG after every monitoring run. These operators declare an
:class:`~airflow.sdk.AssetAlias` instead (``mlops-retrain-requested:<model>``) and, only when a
retrain is due, attach the event to the real asset through it::

    context["outlet_events"][alias].add(Asset("x-mlops://<model>/retrain-requested"), extra=...)

An alias with nothing added records no event, so consumers scheduled on the asset run only when
the policy says so. The ``extra`` is :meth:`RetrainRequest.to_extra` (parse it back with
:func:`mlops_provider.core.events.parse_triggering_events`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import Asset, AssetAlias

from mlops_provider.core.names import CHAMPION
from mlops_provider.operators._base import MlopsBaseOperator

if TYPE_CHECKING:
    from airflow.sdk import Context

    from mlops_provider.core.events import RetrainRequest


def retrain_alias_name(model_name: str) -> str:
    """The AssetAlias the operators emit retrain requests through (one per model)."""
    if not isinstance(model_name, str) or "{{" in model_name or "{%" in model_name:
        return "mlops-retrain-requested"  # a templated model name: one alias for all models
    return f"mlops-retrain-requested:{model_name}"


class _RetrainEmitterMixin:
    """Declares the retrain alias as an outlet; emits the event only when asked to."""

    def _declare_retrain_outlet(self, model_name: Any, retrain_alias: str | None) -> None:
        self.retrain_alias = AssetAlias(name=retrain_alias or retrain_alias_name(model_name))
        outlets = list(self.outlets or [])
        if self.retrain_alias not in outlets:
            outlets.append(self.retrain_alias)
        self.outlets = outlets

    def _monitor(self, step: Any, params: Any, context: Context) -> dict[str, Any]:
        """Run a monitoring step on this task's dataset and window; emit its retrain request."""
        store = self.store()
        result = step(
            params,
            dataset=self.dataset,
            store=store,
            registry=self.model_registry(store),
            run=self.run_info(context),
            window=self._window(context),
            caller=self.caller,
        )
        self._emit_retrain(context, result.request)
        self.lineage_record = result.lineage()
        return result.to_dict()

    def _emit_retrain(self, context: Context, request: RetrainRequest | None) -> None:
        """Attach the retrain request (if any) to the alias outlet as an asset event."""
        if request is None:
            return
        events = context.get("outlet_events")
        if events is None:
            self.log.warning(
                "No outlet_events in the context: retrain request for %s not emitted", request.model
            )
            return
        events[self.retrain_alias].add(Asset(request.asset_uri), extra=request.to_extra())
        self.log.info(
            "Retrain requested for %s (%s): asset event on %s",
            request.model,
            request.reason,
            request.asset_uri,
        )

    @staticmethod
    def _window(context: Context) -> dict[str, str] | None:
        start, end = context.get("data_interval_start"), context.get("data_interval_end")
        if start is None or end is None:
            return None
        return {"start": start.isoformat(), "end": end.isoformat()}


class DetectDriftOperator(_RetrainEmitterMixin, MlopsBaseOperator):
    """Compare a data window with the champion's training data; request a retrain when drift persists.

    :param model_name: registry name; the reference is the training snapshot of its ``alias`` version
        (``lineage["train_dataset"]["uri"]``).
    :param dataset: the current window's snapshot URI, or an ``ExtractOperator`` result.
    :param features: features to compare (default: the champion's numeric + categorical features).
    :param psi_threshold: a number, or per feature ``{"temp": 1.0, "default": 0.2}`` (templated).
    :param missing_threshold: a feature drifts when its missing rate moves by this much.
    :param unseen_threshold: a categorical feature drifts when this share of rows has unseen categories.
    :param decide_by: ``"psi"`` (default) or ``"p_value"``.
    :param min_drifted_features: retrain when at least this many features drift ...
    :param persistence: ... in each of the last ``persistence`` windows compared with this champion.
    :param retrain_alias: name of the AssetAlias outlet (default ``mlops-retrain-requested:<model>``).

    The reference profile is built once and cached as ``profile.json`` in the reference snapshot's
    folder. The report goes to ``drift/<model>/<window sha256>.json`` and one history entry per
    window to ``drift/<model>/history/``; a window compared again replaces its entry.
    :return: the drift report plus ``retrain``, ``policy_reason``, ``report_uri``, ``champion_version``,
        ``profile_uri``, ``profile_reused`` and ``event`` (the emitted extra, or None).
    """

    # model_name names the retrain-request outlet when the DAG is parsed, so it is not templated
    template_fields: Sequence[str] = (
        "dataset",
        "features",
        "psi_threshold",
        "missing_threshold",
        "unseen_threshold",
        "min_drifted_features",
        "persistence",
        "artifact_root",
    )
    ui_color = "#fdf1dc"

    def __init__(
        self,
        *,
        model_name: str,
        dataset: Any,
        features: list[str] | None = None,
        alias: str = CHAMPION,
        psi_threshold: Any = 0.2,
        missing_threshold: Any = 0.1,
        unseen_threshold: Any = 0.05,
        decide_by: str = "psi",
        min_drifted_features: Any = 1,
        persistence: Any = 1,
        retrain_alias: str | None = None,
        artifact_root: str | None = None,
        **kwargs: Any,
    ):
        super().__init__(artifact_root=artifact_root, **kwargs)
        self.model_name = model_name
        self.dataset = dataset
        self.features = features
        self.alias = alias
        self.psi_threshold = psi_threshold
        self.missing_threshold = missing_threshold
        self.unseen_threshold = unseen_threshold
        self.decide_by = decide_by
        self.min_drifted_features = min_drifted_features
        self.persistence = persistence
        self._declare_retrain_outlet(model_name, retrain_alias)

    def execute_step(self, context: Context) -> dict[str, Any]:
        from mlops_provider.core.steps.drift import DriftParams, detect_drift

        params = self.params_for(
            DriftParams,
            model_name=self.model_name,
            features=self.features,
            alias=self.alias,
            psi_threshold=self.psi_threshold,
            missing_threshold=self.missing_threshold,
            unseen_threshold=self.unseen_threshold,
            decide_by=self.decide_by,
            min_drifted_features=self.min_drifted_features,
            persistence=self.persistence,
        )
        return self._monitor(detect_drift, params, context)


class EvaluateChampionOperator(_RetrainEmitterMixin, MlopsBaseOperator):
    """Score the champion on newly labelled data; request a retrain when its metric dropped.

    :param model_name: registry name (its ``alias`` version is scored).
    :param dataset: a labelled snapshot URI or an ``ExtractOperator`` result.
    :param metric: a scikit-learn scorer name or alias (default: the compare metric of the
        champion's verdict, else the task's default: roc_auc, log_loss or rmse).
    :param tolerance: absolute drop allowed before a retrain is requested (default 0.02; for
        lower-is-better metrics the drop is the increase).
    :param retrain_alias: name of the AssetAlias outlet (default ``mlops-retrain-requested:<model>``).

    The recorded value is the one measured when the version was evaluated (``verdict.metrics.challenger``,
    else the version's ``metrics``).
    :return: model, champion_version, metric, recorded, current, drop, tolerance, retrain, metrics
        (all current metrics), dataset, report_uri and event (the emitted extra, or None).
    """

    # model_name names the retrain-request outlet when the DAG is parsed, so it is not templated
    template_fields: Sequence[str] = ("dataset", "metric", "tolerance", "artifact_root")
    ui_color = "#fdf1dc"

    def __init__(
        self,
        *,
        model_name: str,
        dataset: Any,
        metric: str | None = None,
        tolerance: Any = 0.02,
        alias: str = CHAMPION,
        trusted_types: list[str] | None = None,
        retrain_alias: str | None = None,
        artifact_root: str | None = None,
        **kwargs: Any,
    ):
        super().__init__(artifact_root=artifact_root, **kwargs)
        self.model_name = model_name
        self.dataset = dataset
        self.metric = metric
        self.tolerance = tolerance
        self.alias = alias
        self.trusted_types = trusted_types
        self._declare_retrain_outlet(model_name, retrain_alias)

    def execute_step(self, context: Context) -> dict[str, Any]:
        from mlops_provider.core.steps.drift import ChampionCheckParams, evaluate_champion

        params = self.params_for(
            ChampionCheckParams,
            model_name=self.model_name,
            metric=self.metric,
            tolerance=self.tolerance,
            alias=self.alias,
            trusted_types=self.trusted_types,
        )
        return self._monitor(evaluate_champion, params, context)
