"""Operators: thin shells over :mod:`mlops_provider.core`. Import them from their modules, e.g.
``from mlops_provider.operators.train import TrainModelOperator``."""
