"""Who runs a step: an Airflow task instance (built by the operators) or a notebook (:meth:`RunInfo.local`).

A step uses it for three things: the folder its artifacts go to (stable across retries, so a
re-run overwrites rather than piles up), the idempotency key of what it registers, and the lineage
it records.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class RunInfo:
    dag_id: str
    run_id: str
    task_id: str
    map_index: int = -1
    try_number: int | None = None
    data_interval_start: str | None = None
    data_interval_end: str | None = None
    code_file: str | None = None  # the DAG file (its git commit / hash goes into lineage)
    bundle_version: str | None = None
    actor_kind: str = "airflow"
    #: The Airflow UI's base URL ("" = links relative to the api-server's host; None = not in Airflow):
    #: reports link back to their run and the registry with it.
    ui_base_url: str | None = None

    @classmethod
    def local(cls, task_id: str = "step", run_id: str | None = None, code_file: str | None = None) -> RunInfo:
        """A run outside Airflow (a notebook, a script): dag_id ``local``, run_id a UTC timestamp."""
        run_id = run_id or dt.datetime.now(dt.timezone.utc).strftime("local__%Y%m%dT%H%M%S%fZ")
        return cls("local", run_id, task_id, code_file=code_file, actor_kind="local")

    def for_task(self, task_id: str) -> RunInfo:
        """The same run, another step (a notebook runs several steps under one run id)."""
        from dataclasses import replace

        return replace(self, task_id=task_id, map_index=-1)

    @property
    def run_key(self) -> str:
        """``dag/run/task[/map_index]``: what makes a registration idempotent across retries."""
        key = f"{self.dag_id}/{self.run_id}/{self.task_id}"
        return key if self.map_index in (-1, None) else f"{key}/{self.map_index}"

    @property
    def folder(self) -> str:
        """Artifact key of this step's own folder, ``runs/<dag>/<run>/<task>`` (safe segments)."""
        from mlops_provider.core.names import run_folder

        return f"runs/{run_folder(self.dag_id, self.run_id, self.task_id)}"

    @property
    def dag_run_path(self) -> str:
        from mlops_provider.core.names import run_folder

        return run_folder(self.dag_id, self.run_id)

    @property
    def actor(self) -> str:
        return f"{self.actor_kind}:{self.dag_id}/{self.run_id}"

    def report_links(self, model: str | None = None, snapshot_uri: str | None = None, store=None):
        """The links a report opens with: its Airflow run, the model's registry page, the snapshot it
        read and the registry (only those known; none outside Airflow)."""
        if self.ui_base_url is None or self.actor_kind != "airflow":
            return []
        from mlops_provider.urls import (
            dag_run_url,
            model_url,
            open_in_airflow_url,
            registry_url,
            snapshot_url,
        )

        base = self.ui_base_url
        links = [("Run", open_in_airflow_url(dag_run_url("", self.dag_id, self.run_id), base))]
        if model:
            links.append((f"Model {model}", model_url(model, base)))
        if snapshot_uri and store is not None:
            links.append(("Snapshot", snapshot_url(store, snapshot_uri, base)))
        links.append(("Model registry", registry_url(base)))
        return links

    def lineage(self) -> dict[str, Any]:
        """Where a model came from, as the registry records it."""
        from mlops_provider.core.lineage import code_version

        return {
            "dag_id": self.dag_id,
            "run_id": self.run_id,
            "task_id": self.task_id,
            "try_number": self.try_number,
            "data_interval_start": self.data_interval_start,
            "data_interval_end": self.data_interval_end,
            "code": code_version(self.code_file),
            "bundle_version": self.bundle_version,
        }
