"""Exceptions the operators raise into Airflow.

A failed quality gate is not a transient error: it subclasses ``AirflowFailException`` so the task
fails at once instead of being retried. The verdict or report travels with the exception and has
already been pushed to XCom when it is raised, so the UI shows what failed.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk.exceptions import AirflowFailException


class QualityGateFailed(AirflowFailException):
    """A data or model quality gate did not pass."""

    gate = "quality"

    def __init__(self, message: str, result: dict[str, Any] | None = None):
        super().__init__(message)
        self.result = result or {}


class DataValidationFailed(QualityGateFailed):
    gate = "data"


class ModelGateFailed(QualityGateFailed):
    gate = "model"
