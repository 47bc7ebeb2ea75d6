"""Write the typed form fields of estimators' parameters (JSON schema from their
``_parameter_constraints`` and docstrings), read by the retraining templates' Params form.

Usage::

    python scripts/estimator_schemas.py          # rewrite provider/mlops_provider/core/estimator_schemas.json
    python scripts/estimator_schemas.py --check  # exit 1 if the file differs from the installed sklearn
    python scripts/estimator_schemas.py --estimator mycompany.models.Ranker --output my_schemas.json
        # schemas of other estimators, in a file named by MLOPS_ESTIMATOR_SCHEMAS on the DAG processor

See :mod:`mlops_provider.core.param_forms`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mlops_provider.core import param_forms


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--estimator", action="append", help="import path (repeatable); default: the common set")
    ap.add_argument("--output", type=Path, default=param_forms.SCHEMA_FILE)
    ap.add_argument("--check", action="store_true", help="compare instead of writing")
    args = ap.parse_args(argv)
    text = param_forms.dump(param_forms.generate(tuple(args.estimator or param_forms.COMMON_ESTIMATORS)))
    if args.check:
        same = args.output.exists() and args.output.read_text(encoding="utf-8") == text
        print(f"{args.output}: {'up to date' if same else 'differs from the installed scikit-learn'}")
        return 0 if same else 1
    args.output.write_text(text, encoding="utf-8")
    print(f"wrote {args.output} ({len(text)} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
