"""mlflow: see :mod:`mlops_provider.integrations`."""
