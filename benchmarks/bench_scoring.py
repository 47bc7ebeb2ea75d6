"""Benchmark: batch scoring throughput and peak memory of ``mlops_provider.core.scoring.batch_score``.

Usage::

    python benchmarks/bench_scoring.py                        # 1M and 5M rows (the reference figures)
    python benchmarks/bench_scoring.py --quick                # 200k rows, small model: well under a minute
    python benchmarks/bench_scoring.py --rows 1000000,5000000 --repeat 3
    python benchmarks/bench_scoring.py --batch-size 262144    # try another batch size for "ours"
    python benchmarks/bench_scoring.py --workdir /tmp/bench   # keep (and reuse) the model and inputs
    python benchmarks/bench_scoring.py --ours-from /tmp/old_scoring.py   # A/B against another scoring.py

What is measured
----------------
Synthetic data (seeded numpy): an int64 ``id`` column and 20 float64 features ``f00``..``f19``
(about 1% missing values in four of them), written as a dataset snapshot (Parquet, zstd, 128k-row
row groups, i.e. what ``ExtractOperator`` writes) into a temporary ``file://`` ArtifactStore. The
model is our pipeline, ``train_model(..., estimator="sklearn.ensemble.HistGradientBoostingClassifier",
params={"max_iter": 100, "early_stopping": False}, seed=0)``, fitted on 200k separate rows (50k
with ``--quick``) and saved/loaded with skops as the registry does.

Each method runs in a FRESH subprocess, so the peak RSS it reports (``VmHWM`` of the child, i.e.
its own high-water mark; ``ru_maxrss`` where /proc is missing) belongs to that method alone. In
every method the model is loaded and warmed up (one predict on 1,024 synthetic rows) before the
clock starts; the peak includes the interpreter, the imports and the model (the "base" column is
the RSS just before the clock starts). With ``--repeat N`` the methods run interleaved and the
medians are reported.

Other columns: ``cpu s`` is the CPU time of the timed section over all threads, and ``other load``
the CPUs kept busy by OTHER processes meanwhile (from /proc/stat, minus the child's own CPU time).
On a small shared machine the latter matters: a second busy process turns a 2-thread OpenMP
predict into a crawl, so the script warns when it saw more than a quarter of a CPU of outside load.

* ``ours``         -- ``batch_score(store, model, spec, ..., passthrough=["id"])``: Parquet in,
                      Parquet out (``id, prediction, score, model_version``), atomic, manifest last.
* ``compiled``     -- the same call with ``compiled="require"``: the HistGradientBoosting trees run
                      as C compiled by Treelite + TL2cgen (``mlops_provider.core.compiled``); the
                      compile (or cache lookup) happens before the clock, the check against
                      scikit-learn on a sample of the input inside it. ``ours`` passes
                      ``compiled="off"``.
* ``pandas``       -- ``pd.read_parquet`` -> ``prepare_frame`` -> ``predict_scores`` (i.e.
                      ``model.predict_proba``) -> ``DataFrame.to_parquet`` (zstd), same columns.
* ``predict-only`` -- the whole file already loaded and prepared in memory; only
                      ``model.predict_proba(X)`` is timed (the ceiling for ``ours``).

After each size, a verification child checks that ``ours`` and ``pandas`` wrote identical ``id``,
``prediction`` and ``score`` columns (exact equality), and ``compiled`` identical ``id`` and
``prediction`` and ``score`` within 1e-9.

Targets (printed as PASS/MISS; the script exits 0 either way, these are figures, not tests):

* ours / pandas throughput       >= 1.0   (at every size)
* ours / predict-only throughput >= 0.75  (at every size)
* ours peak RSS, largest / smallest size <= 1.2  (memory bounded whatever the input size)
* ours peak RSS at 5M rows (or the largest size) < 1024 MiB
* compiled / predict-only throughput >= 2.0 (at every size); its peak RSS flat and < 1024 MiB

They are meant for 1M+ rows: at ``--quick``'s 200k rows ``ours`` has two batches (131,072 rows
each by default), too few to fill its pipeline, so the quick run is a smoke test, not a figure.

Only the standard library is imported in the parent process; the children import the provider
from the repository checkout (``provider/`` is put on ``sys.path`` if the package is not installed).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from _common import _busy_cpu_seconds, _children_cpu_seconds, _ensure_provider_importable, _rss_mib  # noqa: E402

N_FEATURES = 20
LABEL = "label"
ESTIMATOR = "sklearn.ensemble.HistGradientBoostingClassifier"
MODEL_PARAMS = {"max_iter": 100, "early_stopping": False}
GEN_CHUNK = 500_000
METHODS = ("ours", "compiled", "pandas", "predict-only")


# ---------------------------------------------------------------------------------- child helpers


def _features(rng, n: int):
    """n rows of the 20 synthetic features (float64), as a dict of numpy arrays."""
    import numpy as np

    cols = {}
    for j in range(N_FEATURES):
        kind = j % 4
        if kind == 0:
            x = rng.standard_normal(n)
        elif kind == 1:
            x = rng.uniform(0.0, 100.0, n)
        elif kind == 2:
            x = rng.exponential(2.0, n)
        else:
            x = rng.integers(0, 24, n).astype(np.float64)
        if j in (3, 7, 11, 15):
            x[rng.random(n) < 0.01] = np.nan
        cols[f"f{j:02d}"] = x
    return cols


def _label(cols, rng):
    import numpy as np

    z = (
        0.8 * cols["f00"]
        - 0.03 * cols["f01"]
        + 0.4 * np.sin(cols["f02"])
        + 0.1 * np.nan_to_num(cols["f03"]) * cols["f04"]
        + 0.5 * (np.nan_to_num(cols["f07"]) > 12)
        - 0.2 * cols["f08"] ** 2
        + 0.5
    )
    p = 1.0 / (1.0 + np.exp(-z))
    return (rng.random(len(p)) < p).astype(np.int64)


def child_setup(a) -> dict:
    """Train and save the model, write one input snapshot per size."""
    _ensure_provider_importable()
    import numpy as np
    import pandas as pd
    import pyarrow as pa
    import sklearn

    from mlops_provider.core.datasets import write_snapshot
    from mlops_provider.core.modeling import train_model
    from mlops_provider.core.serialization import dump_model, sha256_bytes
    from mlops_provider.core.storage import ArtifactStore

    store = ArtifactStore(f"file://{a.workdir}/store")
    rng = np.random.default_rng([a.seed, 1])
    cols = _features(rng, a.train_rows)
    cols[LABEL] = _label(cols, rng)
    t0 = time.perf_counter()
    pipe, tr = train_model(pd.DataFrame(cols), label=LABEL, estimator=ESTIMATOR, params=MODEL_PARAMS, seed=0)
    train_s = time.perf_counter() - t0
    data = dump_model(pipe)
    store.write_bytes("models/bench/model.skops", data)
    store.write_json("models/bench/spec.json", tr.spec.to_dict())

    inputs = {}
    for n in a.rows:

        def batches(n=n):
            for start in range(0, n, GEN_CHUNK):
                m = min(GEN_CHUNK, n - start)
                r = np.random.default_rng([a.seed, 2, n, start])
                c = {"id": np.arange(start, start + m, dtype=np.int64)}
                c.update(_features(r, m))
                yield pa.table(c)

        snap = write_snapshot(store, f"score_{n}", batches(), source="synthetic")
        inputs[str(n)] = {"uri": snap.data_uri, "bytes": snap.size_bytes}
    return {
        "store": store.root,
        "model_key": "models/bench/model.skops",
        "model_sha256": sha256_bytes(data),
        "spec_key": "models/bench/spec.json",
        "train_rows": a.train_rows,
        "train_seconds": round(train_s, 2),
        "inputs": inputs,
        "versions": {
            "python": platform.python_version(),
            "numpy": np.__version__,
            "pandas": pd.__version__,
            "pyarrow": pa.__version__,
            "scikit-learn": sklearn.__version__,
        },
    }


def _load(setup: dict):
    from mlops_provider.core.modeling import FeatureSpec
    from mlops_provider.core.serialization import load_model
    from mlops_provider.core.storage import ArtifactStore

    store = ArtifactStore(setup["store"])
    model = load_model(store.read_bytes(setup["model_key"]), expected_sha256=setup["model_sha256"])
    spec = FeatureSpec.from_dict(store.read_json(setup["spec_key"]))
    return store, model, spec


def _compile(model, spec, setup: dict, workdir: str) -> float:
    """Compile the model into the work dir's private cache (or find it there); seconds taken."""
    import numpy as np
    import pandas as pd

    from mlops_provider.core import compiled
    from mlops_provider.core.modeling import prepare_frame

    os.environ["MLOPS_COMPILED_CACHE"] = os.path.join(workdir, "compiled-cache")
    sample = prepare_frame(pd.DataFrame({c: np.linspace(0.0, 1.0, 1024) for c in spec.features}), spec)
    _, engine = compiled.prepare(
        model, spec, mode="require", model_sha256=setup["model_sha256"], sample=sample
    )
    return engine.compile_seconds


def child_method(a) -> dict:
    _ensure_provider_importable()
    import numpy as np
    import pandas as pd
    import pyarrow  # noqa: F401  (imported before the clock in every method)

    from mlops_provider.core.modeling import predict_scores, prepare_frame

    if a.ours_from:  # another implementation of batch_score, e.g. an older scoring.py, for A/B figures
        import importlib.util

        spec_ = importlib.util.spec_from_file_location("mlops_provider.core._bench_scoring_alt", a.ours_from)
        alt = importlib.util.module_from_spec(spec_)
        sys.modules[spec_.name] = alt
        spec_.loader.exec_module(alt)
        batch_score = alt.batch_score
    else:
        from mlops_provider.core.scoring import batch_score

    setup = json.loads(a.setup_json)
    store, model, spec = _load(setup)
    n = a.n
    in_uri = setup["inputs"][str(n)]["uri"]
    out: dict = {"method": a.method, "rows": n}
    # Same warm-up in every method, before the clock: a first predict on a few rows, so lazy
    # initialisation (OpenMP pools, sklearn's first-call checks) is not charged to any of them.
    warm = pd.DataFrame({c: np.linspace(0.0, 1.0, 1024) for c in spec.features})
    predict_scores(model, prepare_frame(warm, spec), spec)
    del warm

    if a.method in ("ours", "compiled"):
        kwargs = {} if a.batch_size is None else {"batch_size": a.batch_size}
        if a.method == "compiled":  # compiled before the clock (once per model per worker)
            out["compile_seconds"] = _compile(model, spec, setup, a.workdir)
            kwargs["compiled"] = "require"
        elif not a.ours_from:
            kwargs["compiled"] = "off"
        base, _ = _rss_mib()
        c0, t0 = time.process_time(), time.perf_counter()
        res = batch_score(
            store,
            model,
            spec,
            model_name="bench",
            model_version=1,
            model_sha256=setup["model_sha256"],
            input_uri=in_uri,
            output_key=f"out/{a.method}/{n}",
            passthrough=["id"],
            **kwargs,
        )
        secs, cpu = time.perf_counter() - t0, time.process_time() - c0
        out.update(output=res.output_uri, batches=res.batches, scored=res.rows, engine=res.engine)
    elif a.method == "pandas":
        base, _ = _rss_mib()
        c0, t0 = time.process_time(), time.perf_counter()
        df = pd.read_parquet(store.path(store.key_of(in_uri)))
        X = prepare_frame(df, spec, "The scoring input")
        pred, score = predict_scores(model, X, spec)
        res = pd.DataFrame(
            {
                "id": df["id"],
                "prediction": pred,
                "score": score,
                "model_version": np.full(len(score), 1, dtype=np.int32),
            }
        )
        key = f"out/pandas/{n}/predictions.parquet"
        os.makedirs(os.path.dirname(store.path(key)), exist_ok=True)
        res.to_parquet(store.path(key), compression="zstd", index=False)
        secs, cpu = time.perf_counter() - t0, time.process_time() - c0
        out.update(output=store.uri(key), scored=len(res))
    elif a.method == "predict-only":
        df = pd.read_parquet(store.path(store.key_of(in_uri)), columns=spec.features)
        X = prepare_frame(df, spec, "The scoring input")
        del df
        base, _ = _rss_mib()
        c0, t0 = time.process_time(), time.perf_counter()
        proba = model.predict_proba(X)
        secs, cpu = time.perf_counter() - t0, time.process_time() - c0
        out.update(scored=len(proba))
    else:
        raise SystemExit(f"unknown method {a.method!r}")
    _, peak = _rss_mib()
    out.update(seconds=secs, cpu_seconds=cpu, base_mib=base, peak_mib=peak)
    return out


def child_verify(a) -> dict:
    _ensure_provider_importable()
    import numpy as np
    import pyarrow.parquet as pq

    from mlops_provider.core.storage import ArtifactStore

    setup = json.loads(a.setup_json)
    store = ArtifactStore(setup["store"])
    ours = pq.read_table(store.path(f"out/{a.method}/{a.n}/predictions.parquet"))
    base = pq.read_table(store.path(f"out/pandas/{a.n}/predictions.parquet"))
    manifest = store.exists(f"out/{a.method}/{a.n}/manifest.json")
    checks = {"rows": ours.num_rows == base.num_rows == a.n, "manifest": manifest}
    diff = 0.0
    for c in ("id", "prediction", "score", "model_version"):
        x, y = ours.column(c).to_numpy(), base.column(c).to_numpy()
        if c == "score" and a.method == "compiled":  # compiled: within 1e-9 of scikit-learn's
            diff = float(np.abs(x - y).max(initial=0.0)) if len(x) == len(y) else float("inf")
            checks[c] = diff <= 1e-9
        else:
            checks[c] = bool(len(x) == len(y) and np.array_equal(x, y))
    return {"ok": all(checks.values()), "checks": checks, "columns": ours.column_names, "max_abs_diff": diff}


# ---------------------------------------------------------------------------------- parent


def _run_child(role: str, a, setup: dict | None = None, **extra) -> dict:
    cmd = [
        sys.executable,
        os.path.abspath(__file__),
        "--_child",
        role,
        "--workdir",
        a.workdir,
        "--seed",
        str(a.seed),
        "--train-rows",
        str(a.train_rows),
        "--rows",
        ",".join(map(str, a.rows)),
    ]
    if setup is not None:
        cmd += ["--_setup", json.dumps(setup)]
    for k, v in extra.items():
        if v is not None:
            cmd += [f"--_{k}", str(v)]
    if a.batch_size is not None:
        cmd += ["--batch-size", str(a.batch_size)]
    if a.ours_from:
        cmd += ["--ours-from", os.path.abspath(a.ours_from)]
    busy0, cpu0, t0 = _busy_cpu_seconds(), _children_cpu_seconds(), time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    busy1, cpu1, wall = _busy_cpu_seconds(), _children_cpu_seconds(), time.perf_counter() - t0
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        raise SystemExit(f"child {role} {extra} failed with exit code {proc.returncode}")
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith("{"):
            out = json.loads(line)
            out["child_cpu"] = cpu1 - cpu0
            # Average number of CPUs kept busy by OTHER processes while this child ran: the
            # figures are only comparable when this is near 0.
            out["other_load"] = None if busy0 is None else max(0.0, (busy1 - busy0) - (cpu1 - cpu0)) / wall
            return out
    raise SystemExit(f"child {role} printed no result:\n{proc.stdout}\n{proc.stderr}")


def _fmt_rows(n: int) -> str:
    return f"{n / 1e6:g}M" if n >= 1_000_000 else f"{n / 1e3:g}k"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--rows", default=None, help="comma-separated row counts (default 1000000,5000000)")
    p.add_argument(
        "--quick",
        action="store_true",
        help="200k rows, 50k training rows: a smoke run in well under a minute",
    )
    p.add_argument(
        "--train-rows", type=int, default=None, help="training rows (default 200000; 50000 with --quick)"
    )
    p.add_argument(
        "--batch-size", type=int, default=None, help="batch_size for ours (default: batch_score's default)"
    )
    p.add_argument(
        "--ours-from",
        default=None,
        metavar="FILE",
        help="take batch_score from this file instead of mlops_provider.core.scoring (A/B runs, e.g. "
        "`git show HEAD~1:provider/mlops_provider/core/scoring.py > /tmp/old.py`)",
    )
    p.add_argument("--repeat", type=int, default=1, help="runs per method and size (median reported)")
    p.add_argument("--methods", default=",".join(METHODS), help=f"subset of {','.join(METHODS)}")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workdir", default=None, help="keep the store here instead of a deleted temp folder")
    p.add_argument("--_child", default=None, help=argparse.SUPPRESS)
    p.add_argument("--_setup", dest="setup_json", default=None, help=argparse.SUPPRESS)
    p.add_argument("--_method", dest="method", default=None, help=argparse.SUPPRESS)
    p.add_argument("--_n", dest="n", type=int, default=None, help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.rows is None:
        a.rows = "200000" if a.quick else "1000000,5000000"
    a.rows = sorted({int(float(x)) for x in a.rows.split(",") if x.strip()})
    if a.train_rows is None:
        a.train_rows = 50_000 if a.quick else 200_000

    if a._child:
        fn = {"setup": child_setup, "method": child_method, "verify": child_verify}[a._child]
        print(json.dumps(fn(a)))
        return 0

    methods = [m.strip() for m in a.methods.split(",") if m.strip()]
    bad = [m for m in methods if m not in METHODS]
    if bad:
        p.error(f"unknown method(s) {bad}; choose from {METHODS}")
    tmp = None
    if a.workdir is None:
        tmp = tempfile.TemporaryDirectory(prefix="mlops-bench-scoring-")
        a.workdir = tmp.name
    try:
        return _parent(a, methods)
    finally:
        if tmp is not None:
            tmp.cleanup()


def _parent(a, methods: list[str]) -> int:
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(
        f"bench_scoring: rows={a.rows} train_rows={a.train_rows} repeat={a.repeat} "
        f"batch_size={a.batch_size or 'default'} cpus={cpus} workdir={a.workdir}"
        + (f" ours_from={a.ours_from}" if a.ours_from else ""),
        flush=True,
    )
    t0 = time.perf_counter()
    setup = _setup(a)
    sizes = ", ".join(
        f"{_fmt_rows(int(k))}: {v['bytes'] / 2**20:.0f} MiB" for k, v in setup["inputs"].items()
    )
    versions = ", ".join(f"{k} {v}" for k, v in setup["versions"].items())
    print(
        f"setup: model trained on {setup['train_rows']} rows in {setup['train_seconds']}s, inputs written "
        f"({sizes}) in {time.perf_counter() - t0:.1f}s; {versions}",
        flush=True,
    )

    results: dict[tuple[int, str], dict] = {}
    verified: dict[tuple[int, str], dict] = {}
    for n in a.rows:
        runs = _run_methods(a, methods, setup, n)
        for m in methods:
            results[(n, m)] = _summary(runs[m], n)
        for m in ("ours", "compiled"):
            if m in methods and "pandas" in methods:
                verified[(n, m)] = _run_child("verify", a, setup, n=n, method=m)

    print()
    _print_table(a, methods, results)
    print()
    loads = [r["load"] for r in results.values() if r["load"] is not None]
    if loads and max(loads) > 0.25:
        print(
            f"WARNING: other processes kept up to {max(loads):.2f} CPUs busy during the runs; "
            "the timings are perturbed (rerun on an idle machine, or with --repeat 3)."
        )
        print()
    if verified:
        for (n, m), v in verified.items():
            same = "identical" if m == "ours" else f"identical labels, scores within {v['max_abs_diff']:.1e}"
            status = same if v["ok"] else f"DIFFERENT {v['checks']}"
            print(f"predictions {m} vs pandas at {_fmt_rows(n)}: {status} (columns {v['columns']})")
        print()
    _print_targets(a, methods, results, verified)
    print(f"total {time.perf_counter() - _T0:.1f}s")
    return 0


def _setup(a) -> dict:
    cache = os.path.join(a.workdir, "setup.json")
    key = {"rows": a.rows, "train_rows": a.train_rows, "seed": a.seed}
    if os.path.exists(cache):  # a kept --workdir: reuse the model and inputs of the same parameters
        with open(cache) as f:
            cached = json.load(f)
        model_file = os.path.join(a.workdir, "store", cached.get("setup", {}).get("model_key", "-"))
        if cached.get("key") == key and os.path.exists(model_file):
            print("setup: reusing the model and inputs in the work dir", flush=True)
            return cached["setup"]
    setup = _run_child("setup", a)
    with open(cache, "w") as f:
        json.dump({"key": key, "setup": setup}, f)
    return setup


def _run_methods(a, methods: list[str], setup: dict, n: int) -> dict[str, list[dict]]:
    """Every method ``a.repeat`` times on ``n`` rows: the results of each method."""
    runs: dict[str, list[dict]] = {m: [] for m in methods}
    for _ in range(a.repeat):  # interleaved, so a burst of outside load spreads over the methods
        for m in methods:
            r = _run_child("method", a, setup, method=m, n=n)
            runs[m].append(r)
            load = "" if r["other_load"] is None else f"  other load {r['other_load']:.2f} CPUs"
            if "compile_seconds" in r:
                load += f"  (compile before the clock {r['compile_seconds']:.1f}s)"
            print(
                f"  {_fmt_rows(n):>5} {m:<13} {r['seconds']:7.2f}s {n / r['seconds']:>10,.0f} rows/s  "
                f"cpu {r['cpu_seconds']:6.1f}s  peak {r['peak_mib']:6.0f} MiB{load}",
                flush=True,
            )
    return runs


def _summary(rs: list[dict], n: int) -> dict:
    """The medians (and worst outside load) of the runs ``rs`` of one method on ``n`` rows."""
    secs = statistics.median(r["seconds"] for r in rs)
    loads = [r["other_load"] for r in rs if r["other_load"] is not None]
    return {
        "seconds": secs,
        "best": min(r["seconds"] for r in rs),
        "rps": n / secs,
        "cpu": statistics.median(r["cpu_seconds"] for r in rs),
        "peak": statistics.median(r["peak_mib"] for r in rs),
        "base": statistics.median(r["base_mib"] for r in rs),
        "load": max(loads) if loads else None,
    }


def _print_table(a, methods: list[str], results: dict[tuple[int, str], dict]) -> None:
    print(
        f"medians of {a.repeat} run(s); cpu = CPU seconds of the timed section (all threads); "
        "base = RSS before the clock starts; other load = most CPUs used by other processes during a run"
    )
    hdr = (
        f"{'rows':>10} {'method':<13} {'seconds':>8} {'rows/s':>11} {'peak RSS MiB':>13} {'base MiB':>9} "
        f"{'cpu s':>7} {'other load':>10}"
    )
    print(hdr)
    print("-" * len(hdr))
    for n in a.rows:
        for m in methods:
            r = results[(n, m)]
            load = "n/a" if r["load"] is None else f"{r['load']:.2f}"
            note = "  (predict_proba only)" if m == "predict-only" else ""
            print(
                f"{n:>10,} {m:<13} {r['seconds']:8.2f} {r['rps']:11,.0f} {r['peak']:13.0f} {r['base']:9.0f} "
                f"{r['cpu']:7.1f} {load:>10}{note}"
            )


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def _print_targets(
    a, methods: list[str], results: dict[tuple[int, str], dict], verified: dict[tuple[int, str], dict]
) -> None:
    print("targets:")
    if "ours" in methods:
        _print_ours_targets(a, methods, results)
    if "compiled" in methods:
        _print_compiled_targets(a, methods, results)
    if verified:
        identical = _verdict(all(v["ok"] for v in verified.values()))
        print(f"  predictions identical to the pandas baseline     {identical}")
    if a.rows[0] < 1_000_000:
        print(
            f"  (note: the targets are meant for 1M+ rows; at {_fmt_rows(a.rows[0])} rows ours has "
            "only a few batches to pipeline, so treat this run as a smoke test)"
        )


def _print_compiled_targets(a, methods: list[str], results: dict[tuple[int, str], dict]) -> None:
    for n in a.rows:
        comp = results[(n, "compiled")]
        if "predict-only" in methods:
            ratio = comp["rps"] / results[(n, "predict-only")]["rps"]
            print(
                f"  {_fmt_rows(n):>5} compiled/predict-only          {ratio:6.2f}  (>= 2.00)  "
                f"{_verdict(ratio >= 2.0)}"
            )
        if "ours" in methods:
            ratio = comp["rps"] / results[(n, "ours")]["rps"]
            print(f"  {_fmt_rows(n):>5} compiled/ours throughput      {ratio:6.2f}")
    _print_rss_targets(a, "compiled", results)


def _print_ours_targets(a, methods: list[str], results: dict[tuple[int, str], dict]) -> None:
    for n in a.rows:
        ours = results[(n, "ours")]
        if "pandas" in methods:
            ratio = ours["rps"] / results[(n, "pandas")]["rps"]
            print(
                f"  {_fmt_rows(n):>5} ours/pandas throughput        {ratio:6.2f}  (>= 1.00)  "
                f"{_verdict(ratio >= 1.0)}"
            )
        if "predict-only" in methods:
            ratio = ours["rps"] / results[(n, "predict-only")]["rps"]
            print(
                f"  {_fmt_rows(n):>5} ours/predict-only throughput  {ratio:6.2f}  (>= 0.75)  "
                f"{_verdict(ratio >= 0.75)}"
            )
    _print_rss_targets(a, "ours", results)


def _print_rss_targets(a, method: str, results: dict[tuple[int, str], dict]) -> None:
    """Peak RSS flat across sizes (largest / smallest <= 1.2) and under 1 GiB at the largest."""
    lo, hi = a.rows[0], a.rows[-1]
    label = f"{method} peak RSS"
    if hi != lo:
        ratio = results[(hi, method)]["peak"] / results[(lo, method)]["peak"]
        what = f"{label} {_fmt_rows(hi)}/{_fmt_rows(lo)}"
        print(f"  {what:<32}{ratio:6.2f}  (<= 1.20)  {_verdict(ratio <= 1.2)}")
    peak = results[(hi, method)]["peak"]
    what = f"{label} at {_fmt_rows(hi)}"
    print(f"  {what:<32}{peak:6.0f} MiB (< 1024)  {_verdict(peak < 1024)}")


_T0 = time.perf_counter()

if __name__ == "__main__":
    sys.exit(main())
