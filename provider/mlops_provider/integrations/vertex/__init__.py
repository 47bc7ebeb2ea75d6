"""vertex: see :mod:`mlops_provider.integrations`."""
