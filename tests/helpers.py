"""Small builders shared by tests."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
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


def dag_bag_of(folder: Path, monkeypatch, name: str, files: dict[str, str] | None = None):
    """A DagBag of ``folder`` (after writing ``files`` into it) registered as its own DAG bundle, so
    dag.test() can sync and run its DAGs; fails the test on any import error."""
    from airflow.dag_processing.dagbag import DagBag

    folder.mkdir(parents=True, exist_ok=True)
    for fname, text in (files or {}).items():
        (folder / fname).write_text(text)
    local = "airflow.dag_processing.bundles.local.LocalDagBundle"
    monkeypatch.setenv(
        "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST",
        json.dumps(
            [
                {"name": name, "classpath": local, "kwargs": {"path": str(folder)}},
                {"name": "dags-folder", "classpath": local, "kwargs": {}},
            ]
        ),
    )
    bag = DagBag(dag_folder=str(folder))
    assert bag.import_errors == {}
    return bag
