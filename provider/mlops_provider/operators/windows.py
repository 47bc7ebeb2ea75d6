"""Which data a run works on: the scoring window of a scoring run, the plan of an event-triggered
retrain. Plain operators rather than ``@task`` functions in the templates, so parsing a template
does not load Airflow's decorator machinery (the DAG processor's parent process has not imported
it); everything they need at run time is imported in ``execute``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from mlops_provider.operators._base import MlopsBaseOperator

if TYPE_CHECKING:
    from airflow.sdk import Context

#: The placeholders of ``PlanEventRetrainOperator``'s ``window_sql``.
WINDOW_PLACEHOLDERS = ("{start}", "{end}")


class ScoringWindowOperator(MlopsBaseOperator):
    """The ``[start, end)`` dates a scoring run scores (see :func:`mlops_provider.chains.scoring_window`).

    A scheduled or manual run scores its data interval; a run started by a champion change
    (asset-triggered) re-scores the most recently scored window of ``model_name`` with the new
    champion, and is skipped (with everything downstream) when no window was scored yet.

    :param model_name: the registered model whose prediction sets are searched (templated).
    :return: ``["YYYY-MM-DD", "YYYY-MM-DD"]``, what the templates pull as
        ``{{ ti.xcom_pull(task_ids='window') }}``.
    """

    template_fields: Sequence[str] = ("model_name", "artifact_root")
    ui_color = "#f4f0e0"

    def __init__(self, *, model_name: str, artifact_root: str | None = None, **kwargs: Any):
        super().__init__(artifact_root=artifact_root, **kwargs)
        self.model_name = model_name

    def execute_step(self, context: Context) -> list[str]:
        from mlops_provider.chains import scoring_window

        window = scoring_window(
            self.name_param(self.model_name),
            context.get("dag_run"),
            context.get("data_interval_start"),
            context.get("data_interval_end"),
            self.artifact_root,
            artifact_conn_id=self.artifact_conn_id,
        )
        self.log.info("Scoring window of %s: %s", self.model_name, window)
        return window


class PlanEventRetrainOperator(MlopsBaseOperator):
    """Why an event-triggered retrain runs and on which data, from the run's
    ``triggering_asset_events`` (see :func:`mlops_provider.chains.plan_event_retrain`): every payload
    is validated first, so a malformed event fails the run (without retries) before any data is read.

    :param landing_uri: the prefix new labelled files land under (templated); a file event outside
        it is refused.
    :param train_months: months of history before the evaluated month to train on (templated).
    :param window_sql: SQL selecting the labelled rows of one window, with the placeholders
        ``{start}`` and ``{end}`` (ISO dates, ``start`` included, ``end`` excluded). Only those two
        are replaced (other braces are left alone, and the text is not Jinja-rendered). It gives
        ``train_sql`` for the training window and ``eval_sql`` for a retrain request's window
        (None for a new file: its URI is the evaluation set). None: both are None.
    :return: the plan: ``reason``, ``eval_uri``, ``eval_window``, ``train_window``, ``event``,
        ``events``, ``train_sql``, ``eval_sql``.
    """

    template_fields: Sequence[str] = ("landing_uri", "train_months", "artifact_root")
    ui_color = "#f4f0e0"

    def __init__(
        self,
        *,
        landing_uri: str,
        train_months: Any = 3,
        window_sql: str | None = None,
        artifact_root: str | None = None,
        **kwargs: Any,
    ):
        super().__init__(artifact_root=artifact_root, **kwargs)
        self.landing_uri = landing_uri
        self.train_months = train_months
        if window_sql is not None and (
            not isinstance(window_sql, str) or not all(p in window_sql for p in WINDOW_PLACEHOLDERS)
        ):
            # a config error: fail the DAG file's import, naming it, rather than every run
            raise self.param_error(
                "window_sql", "SQL text with the placeholders {start} and {end}", window_sql
            )
        self.window_sql = window_sql

    def sql_for(self, window: Sequence[str] | None) -> str | None:
        """``window_sql`` for ``[start, end)``; None without a window or without ``window_sql``."""
        if not window or self.window_sql is None:
            return None
        start, end = window
        return self.window_sql.replace("{start}", str(start)).replace("{end}", str(end))

    def execute_step(self, context: Context) -> dict[str, Any]:
        from mlops_provider.chains import plan_event_retrain

        months = self.train_months
        if isinstance(months, str) and months.strip().isdigit():
            months = int(months)
        if isinstance(months, bool) or not isinstance(months, int) or months < 1:
            raise self.param_error("train_months", "an int >= 1", months)
        plan = plan_event_retrain(
            context.get("triggering_asset_events"),
            artifact_root=self.artifact_root,
            landing_prefix=self.landing_uri,
            train_months=months,
        )
        plan["train_sql"] = self.sql_for(plan["train_window"])
        plan["eval_sql"] = self.sql_for(plan["eval_window"])
        self.log.info(
            "Retrain plan (%s): train on %s, evaluate on %s",
            plan["reason"],
            plan["train_window"],
            plan["eval_uri"] or plan["eval_window"],
        )
        return plan
