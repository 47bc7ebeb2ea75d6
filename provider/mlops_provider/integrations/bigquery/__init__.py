"""bigquery: see :mod:`mlops_provider.integrations`."""
