"""Small builders shared by tests."""

from __future__ import annotations

import datetime as dt
from typing import Any


class TaskInstanceRecord:
    """The few task-instance fields the operators read, plus the XComs they push."""

    def __init__(self, dag_id: str = "test_dag", run_id: str = "manual__2013-07-01", task_id: str = "task"):
        self.dag_id, self.run_id, self.task_id = dag_id, run_id, task_id
        self.map_index = -1
        self.try_number = 1
        self.xcoms: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.xcoms[key] = value


def context_for(task_id: str, run_id: str = "manual__2013-07-01", dag_id: str = "test_dag") -> dict[str, Any]:
    return {
        "ti": TaskInstanceRecord(dag_id, run_id, task_id),
        "data_interval_start": dt.datetime(2013, 6, 1, tzinfo=dt.timezone.utc),
        "data_interval_end": dt.datetime(2013, 7, 1, tzinfo=dt.timezone.utc),
    }
