"""sagemaker: see :mod:`mlops_provider.integrations`."""
