"""Errors raised by the core. Each message names the parameter, column or URI concerned, what was
expected and what was got. The Airflow shell lets them through (they fail the task) or wraps the
quality-gate ones in :mod:`mlops_provider.exceptions`."""

from __future__ import annotations


class MlopsError(Exception):
    """Base class of every error the core raises on purpose."""


class InvalidInputError(MlopsError, ValueError):
    """A parameter or an input dataset is not what the step needs."""


class EmptyDatasetError(InvalidInputError):
    pass


class MissingColumnsError(InvalidInputError):
    def __init__(self, message: str, missing: list[str] | None = None):
        super().__init__(message)
        self.missing = list(missing or [])


class SingleClassLabelError(InvalidInputError):
    pass


class EstimatorNotAllowedError(InvalidInputError):
    pass


class InvalidParameterError(InvalidInputError):
    pass


class CorruptArtifactError(MlopsError):
    """A file exists but cannot be read as what it claims to be (Parquet, skops, JSON)."""


class IntegrityError(MlopsError):
    """An artifact's content does not match the sha256 recorded for it."""


class UnsafeModelError(MlopsError):
    """A model file is a pickle, or holds types outside the trusted list."""


class ModelExecutionError(MlopsError):
    """A loaded model raised while predicting. Running the same model on the same data again would
    raise again (or, for a crafted file, run it again), so the task fails without retries."""


class RegisteredModelMismatchError(MlopsError):
    """The model file about to be registered, loaded in a fresh process, predicts differently from
    the model the evaluation judged (or cannot be scored there). Nothing is registered. Carries
    ``model``, ``rows_checked``, ``rows_differing`` and ``max_diff`` when predictions were compared."""

    model: str | None = None
    rows_checked: int = 0
    rows_differing: int = 0
    max_diff: float = 0.0


class NotFoundError(MlopsError, LookupError):
    """A model, version, alias or dataset does not exist."""


class ConcurrentUpdateError(RuntimeError):
    """Too many concurrent writers won a registry update first. Not an input error: a retry of the
    task (Airflow's ``retries``) is the right response, so it is not an :class:`MlopsError`."""
