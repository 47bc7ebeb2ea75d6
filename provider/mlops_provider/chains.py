"""The retraining chain shared by the templates: extract -> validate -> train -> evaluate ->
(approve) -> register, with an alert after the gates. Call it inside a ``with DAG(...)`` block.

Light at import (the DAG processor imports it): operators are imported lazily by their modules.
"""

from __future__ import annotations

import datetime as dt
from typing import Any


def retrain_chain(
    *,
    model_name: str,
    conn_id: str | None,
    train_sql: str | None,
    eval_sql: str | None,
    label: str,
    features: list[str],
    expectations: Any,
    categorical: list[str] | None = None,
    eval_source_uri: str | None = None,
    train_source_uri: str | None = None,
    estimator: str = "sklearn.ensemble.HistGradientBoostingClassifier",
    model_params: Any = None,
    seed: Any = "{{ params.seed }}",
    thresholds: Any = None,
    min_improvement: Any = "{{ params.min_improvement }}",
    positive_label: Any = None,
    compare_metric: Any = None,
    promote_if: Any = "better",
    bootstrap: str = "promote",
    on_data_gate_fail: str = "fail",
    on_model_gate_fail: str = "warn",
    slice_column: str | None = None,
    slice_gates: Any = None,
    cluster_column: str | None = None,
    alert_channels: Any = ({"type": "log"},),
    require_approval: bool = False,
    intended_use: str | None = None,
    limitations: list[str] | None = None,
    io_retries: int = 2,
    io_retry_delay: dt.timedelta = dt.timedelta(minutes=1),
) -> dict[str, Any]:
    """Create the chain's tasks in the current DAG; returns them by task id.

    The first task, ``check_config``, validates the settings (estimator and parameters, seed,
    positive label, the gate's metrics, promotion rule) before anything is extracted; the train task
    checks the gate's metrics against the labels (binary or multiclass) before it fits. The Jinja
    defaults read the DAG's Params of the same names (the templates define them); the other gate
    settings take a value or a Jinja string (the templates pass their Params). ``model_params`` and
    ``thresholds`` default to the DAG's typed form fields (:func:`mlops_provider.forms.retrain_params`:
    one per hyperparameter, one per gate metric) gathered into dicts, or else to its ``model_params``
    and ``thresholds`` Params.

    Every step that reads or writes the store or a source retries ``io_retries`` times (storage or
    network outages); bad input and failed gates are not retried (they raise
    ``AirflowFailException``), and every step is idempotent, so a retry never duplicates a snapshot,
    a model version or a promotion. ``intended_use`` and ``limitations`` go into each registered
    version's model card."""
    from mlops_provider.notifications.operator import GateAlertOperator
    from mlops_provider.operators.config import CheckRetrainConfigOperator
    from mlops_provider.operators.evaluate import EvaluateModelOperator
    from mlops_provider.operators.extract import ExtractOperator
    from mlops_provider.operators.register import RegisterModelOperator
    from mlops_provider.operators.train import TrainModelOperator
    from mlops_provider.operators.validate import ValidateDataOperator

    io = {"retries": io_retries, "retry_delay": io_retry_delay}
    if model_params is None or thresholds is None:
        model_params, thresholds = _from_form(model_params, thresholds)
    check = CheckRetrainConfigOperator(
        task_id="check_config",
        model_name=model_name,
        estimator=estimator,
        model_params=model_params,
        seed=seed,
        thresholds=thresholds,
        compare_metric=compare_metric,
        promote_if=promote_if,
        min_improvement=min_improvement,
        positive_label=positive_label,
        slice_gates=slice_gates,
        retries=0,
    )
    extract_train = ExtractOperator(
        task_id="extract_train",
        dataset_name=f"{model_name}_train",
        conn_id=conn_id,
        sql=train_sql,
        source_uri=train_source_uri,
        **io,
    )
    extract_eval = ExtractOperator(
        task_id="extract_eval",
        dataset_name=f"{model_name}_eval",
        conn_id=conn_id,
        sql=eval_sql,
        source_uri=eval_source_uri,
        **io,
    )
    validate_train = ValidateDataOperator(
        task_id="validate_train",
        dataset=extract_train.output,
        expectations=expectations,
        on_fail=on_data_gate_fail,
        **io,
    )
    validate_eval = ValidateDataOperator(
        task_id="validate_eval",
        dataset=extract_eval.output,
        expectations=expectations,
        on_fail=on_data_gate_fail,
        **io,
    )
    train = TrainModelOperator(
        task_id="train",
        dataset=extract_train.output,
        label=label,
        features=features,
        categorical=categorical,
        estimator=estimator,
        model_params=model_params,
        seed=seed,
        positive_label=positive_label,
        gate_metrics="{{ ti.xcom_pull(task_ids='check_config')['gate_metrics'] }}",
        **io,
    )
    evaluate = EvaluateModelOperator(
        task_id="evaluate",
        model_name=model_name,
        model=train.output,
        dataset=extract_eval.output,
        thresholds=thresholds,
        compare_metric=compare_metric,
        min_improvement=min_improvement,
        promote_if=promote_if,
        bootstrap=bootstrap,
        on_fail=on_model_gate_fail,
        slice_column=slice_column,
        slice_gates=slice_gates,
        cluster_column=cluster_column,
        **io,
    )
    register = RegisterModelOperator(
        task_id="register",
        model_name=model_name,
        evaluation=evaluate.output,
        intended_use=intended_use,
        limitations=limitations,
        **io,
    )
    gates = ["validate_train", "validate_eval", "evaluate"]
    GateAlertOperator.check_settings(gates, list(alert_channels), owner="retrain_chain (alert_channels)")
    alert = GateAlertOperator(
        task_id="alert", gate_task_ids=gates, channels=list(alert_channels), trigger_rule="all_done"
    )
    check >> [extract_train, extract_eval]
    validate_train >> train
    validate_eval >> evaluate
    [validate_train, validate_eval, evaluate] >> alert
    tasks = {
        t.task_id: t
        for t in (
            check,
            extract_train,
            extract_eval,
            validate_train,
            validate_eval,
            train,
            evaluate,
            register,
            alert,
        )
    }
    if require_approval:
        from airflow.providers.standard.operators.hitl import ApprovalOperator

        approve_promotion = ApprovalOperator(
            task_id="approve_promotion",
            subject=f"Promote the new {model_name} version?",
            # the verdict, and with slice gates the per-slice table (value, rows, both models)
            body="{{ ti.xcom_pull(task_ids='evaluate')['summary'] }}\n\n"
            "{{ ti.xcom_pull(task_ids='evaluate').get('slice_table', '') }}",
            response_timeout=dt.timedelta(days=2),
        )
        evaluate >> approve_promotion >> register
        tasks["approve_promotion"] = approve_promotion
    return tasks


def _from_form(model_params: Any, thresholds: Any) -> tuple[Any, Any]:
    """The current DAG's form fields gathered into ``model_params`` / ``thresholds`` (Jinja)."""
    from airflow.sdk.definitions._internal.contextmanager import DagContext

    from mlops_provider.forms import form_values

    dag = DagContext.get_current()
    params = dag.params if dag is not None else {}
    hyper, gates = form_values(params) if dag is not None else (None, None)
    if model_params is None:
        model_params = hyper or ("{{ params.model_params }}" if "model_params" in params else None)
    if thresholds is None:
        thresholds = gates or ("{{ params.thresholds }}" if "thresholds" in params else None)
    return model_params, thresholds


def _month_add(day: dt.date, months: int) -> dt.date:
    y, m = divmod(day.year * 12 + day.month - 1 + months, 12)
    return dt.date(y, m + 1, 1)


def plan_event_retrain(
    triggering_asset_events: Any, *, artifact_root: str | None, landing_prefix: str, train_months: int
) -> dict[str, Any]:
    """Why an event-triggered retrain runs and on which data, from ``triggering_asset_events``
    (the ``plan`` task of mlops_retrain_on_event:
    :class:`~mlops_provider.operators.windows.PlanEventRetrainOperator`).

    Every payload is validated first (a bad one fails the run before any data is read). A new file
    under ``landing_prefix`` (named ``..._YYYY-MM.parquet``) is that month's labelled data: it is the
    evaluation set and the ``train_months`` months before it are trained on. A retrain request
    (drift, performance) names its window: evaluate on it, train on the months before it. With
    several events the newest file wins, else the newest request.
    """
    import re

    from mlops_provider.core.errors import InvalidInputError
    from mlops_provider.core.events import NewDataEvent, RetrainRequest, parse_triggering_events
    from mlops_provider.hooks.artifacts import resolve_root

    root = resolve_root(artifact_root)
    parsed = parse_triggering_events(triggering_asset_events, root, allowed_prefix=landing_prefix)
    if not parsed:
        raise InvalidInputError("This run has no triggering asset events; trigger it through its assets.")
    files = [p for p in parsed if isinstance(p, NewDataEvent)]
    requests = [p for p in parsed if isinstance(p, RetrainRequest)]
    if files:
        event = max(files, key=lambda e: e.mtime)
        m = re.search(r"(\d{4})-(\d{2})", event.uri.rsplit("/", 1)[-1])
        if not m:
            raise InvalidInputError(
                f"The new file {event.uri!r} must be named after its month (e.g. flights_2013-07.parquet)."
            )
        start = dt.date(int(m.group(1)), int(m.group(2)), 1)
        plan = {"reason": "new_data", "eval_uri": event.uri, "eval_window": None, "event": event.to_extra()}
    elif requests:
        req = requests[-1]
        if not req.window:
            raise InvalidInputError(f"The {req.reason} retrain request for {req.model!r} names no window.")
        start = dt.date.fromisoformat(req.window["start"][:10])
        end = dt.date.fromisoformat(req.window["end"][:10])
        plan = {
            "reason": req.reason,
            "eval_uri": None,
            "eval_window": [start.isoformat(), end.isoformat()],
            "event": req.to_extra(),
        }
    else:
        raise InvalidInputError(f"None of the triggering events is a new file or a retrain request: {parsed}")
    plan["train_window"] = [_month_add(start, -int(train_months)).isoformat(), start.isoformat()]
    plan["events"] = len(parsed)
    return plan


def scoring_window(
    model_name: str,
    dag_run: Any,
    start: Any,
    end: Any,
    artifact_root: str | None = None,
    *,
    artifact_conn_id: str | None = None,
) -> list[str]:
    """``[start, end)`` dates to score: the run's data interval; for a run started by a champion
    change (asset-triggered), the most recently scored window, so it is re-scored with the new champion
    (:func:`mlops_provider.core.steps.score.scoring_window`). Skips the run if none was scored yet.
    The templates' ``window`` task (:class:`~mlops_provider.operators.windows.ScoringWindowOperator`)."""
    from airflow.sdk.exceptions import AirflowSkipException

    from mlops_provider.core.steps.score import scoring_window as choose_window
    from mlops_provider.hooks.artifacts import ArtifactStoreHook

    window = choose_window(
        model_name,
        store=lambda: ArtifactStoreHook(artifact_root, artifact_conn_id).get_store(),
        run_type=getattr(dag_run, "run_type", ""),
        start=start,
        end=end,
    )
    if window is None:
        raise AirflowSkipException(f"No window of {model_name} has been scored yet; nothing to re-score.")
    return window


def key_time(store: Any, key: str) -> float:
    """When ``key`` was written (local mtime, S3 LastModified, GCS generation) as a sortable number."""
    from mlops_provider.core.partitions import key_time as _key_time

    return _key_time(store, key)
