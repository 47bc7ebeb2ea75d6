"""The gate results of a DAG run, for an alert: each gate task's XCom ``return_value`` (failed and
skipped tasks included: a failed gate pushes its result before raising) and its state."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from mlops_provider.core.errors import InvalidParameterError

if TYPE_CHECKING:
    from airflow.sdk import Context

    from mlops_provider.notifications.render import GateAlert

log = logging.getLogger(__name__)


def _state_name(state: Any) -> str | None:
    if state is None:
        return None
    return str(getattr(state, "value", state)).lower()


def collect_gate_results(context: Context, task_ids: Iterable[str]) -> list[dict[str, Any]]:
    """Each gate task's XCom ``return_value`` in this run (failed and skipped tasks included), tagged
    with ``task_id`` and ``task_state``; a task without a result gives ``{"task_id", "task_state"}``."""
    ti = context.get("ti")
    dag_run = context.get("dag_run")
    dag_id = getattr(ti, "dag_id", None) or getattr(dag_run, "dag_id", None)
    run_id = getattr(ti, "run_id", None) or context.get("run_id") or getattr(dag_run, "run_id", None)
    task_ids = list(task_ids)
    states = _task_states(context, dag_id, run_id, task_ids)
    out: list[dict[str, Any]] = []
    for task_id in task_ids:
        value = _pull(ti, dag_id, run_id, task_id)
        items = value if isinstance(value, list) else [value]
        for map_index, item in enumerate(items):
            entry = dict(item) if isinstance(item, dict) else {}
            entry["task_id"] = task_id
            entry["task_state"] = states.get(task_id)
            if isinstance(value, list) and len(items) > 1:
                entry["map_index"] = map_index
            if not entry.get("gate") and entry["task_state"] != "success":
                cause = _failure_cause(context, dag_id, run_id, task_id, entry["task_state"])
                if cause:
                    entry["cause"] = cause
            out.append(entry)
    return out


def _failure_cause(
    context: Context, dag_id: str, run_id: str, task_id: str, state: str | None
) -> dict[str, Any] | None:
    """For a gate task without a result: the task that failed (itself, or a failed upstream task)
    with the error it recorded (``{"task_id", "error", "message"}``), if any."""
    ti = context.get("ti")
    if state == "failed":
        failed = [task_id]
    else:
        states = _task_states(context, dag_id, run_id, None)
        failed = [t for t, s in states.items() if s == "failed" and t != task_id]
        upstream = _upstream_ids(context, task_id)
        if upstream is not None:
            failed = [t for t in failed if t in upstream]
    for failed_id in failed:
        recorded = _pull(ti, dag_id, run_id, failed_id, key="mlops_error")
        if isinstance(recorded, dict):
            return {"task_id": failed_id, "error": recorded.get("error"), "message": recorded.get("message")}
    return {"task_id": failed[0], "error": None, "message": None} if failed else None


def _upstream_ids(context: Context, task_id: str) -> set[str] | None:
    dag = context.get("dag") or getattr(getattr(context.get("ti"), "task", None), "dag", None)
    try:
        return set(dag.get_task(task_id).get_flat_relative_ids(upstream=True))
    except Exception:
        return None


def _pull(ti: Any, dag_id: str, run_id: str, task_id: str, key: str = "return_value") -> Any:
    errors = []
    if ti is not None:
        try:
            return ti.xcom_pull(task_ids=task_id, key=key)
        except Exception as err:  # e.g. a DAG-level callback run in-process by dag.test(): no supervisor
            errors.append(err)
    try:
        from airflow.sdk.execution_time.xcom import XCom

        return XCom.get_one(key=key, dag_id=dag_id, task_id=task_id, run_id=run_id)
    except Exception as err:
        errors.append(err)
    try:  # same process as the metadata DB (dag.test, or a standalone scheduler callback)
        from airflow.models.xcom import XComModel
        from airflow.utils.session import create_session

        with create_session() as session:
            row = session.scalars(
                XComModel.get_many(run_id=run_id, key=key, task_ids=task_id, dag_ids=dag_id, limit=1)
            ).first()
            return XComModel.deserialize_value(row) if row is not None else None
    except Exception as err:
        errors.append(err)
    log.warning("Could not read the XCom %r of task %r: %s", key, task_id, "; ".join(map(str, errors)))
    return None


def _task_states(
    context: Context, dag_id: str, run_id: str, task_ids: list[str] | None
) -> dict[str, str | None]:
    """States of ``task_ids`` (every task of the run if None) in this run."""
    ti = context.get("ti")
    states: dict[str, str | None] = {}
    if ti is not None:
        try:
            found = ti.get_task_states(dag_id=dag_id, task_ids=task_ids, run_ids=[run_id])
            states.update({k: _state_name(v) for k, v in (found.get(run_id) or {}).items()})
        except Exception as err:
            log.debug("get_task_states unavailable here: %s", err)
    if not states:
        dag_run = context.get("dag_run")
        try:
            for t in dag_run.get_task_instances():
                if task_ids is None or t.task_id in task_ids:
                    states[t.task_id] = _state_name(t.state)
        except Exception:
            pass
    own = getattr(ti, "task_id", None)
    if (task_ids is None or own in task_ids) and getattr(ti, "state", None) is not None:
        states[own] = _state_name(ti.state)  # the callback's own task: its state now (failed / success)
    return states


def _task_links(context: Context, base_url: str, task_ids: Iterable[str]) -> dict[str, str]:
    ti = context.get("ti")
    links = {}
    own = getattr(ti, "task_id", None)
    if own in set(task_ids):
        try:
            links[own] = ti.log_url  # RuntimeTaskInstance.log_url: the Airflow 3 UI page with try_number
        except Exception:
            pass
    return links


def alert_for(
    context: Context, task_ids: list[str], base_url: str | None, artifact_root: str | None
) -> GateAlert:
    ti = context.get("ti")
    dag_run = context.get("dag_run")
    dag_id = getattr(ti, "dag_id", None) or getattr(dag_run, "dag_id", None)
    run_id = getattr(ti, "run_id", None) or context.get("run_id") or getattr(dag_run, "run_id", None)
    from mlops_provider.notifications.render import airflow_base_url, render_gate_alert

    base = (base_url or airflow_base_url()).rstrip("/")
    results = collect_gate_results(context, task_ids)
    return render_gate_alert(
        results,
        dag_id=dag_id,
        run_id=run_id,
        task_links=_task_links(context, base, task_ids),
        base_url=base,
        artifact_root=artifact_root,
    )


def task_id_list(value: Any, owner: str, allow_none: bool = False) -> list[str] | None:
    if value is None and allow_none:
        return None
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, (list, tuple)) or not value or not all(isinstance(t, str) and t for t in value):
        raise InvalidParameterError(
            f"The 'gate_task_ids' parameter of {owner} must be a non-empty list of task ids. Got {value!r} "
            "instead."
        )
    return list(value)
