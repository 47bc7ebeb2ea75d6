"""Moved to :mod:`mlops_provider.integrations.bigquery.source`; this name stays importable."""

import sys

from mlops_provider.integrations.bigquery import source as _source

sys.modules[__name__] = _source
