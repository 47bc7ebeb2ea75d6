"""``python -m mlops_provider.cli``."""

import sys

from mlops_provider.cli import main

sys.exit(main())
