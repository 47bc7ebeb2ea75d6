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

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import Asset, AssetAlias

from mlops_provider.core.names import CHAMPION
from mlops_provider.operators._base import MlopsBaseOperator

if TYPE_CHECKING:
    from airflow.sdk import Context

    from mlops_provider.core.events import RetrainRequest
    from mlops_provider.core.storage import ArtifactStore

PROFILE_FILE = "profile.json"


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

    def _emit_retrain(
        self, context: Context, store: ArtifactStore, request: RetrainRequest
    ) -> dict[str, Any]:
        from mlops_provider.core.events import RetrainRequest as _Request

        extra = request.to_extra()
        _Request.parse(extra, artifact_root=store.root)  # never send what a consumer would refuse
        events = context.get("outlet_events")
        if events is None:
            self.log.warning(
                "No outlet_events in the context: retrain request for %s not emitted", request.model
            )
            return extra
        events[self.retrain_alias].add(Asset(request.asset_uri), extra=extra)
        self.log.info(
            "Retrain requested for %s (%s): asset event on %s",
            request.model,
            request.reason,
            request.asset_uri,
        )
        return extra

    @staticmethod
    def _window(context: Context) -> dict[str, str] | None:
        start, end = context.get("data_interval_start"), context.get("data_interval_end")
        if start is None or end is None:
            return None
        return {"start": start.isoformat(), "end": end.isoformat()}


def _number(
    op: MlopsBaseOperator, value: Any, name: str, *, minimum: float = 0.0, strict: bool = True
) -> float:
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError as err:
            raise op.param_error(name, "a number", value) from err
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or (value <= minimum if strict else value < minimum)
    ):
        raise op.param_error(name, f"a number {'>' if strict else '>='} {minimum}", value)
    return float(value)


def _int(op: MlopsBaseOperator, value: Any, name: str) -> int:
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise op.param_error(name, "an int >= 1", value)
    return value


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

    # ------------------------------------------------------------------ pieces
    def _psi_threshold(self) -> float | dict[str, float]:
        value = self.psi_threshold
        if isinstance(value, dict) or (isinstance(value, str) and value.strip().startswith("{")):
            return self.as_dict(value, "psi_threshold", allow_none=False)
        return _number(self, value, "psi_threshold")

    def _profile(
        self, store: ArtifactStore, ref: dict[str, Any], features: list[str], categorical: list[str]
    ):
        """The reference profile, from the cache next to the snapshot or built (and cached) now."""
        from mlops_provider.core.datasets import read_dataframe, read_manifest
        from mlops_provider.core.drift import ReferenceProfile, build_profile

        snap = read_manifest(store, ref["uri"])
        key = f"{store.key_of(snap.uri)}/{PROFILE_FILE}"
        if store.exists(key):
            cached = ReferenceProfile.from_dict(store.read_json(key))
            fits = all(
                f in cached.features and (cached.features[f].kind == "categorical") == (f in categorical)
                for f in features
            )
            if fits and cached.source.get("sha256") == snap.sha256:
                cached.features = {f: cached.features[f] for f in features}
                return cached, store.uri(key), True
            self.log.info("Cached profile %s does not cover %s; rebuilding it", store.uri(key), features)
        df = read_dataframe(store, snap.uri, columns=features)
        source = {"uri": snap.uri, "sha256": snap.sha256, "rows": snap.rows}
        profile = build_profile(df, features, categorical, source=source)
        store.write_json(key, profile.to_dict())  # atomic: readers see the whole profile or none
        self.log.info(
            "Built the reference profile of %s (%d rows) -> %s", snap.uri, snap.rows, store.uri(key)
        )
        return profile, store.uri(key), False

    def _append_history(
        self, store: ArtifactStore, model: str, entry: dict[str, Any]
    ) -> list[dict[str, Any]]:
        folder = f"drift/{model}/history"
        sha12 = entry["window_sha256"][:12]
        for name in store.list_dir(folder):  # the same window again (a retry, a clear): replace it
            if name.endswith(f"-{sha12}.json"):
                store.delete(f"{folder}/{name}")
        stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
        store.write_json(f"{folder}/{stamp}-{sha12}.json", entry)
        return [
            store.read_json(f"{folder}/{n}")
            for n in store.list_dir(folder)
            if n.endswith(".json") and not n.startswith(".")
        ]

    # ------------------------------------------------------------------ run
    def execute_step(self, context: Context) -> dict[str, Any]:
        from mlops_provider.core.datasets import read_dataframe, read_manifest
        from mlops_provider.core.drift import RetrainPolicy, compare
        from mlops_provider.core.errors import NotFoundError
        from mlops_provider.core.events import RetrainRequest
        from mlops_provider.core.modeling import FeatureSpec, check_columns
        from mlops_provider.core.names import check_name

        model = check_name(self.model_name, "model_name", self.owner_name())
        psi_threshold = self._psi_threshold()
        missing_threshold = _number(self, self.missing_threshold, "missing_threshold")
        unseen_threshold = _number(self, self.unseen_threshold, "unseen_threshold")
        policy = RetrainPolicy(
            _int(self, self.min_drifted_features, "min_drifted_features"),
            _int(self, self.persistence, "persistence"),
        )
        if self.features is not None and (
            not isinstance(self.features, list)
            or not self.features
            or not all(isinstance(f, str) for f in self.features)
        ):
            raise self.param_error("features", "a non-empty list of column names or None", self.features)
        store = self.store()
        mv = self.model_registry(store).resolve(model, self.alias)
        ref = (mv.lineage or {}).get("train_dataset")
        if not isinstance(ref, dict) or not isinstance(ref.get("uri"), str):
            raise NotFoundError(
                f"{model} v{mv.version} records no training snapshot (lineage['train_dataset']['uri']); got {ref!r}. "
                "The drift reference is the champion's training data."
            )
        spec = FeatureSpec.from_dict(mv.spec)
        features = list(self.features or spec.features)
        categorical = [f for f in features if f in spec.categorical]
        profile, profile_uri, reused = self._profile(store, ref, features, categorical)

        snap = read_manifest(store, self.as_uri(self.dataset, "dataset"))
        check_columns(snap.column_names, features, "feature", f"The drift window {snap.uri}")
        df = read_dataframe(store, snap.uri, columns=features)
        report = compare(
            profile,
            df,
            psi_threshold=psi_threshold,
            missing_threshold=missing_threshold,
            unseen_threshold=unseen_threshold,
            decide_by=self.decide_by,
            reference_info={**profile.source, "model": model, "version": mv.version},
            current_info={"uri": snap.uri, "sha256": snap.sha256},
        )
        report_key = f"drift/{model}/{snap.sha256}.json"
        report.report_uri = store.uri(report_key)
        out = report.to_dict()
        out["champion_version"] = mv.version
        store.write_json(report_key, out)
        entry = {
            "model": model,
            "champion_version": mv.version,
            "window_sha256": snap.sha256,
            "window_uri": snap.uri,
            "created_at": report.created_at,
            "report_uri": report.report_uri,
            "n_drifted": out["n_drifted"],
            "drifted_features": out["drifted_features"],
        }
        history = [
            h for h in self._append_history(store, model, entry) if h.get("champion_version") == mv.version
        ]
        retrain, why = policy.decide(history)
        self.log.info("%s; %s -> %s", report.summary(), why, "retrain" if retrain else "no retrain")
        event = None
        if retrain:
            request = RetrainRequest(
                model=model,
                reason="drift",
                champion_version=mv.version,
                window=self._window(context),
                drifted_features=out["drifted_features"],
                scores=dict(out["scores"]),
                report_uri=report.report_uri,
            )
            event = self._emit_retrain(context, store, request)
        self.lineage_record = {
            "inputs": [f"{ref['uri']}/data.parquet", (snap.data_uri, snap.columns)],
            "outputs": [report.report_uri],
            "step": "drift",
            "details": {"n_drifted": out["n_drifted"], "retrain": retrain, "champion_version": mv.version},
        }
        out.update(
            retrain=retrain,
            policy_reason=why,
            profile_uri=profile_uri,
            profile_reused=reused,
            event=event,
            history=[{k: h[k] for k in ("window_sha256", "n_drifted")} for h in history],
        )
        return out


class EvaluateChampionOperator(_RetrainEmitterMixin, MlopsBaseOperator):
    """Score the champion on newly labelled data; request a retrain when its metric dropped.

    :param model_name: registry name (its ``alias`` version is scored).
    :param dataset: a labelled snapshot URI or an ``ExtractOperator`` result.
    :param metric: a scikit-learn scorer name or alias (default: the compare metric of the champion's verdict, else the task's default: roc_auc, log_loss or rmse).
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
        from mlops_provider.core import metrics as M
        from mlops_provider.core.datasets import read_dataframe, read_manifest
        from mlops_provider.core.errors import NotFoundError
        from mlops_provider.core.evaluation import encode, metric_names, metrics_of, score_frame
        from mlops_provider.core.events import RetrainRequest
        from mlops_provider.core.modeling import FeatureSpec
        from mlops_provider.core.names import check_name

        model_name = check_name(self.model_name, "model_name", self.owner_name())
        tolerance = _number(self, self.tolerance, "tolerance", strict=False)
        if self.metric is not None:
            M.resolve(self.metric, "metric", self.owner_name())
        store = self.store()
        model, mv = self.model_registry(store).load(model_name, self.alias, self.trusted_types or ())
        spec = FeatureSpec.from_dict(mv.spec)
        if self.metric is not None:
            M.check_fit(M.resolve(self.metric), spec.kind, "metric", self.owner_name())
        metric = self.metric or (mv.verdict or {}).get("compare_metric") or M.DEFAULT_COMPARE[spec.kind]
        recorded = (
            ((mv.verdict or {}).get("metrics") or {})
            .get("challenger", {})
            .get(metric, mv.metrics.get(metric))
        )
        if recorded is None:
            raise NotFoundError(
                f"{model_name} v{mv.version} has no recorded {metric!r} (verdict metrics or version metrics); "
                f"recorded: {sorted(mv.metrics)}. Pass a metric it has."
            )
        snap = read_manifest(store, self.as_uri(self.dataset, "dataset"))
        df = read_dataframe(store, snap.uri)
        where = f"The labelled snapshot {snap.uri}"
        _, y, preds = score_frame(model, df, spec, where)
        metrics = metrics_of(encode(y, preds, spec, where), metric_names(spec.kind, compare_metric=metric))
        current = float(metrics[metric])
        recorded = float(recorded)
        drop = recorded - current if M.resolve(metric).higher_is_better else current - recorded
        retrain = drop > tolerance
        folder = self.run_folder(context)
        out = {
            "model": model_name,
            "champion_version": mv.version,
            "metric": metric,
            "recorded": recorded,
            "current": current,
            "drop": round(drop, 6),
            "tolerance": tolerance,
            "retrain": retrain,
            "metrics": {k: float(v) for k, v in metrics.items()},
            "rows": int(len(y)),
            "dataset": {"uri": snap.uri, "sha256": snap.sha256, "rows": snap.rows},
            "report_uri": store.uri(f"{folder}/champion_evaluation.json"),
        }
        store.write_json(f"{folder}/champion_evaluation.json", out)
        self.log.info(
            "%s v%d %s: recorded %.4f, now %.4f (drop %.4f, tolerance %.4f) -> %s",
            model_name,
            mv.version,
            metric,
            recorded,
            current,
            drop,
            tolerance,
            "retrain" if retrain else "no retrain",
        )
        event = None
        if retrain:
            request = RetrainRequest(
                model=model_name,
                reason="performance",
                champion_version=mv.version,
                window=self._window(context),
                scores={"recorded": recorded, "current": current, "drop": round(drop, 6)},
                report_uri=out["report_uri"],
            )
            event = self._emit_retrain(context, store, request)
        self.lineage_record = {
            "inputs": [mv.model_uri, (snap.data_uri, snap.columns)],
            "outputs": [out["report_uri"]],
            "step": "evaluate_champion",
            "details": {k: out[k] for k in ("metric", "drop", "retrain")},
        }
        out["event"] = event
        return out
