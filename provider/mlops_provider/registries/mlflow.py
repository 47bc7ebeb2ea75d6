"""Moved to :mod:`mlops_provider.integrations.mlflow.registry`; this name stays importable (it is the
same module object, so patching one patches the other)."""

import sys

from mlops_provider.integrations.mlflow import registry as _registry

sys.modules[__name__] = _registry
