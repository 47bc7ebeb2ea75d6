"""Benchmark: data drift of a 1M-row window against a 1M-row reference, ours vs Evidently's preset.

Usage::

    python benchmarks/bench_drift.py                      # 1M x 20 window vs 1M-row reference
    python benchmarks/bench_drift.py --quick              # 100k rows each: a smoke run
    python benchmarks/bench_drift.py --repeat 3           # median of 3 fresh runs per method
    python benchmarks/bench_drift.py --evidently-python /tmp/evidently-venv/bin/python
    python benchmarks/bench_drift.py --ours-from /tmp/old_drift.py   # A/B against another drift.py
    python benchmarks/bench_drift.py --workdir /tmp/bench-drift      # keep (and reuse) the data
    python benchmarks/bench_drift.py --wait-idle 300      # on a shared machine: wait for a quiet moment

What is measured
----------------
Synthetic data (seeded numpy): 20 features, 16 float64 ``f00``..``f15`` (normal, uniform,
lognormal, integer-valued "hour"-like with many ties; about 1% missing values in four of them)
and 4 string categoricals ``c16``..``c19`` with 10, 20, 35 and 50 categories (Zipf-like
frequencies, about 1% missing in one). The current window is drawn from the same distributions
except for a few features shifted on purpose (``INJECTED`` below: a mean shift, a scale change, a
30% sub-population moved, a reshuffled categorical mix). Both frames are written once as Parquet
(zstd) and read back with ``pd.read_parquet`` in each child, i.e. with the dtypes an extract gives.

Each method runs in a FRESH subprocess, interleaved with ``--repeat N`` (medians reported). The
data is loaded, the libraries imported and every method warmed up on 1,000 rows before the clock
starts. Memory: ``peak`` is the child's ``VmHWM`` (interpreter, imports, both loaded frames and the
run), ``base`` the RSS when the clock starts, and ``timed peak`` the high-water mark of the timed
section alone (reset at the clock start through /proc/self/clear_refs), so ``+MiB`` = timed peak -
base is what the method itself allocates on top of the loaded data.

* ``ours``      -- ``build_profile(reference, categorical=[c16..c19])`` then
                   ``compare(profile, current)`` (default thresholds: PSI >= 0.2 drifts). Reported as
                   ``ours`` (end to end), and the two steps separately: ``ours:profile`` and
                   ``ours:compare`` (in production the profile is built once per champion and cached,
                   so a drift check pays the compare step only).
* ``evidently`` -- Evidently's ``Report([DataDriftPreset()])`` run on ``Dataset.from_pandas`` of both
                   frames with an explicit ``DataDefinition`` (same numeric / categorical split);
                   the preset's default tests (for > 1,000 rows: Wasserstein distance (normed) >= 0.1
                   for numeric columns, Jensen-Shannon distance >= 0.1 for categorical ones) decide
                   which columns drift (``include_tests=True``; ``--evidently-method psi`` to make it
                   use PSI instead). Evidently is not a dependency of the provider: if it does not import,
                   the script says so and reports ours alone. Evidently 0.7.x does not import with
                   pandas 3 (``pandas.core.dtypes.common.infer_dtype_from_object`` is gone), so it can run
                   under another interpreter: ``--evidently-python PATH`` (a venv with evidently and
                   pandas<3, e.g. ``uv venv /tmp/evidently-venv && uv pip install --python
                   /tmp/evidently-venv/bin/python evidently "pandas<3" pyarrow``).

Other columns: ``cpu s`` is the CPU time of the timed section over all threads, and ``other load``
the CPUs kept busy by OTHER processes while the child ran (from /proc/stat, minus the child's own
CPU time). On a small shared machine this matters, so the script warns when it saw more than a
quarter of a CPU of outside load: rerun then.

Which features each method flagged is printed next to the injected ones, with the scores, so the
two can be compared on substance, not only on speed.

Targets (printed as PASS/MISS; the script exits 0 either way, these are figures, not tests):

* ours end to end (profile + compare) <= 2 s for 1M x 20 against a 1M-row reference
* evidently / ours end to end        >= 5   (when Evidently ran)
* ours flags exactly the injected features

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

N_NUMERIC = 16
CAT_SIZES = (10, 20, 35, 50)
NUMERIC = [f"f{j:02d}" for j in range(N_NUMERIC)]
CATEGORICAL = [f"c{N_NUMERIC + j:02d}" for j in range(len(CAT_SIZES))]
FEATURES = NUMERIC + CATEGORICAL
#: Features shifted in the current window, and how.
INJECTED = {
    "f01": "mean +0.5 sd",
    "f06": "scale x1.6",
    "f11": "30% of rows moved up by 3 sd",
    "c17": "category mix reversed",
}
TARGET_SECONDS = 2.0
TARGET_RATIO = 5.0
GEN_CHUNK = 250_000
METHODS = ("ours", "evidently")
LOAD_WARN = 0.25


# ---------------------------------------------------------------------------------- child helpers
def _reset_peak() -> bool:
    """Reset this process's RSS high-water mark (Linux: ``5`` into /proc/self/clear_refs), so the peak
    read after the timed section is that section's own; False where that is not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _columns(rng, n: int, current: bool) -> dict:
    """n rows of the 20 synthetic features: float64 arrays and object arrays of str (None = missing)."""
    import numpy as np

    cols = {}
    for j, name in enumerate(NUMERIC):
        kind = j % 4
        if kind == 0:
            x = rng.standard_normal(n) * (1 + j / 8) + j
        elif kind == 1:
            x = rng.uniform(0.0, 100.0, n)
        elif kind == 2:
            x = rng.lognormal(1.0, 0.6, n)
        else:
            x = rng.integers(0, 24, n).astype(np.float64)  # many ties, like an hour of day
        if current:
            if name == "f01":  # uniform(0, 100): sd 28.9
                x = x + 0.5 * 28.87
            elif name == "f06":  # lognormal: spread around the median
                x = np.exp(1.0 + (np.log(x) - 1.0) * 1.6)
            elif name == "f11":  # 30% of rows moved up by 3 sd (integer-valued: stays integer)
                x = np.where(rng.random(n) < 0.3, x + 21.0, x)
        if j in (3, 7, 9, 14):
            x[rng.random(n) < 0.01] = np.nan
        cols[name] = x
    for name, k in zip(CATEGORICAL, CAT_SIZES, strict=True):
        w = 1.0 / np.arange(1, k + 1) ** 0.8  # Zipf-like
        if current and name == "c17":
            w = w[::-1]
        labels = np.array([f"{name}_{i:02d}" for i in range(k)] + [None], dtype=object)
        codes = rng.choice(k, n, p=w / w.sum())
        if name == "c18":
            codes[rng.random(n) < 0.01] = k  # missing
        cols[name] = labels[codes]
    return cols


def child_setup(a) -> dict:
    """Write the reference and the current window as Parquet (zstd), in chunks."""
    import numpy as np
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq
    import scipy

    paths = {}
    for role, n in (("reference", a.ref_rows), ("current", a.rows)):
        path = os.path.join(a.workdir, f"{role}_{n}_{a.seed}.parquet")
        writer = None
        for start in range(0, n, GEN_CHUNK):
            m = min(GEN_CHUNK, n - start)
            rng = np.random.default_rng([a.seed, role == "current", n, start])
            table = pa.table({k: pa.array(v) for k, v in _columns(rng, m, role == "current").items()})
            if writer is None:
                writer = pq.ParquetWriter(path + ".tmp", table.schema, compression="zstd")
            writer.write_table(table, row_group_size=131_072)
        writer.close()
        os.replace(path + ".tmp", path)
        paths[role] = {"path": path, "rows": n, "bytes": os.path.getsize(path)}
    return {
        "inputs": paths,
        "versions": {
            "python": platform.python_version(),
            "numpy": np.__version__,
            "pandas": pd.__version__,
            "pyarrow": pa.__version__,
            "scipy": scipy.__version__,
        },
    }


def _load(setup: dict):
    import pandas as pd

    ref = pd.read_parquet(setup["inputs"]["reference"]["path"])
    cur = pd.read_parquet(setup["inputs"]["current"]["path"])
    return ref, cur


def _import_drift(ours_from: str | None):
    _ensure_provider_importable()
    if ours_from:  # another implementation of drift.py, e.g. an older one, for A/B figures
        import importlib.util

        spec = importlib.util.spec_from_file_location("mlops_provider.core._bench_drift_alt", ours_from)
        mod = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = mod
        spec.loader.exec_module(mod)
        return mod
    from mlops_provider.core import drift

    return drift


def child_ours(a) -> dict:
    import numpy as np
    import pandas as pd  # noqa: F401
    import scipy.stats  # noqa: F401  (compare imports it lazily; not charged to the clock)

    drift = _import_drift(a.ours_from)
    setup = json.loads(a.setup_json)
    ref, cur = _load(setup)
    # Warm-up on 1,000 rows (lazy imports inside drift, scipy's first-call set-up), same as evidently.
    drift.compare(drift.build_profile(ref.head(1000), FEATURES, CATEGORICAL), cur.head(1000))
    _, load_peak = _rss_mib()
    reset = _reset_peak()
    base, _ = _rss_mib()
    c0, t0 = time.process_time(), time.perf_counter()
    profile = drift.build_profile(ref, FEATURES, CATEGORICAL)
    c1, t1 = time.process_time(), time.perf_counter()
    report = drift.compare(profile, cur)
    c2, t2 = time.process_time(), time.perf_counter()
    _, peak = _rss_mib()
    by = {f.feature: f for f in report.features}
    return {
        "method": "ours",
        "seconds": t2 - t0,
        "cpu_seconds": c2 - c0,
        "base_mib": base,
        "peak_mib": max(peak, load_peak),
        "timed_peak_mib": peak if reset else None,
        "profile_seconds": t1 - t0,
        "profile_cpu": c1 - c0,
        "compare_seconds": t2 - t1,
        "compare_cpu": c2 - c1,
        "flagged": report.drifted_features,
        "scores": {
            k: {
                "psi": f.psi,
                "test": f.test,
                "statistic": f.statistic,
                "drifted": f.drifted,
                "reasons": f.reasons,
            }
            for k, f in by.items()
        },
        "profile_json_kib": len(json.dumps(profile.to_dict())) / 1024,
        "numpy_threads_hint": os.environ.get("OMP_NUM_THREADS"),
        "checksum": float(np.sum([f.psi for f in report.features])),
    }


def child_evidently(a) -> dict:
    out: dict = {"method": "evidently"}
    try:
        import evidently
        from evidently import DataDefinition, Dataset, Report
        from evidently.presets import DataDriftPreset
    except Exception as exc:  # noqa: BLE001  (any import failure means: not available here)
        out["unavailable"] = f"{type(exc).__name__}: {exc}"
        out["python"] = sys.executable
        return out
    import pandas as pd

    setup = json.loads(a.setup_json)
    ref, cur = _load(setup)
    kwargs = {"method": a.evidently_method} if a.evidently_method else {}

    def run(r, c):
        definition = DataDefinition(numerical_columns=NUMERIC, categorical_columns=CATEGORICAL)
        rd = Dataset.from_pandas(r, data_definition=definition)
        cd = Dataset.from_pandas(c, data_definition=definition)
        return Report([DataDriftPreset(**kwargs)], include_tests=True).run(cd, rd)

    run(ref.head(1000), cur.head(1000))  # warm-up, as for ours
    _, load_peak = _rss_mib()
    reset = _reset_peak()
    base, _ = _rss_mib()
    c0, t0 = time.process_time(), time.perf_counter()
    snapshot = run(ref, cur)
    secs, cpu = time.perf_counter() - t0, time.process_time() - c0
    _, peak = _rss_mib()
    d = snapshot.dict()
    scores, flagged = {}, []
    values = {
        m.get("config", {}).get("column"): m
        for m in d["metrics"]
        if m.get("config", {}).get("type", "").endswith("ValueDrift")
    }
    status = {}
    for t in d.get("tests", []):
        params = t.get("metric_config", {}).get("params", {})
        if params.get("type", "").endswith("ValueDrift"):
            status[params.get("column")] = t.get("status")
    for col in FEATURES:
        m = values.get(col, {})
        drifted = status.get(col) == "FAIL"
        scores[col] = {
            "method": m.get("config", {}).get("method"),
            "threshold": m.get("config", {}).get("threshold"),
            "score": m.get("value"),
            "drifted": drifted,
        }
        if drifted:
            flagged.append(col)
    out.update(
        seconds=secs,
        cpu_seconds=cpu,
        base_mib=base,
        peak_mib=max(peak, load_peak),
        timed_peak_mib=peak if reset else None,
        flagged=flagged,
        scores=scores,
        version=evidently.__version__,
        pandas=pd.__version__,
        python=sys.executable,
    )
    return out


# ---------------------------------------------------------------------------------- parent


def _wait_idle(max_wait: float) -> float | None:
    """Wait (up to ``max_wait`` s) until other processes keep less than LOAD_WARN CPUs busy over 2 s."""
    deadline = time.monotonic() + max_wait
    load = None
    while True:
        b0, t0 = _busy_cpu_seconds(), time.perf_counter()
        if b0 is None:
            return None
        time.sleep(2.0)
        load = (_busy_cpu_seconds() - b0) / (time.perf_counter() - t0)
        if load <= LOAD_WARN or time.monotonic() >= deadline:
            return load
        time.sleep(3.0)


def _run_child(role: str, a, setup: dict | None = None, python: str | None = None) -> dict:
    cmd = [
        python or sys.executable,
        os.path.abspath(__file__),
        "--_child",
        role,
        "--workdir",
        a.workdir,
        "--seed",
        str(a.seed),
        "--rows",
        str(a.rows),
        "--ref-rows",
        str(a.ref_rows),
    ]
    if setup is not None:
        cmd += ["--_setup", json.dumps(setup)]
    if a.ours_from:
        cmd += ["--ours-from", os.path.abspath(a.ours_from)]
    if a.evidently_method:
        cmd += ["--evidently-method", a.evidently_method]
    # No telemetry from Evidently (it would also add network time to its figure).
    env = dict(os.environ, DO_NOT_TRACK="1", EVIDENTLY_DISABLE_TELEMETRY="1")
    if role != "setup" and a.wait_idle:
        load = _wait_idle(a.wait_idle)
        if load is not None and load > LOAD_WARN:
            print(
                f"  (still {load:.2f} CPUs of other load after waiting {a.wait_idle:g}s; running anyway)",
                flush=True,
            )
    busy0, cpu0, t0 = _busy_cpu_seconds(), _children_cpu_seconds(), time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    busy1, cpu1, wall = _busy_cpu_seconds(), _children_cpu_seconds(), time.perf_counter() - t0
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        if role == "evidently":  # never let the comparison sink the report of ours
            return {
                "method": "evidently",
                "unavailable": f"child exited with code {proc.returncode}",
                "python": cmd[0],
            }
        raise SystemExit(f"child {role} failed with exit code {proc.returncode}")
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
    p.add_argument(
        "--rows",
        type=lambda s: int(float(s)),
        default=None,
        help="rows of the current window (default 1000000)",
    )
    p.add_argument(
        "--ref-rows",
        type=lambda s: int(float(s)),
        default=None,
        help="rows of the reference (default = --rows)",
    )
    p.add_argument("--quick", action="store_true", help="100k rows each: a smoke run")
    p.add_argument("--repeat", type=int, default=1, help="runs per method (median reported)")
    p.add_argument("--methods", default=",".join(METHODS), help=f"subset of {','.join(METHODS)}")
    p.add_argument(
        "--evidently-python",
        default=None,
        metavar="PYTHON",
        help="interpreter for the Evidently child (default: this one), "
        "e.g. a venv with evidently and pandas<3",
    )
    p.add_argument(
        "--evidently-method",
        default=None,
        help="stat test for every column of Evidently's preset "
        "(e.g. psi); default: the preset's own choice per column",
    )
    p.add_argument(
        "--ours-from",
        default=None,
        metavar="FILE",
        help="take build_profile/compare from this file instead of mlops_provider.core.drift (A/B runs, "
        "e.g. `git show HEAD:provider/mlops_provider/core/drift.py > /tmp/old_drift.py`)",
    )
    p.add_argument(
        "--wait-idle",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="before each run, wait up to this long for the machine to be idle (other load <= "
        f"{LOAD_WARN} CPUs over 2 s); the load during the run is still measured and reported",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workdir", default=None, help="keep the data here instead of a deleted temp folder")
    p.add_argument("--_child", default=None, help=argparse.SUPPRESS)
    p.add_argument("--_setup", dest="setup_json", default=None, help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.rows is None:
        a.rows = 100_000 if a.quick else 1_000_000
    if a.ref_rows is None:
        a.ref_rows = a.rows

    if a._child:
        fn = {"setup": child_setup, "ours": child_ours, "evidently": child_evidently}[a._child]
        print(json.dumps(fn(a)))
        return 0

    methods = [m.strip() for m in a.methods.split(",") if m.strip()]
    bad = [m for m in methods if m not in METHODS]
    if bad:
        p.error(f"unknown method(s) {bad}; choose from {METHODS}")
    tmp = None
    if a.workdir is None:
        tmp = tempfile.TemporaryDirectory(prefix="mlops-bench-drift-")
        a.workdir = tmp.name
    os.makedirs(a.workdir, exist_ok=True)
    try:
        return _parent(a, methods)
    finally:
        if tmp is not None:
            tmp.cleanup()


def _setup(a) -> dict:
    cache = os.path.join(a.workdir, "setup.json")
    key = {"rows": a.rows, "ref_rows": a.ref_rows, "seed": a.seed, "injected": INJECTED, "cats": CAT_SIZES}
    if os.path.exists(cache):  # a kept --workdir: reuse the data of the same parameters
        with open(cache) as f:
            cached = json.load(f)
        files = [v["path"] for v in cached.get("setup", {}).get("inputs", {}).values()]
        if cached.get("key") == json.loads(json.dumps(key)) and files and all(map(os.path.exists, files)):
            print("setup: reusing the data in the work dir", flush=True)
            return cached["setup"]
    setup = _run_child("setup", a)
    with open(cache, "w") as f:
        json.dump({"key": key, "setup": setup}, f)
    return setup


def _parent(a, methods: list[str]) -> int:
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(
        f"bench_drift: current={a.rows:,} rows x {len(FEATURES)} features ({len(NUMERIC)} numeric, "
        f"{len(CATEGORICAL)} categorical {list(CAT_SIZES)} categories) vs reference={a.ref_rows:,} rows; "
        f"repeat={a.repeat} cpus={cpus} workdir={a.workdir}"
        + (f" ours_from={a.ours_from}" if a.ours_from else ""),
        flush=True,
    )
    t0 = time.perf_counter()
    setup = _setup(a)
    sizes = ", ".join(f"{k} {v['bytes'] / 2**20:.0f} MiB" for k, v in setup["inputs"].items())
    versions = ", ".join(f"{k} {v}" for k, v in setup["versions"].items())
    print(
        f"setup: data ({sizes}, Parquet zstd) ready in {time.perf_counter() - t0:.1f}s; {versions}",
        flush=True,
    )

    runs, unavailable = _run_methods(a, methods, setup)
    rows = _summaries(runs)
    print()
    _print_table(a, rows)
    print()
    if unavailable:
        print(
            f"NOTE: Evidently was not importable under {unavailable['python']} "
            f"({unavailable['unavailable']}); only ours is reported. Evidently is not a dependency of the "
            "provider; install it (`uv pip install evidently`) or, as 0.7.x does not import with pandas 3, "
            "point --evidently-python at a venv with evidently and pandas<3."
        )
        print()

    # ---- which features each method flagged
    ours_run = runs["ours"][-1] if runs.get("ours") else None
    ev_run = runs["evidently"][-1] if runs.get("evidently") else None
    _print_flags(ours_run, ev_run)
    print()
    _print_load_warning(rows)
    _print_targets(a, methods, rows, ours_run)
    print(f"total {time.perf_counter() - _T0:.1f}s")
    return 0


def _run_methods(a, methods: list[str], setup: dict) -> tuple[dict[str, list[dict]], dict | None]:
    """Every method ``a.repeat`` times: (the results of each method, Evidently's refusal if it did not
    import)."""
    runs: dict[str, list[dict]] = {m: [] for m in methods}
    unavailable = None
    for _ in range(a.repeat):  # interleaved, so a burst of outside load spreads over the methods
        for m in methods:
            if m == "evidently" and unavailable:
                continue
            r = _run_child(m, a, setup, python=a.evidently_python if m == "evidently" else None)
            if "unavailable" in r:
                unavailable = r
                print(f"  evidently: not available under {r['python']} ({r['unavailable']})", flush=True)
                continue
            runs[m].append(r)
            load = "" if r["other_load"] is None else f"  other load {r['other_load']:.2f} CPUs"
            extra = (
                f"  (profile {r['profile_seconds']:.2f}s + compare {r['compare_seconds']:.2f}s)"
                if m == "ours"
                else f"  (evidently {r['version']}, pandas {r['pandas']})"
            )
            print(
                f"  {m:<10} {r['seconds']:7.2f}s  cpu {r['cpu_seconds']:6.1f}s  peak {r['peak_mib']:6.0f} MiB"
                f"{load}{extra}",
                flush=True,
            )
    return runs, unavailable


def _summary(rs: list[dict], secs_key: str, cpu_key: str, memory: bool = True) -> dict:
    """The medians (and worst outside load) of the runs ``rs`` of one method or step."""
    loads = [r["other_load"] for r in rs if r["other_load"] is not None]
    timed = [r["timed_peak_mib"] for r in rs if r.get("timed_peak_mib") is not None]
    return {
        "seconds": statistics.median(r[secs_key] for r in rs),
        "best": min(r[secs_key] for r in rs),
        "cpu": statistics.median(r[cpu_key] for r in rs),
        "peak": statistics.median(r["peak_mib"] for r in rs) if memory else None,
        "timed": statistics.median(timed) if memory and timed else None,
        "base": statistics.median(r["base_mib"] for r in rs) if memory else None,
        "load": max(loads) if loads else None,
        "busy": sum(1 for x in loads if x > LOAD_WARN),
        "runs": len(rs),
    }


def _summaries(runs: dict[str, list[dict]]) -> dict[str, dict]:
    """One summary row per method, and per step of ours (``ours:profile``, ``ours:compare``)."""
    rows: dict[str, dict] = {}
    if runs.get("ours"):
        rows["ours"] = _summary(runs["ours"], "seconds", "cpu_seconds")
        rows["ours:profile"] = _summary(runs["ours"], "profile_seconds", "profile_cpu", memory=False)
        rows["ours:compare"] = _summary(runs["ours"], "compare_seconds", "compare_cpu", memory=False)
    if runs.get("evidently"):
        rows["evidently"] = _summary(runs["evidently"], "seconds", "cpu_seconds")
    return rows


def _mib(x):
    return "-" if x is None else f"{x:.0f}"


def _print_table(a, rows: dict[str, dict]) -> None:
    print(
        f"medians of {a.repeat} run(s). cpu s = CPU seconds of the timed section (all threads); "
        "peak = the child's RSS high-water mark (interpreter, imports, both frames loaded, and the run); "
        "base = RSS when the clock starts; timed peak = high-water mark of the timed section alone "
        "(reset at the clock start), +MiB = timed peak - base, the method's own memory; other load = "
        f"most CPUs used by other processes during a run, busy = runs with more than {LOAD_WARN} CPUs "
        "of it. ours:profile and ours:compare are the two steps of the ours runs (same child, so no "
        "memory figures of their own)."
    )
    hdr = (
        f"{'method':<14} {'seconds':>8} {'best':>7} {'cpu s':>7} {'peak MiB':>9} {'base MiB':>9} "
        f"{'timed peak':>11} {'+MiB':>6} {'other load':>10} {'busy':>6}"
    )
    print(hdr)
    print("-" * len(hdr))
    for name, r in rows.items():
        load = "n/a" if r["load"] is None else f"{r['load']:.2f}"
        extra = None if r["timed"] is None or r["base"] is None else r["timed"] - r["base"]
        print(
            f"{name:<14} {r['seconds']:8.3f} {r['best']:7.3f} {r['cpu']:7.2f} "
            f"{_mib(r['peak']):>9} {_mib(r['base']):>9} "
            f"{_mib(r['timed']):>11} {_mib(extra):>6} {load:>10} {r['busy']:>3}/{r['runs']:<2}"
        )


def _print_flags(ours_run: dict | None, ev_run: dict | None) -> None:
    """The features each method flagged, next to the injected ones, with the scores."""
    print("injected drift: " + "; ".join(f"{k} ({v})" for k, v in INJECTED.items()))
    if not (ours_run or ev_run):
        return
    ev_method = ""
    if ev_run:
        methods_used = sorted({str(s["method"]) for s in ev_run["scores"].values()})
        ev_method = " / ".join(methods_used)
    hdr = f"{'feature':<8} {'injected':<9} {'ours PSI':>9} {'ours KS/chi2':>13} {'ours':>6}"
    if ev_run:
        hdr += f" {'evidently score':>16} {'evidently':>10}"
    print(hdr + (f"   (evidently: {ev_method})" if ev_run else ""))
    print("-" * len(hdr))
    for col in FEATURES:
        line = f"{col:<8} {'yes' if col in INJECTED else '':<9}"
        if ours_run:
            s = ours_run["scores"][col]
            line += f" {s['psi']:9.4f} {s['statistic']:13.4g} {'DRIFT' if s['drifted'] else '-':>6}"
        else:
            line += f" {'':>9} {'':>13} {'':>6}"
        if ev_run:
            e = ev_run["scores"][col]
            score = "n/a" if e["score"] is None else f"{e['score']:.4f}"
            line += f" {score:>16} {'DRIFT' if e['drifted'] else '-':>10}"
        print(line)
    if ours_run:
        print(f"ours flagged:      {ours_run['flagged']}")
    if ev_run:
        print(f"evidently flagged: {ev_run['flagged']}")
    if ours_run and ev_run:
        both = set(ours_run["flagged"]) & set(ev_run["flagged"])
        only_o = sorted(set(ours_run["flagged"]) - both)
        only_e = sorted(set(ev_run["flagged"]) - both)
        print(f"agreement: both {sorted(both)}; only ours {only_o}; only evidently {only_e}")
    if ours_run:
        print(f"ours reference profile: {ours_run['profile_json_kib']:.0f} KiB as JSON")


def _print_load_warning(rows: dict[str, dict]) -> None:
    loads = [r["load"] for r in rows.values() if r["load"] is not None]
    if loads and max(loads) > LOAD_WARN:
        busy = {k: f"{r['busy']}/{r['runs']}" for k, r in rows.items() if r["busy"] and ":" not in k}
        print(
            f"WARNING: other processes kept up to {max(loads):.2f} CPUs busy during the runs "
            f"(busy runs: {busy}); the timings are perturbed (rerun on an idle machine, with --repeat 3, "
            "or with --wait-idle 300)."
        )
        print()


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def _print_targets(a, methods: list[str], rows: dict[str, dict], ours_run: dict | None) -> None:
    print("targets:")
    if "ours" in rows:
        secs = rows["ours"]["seconds"]
        compare_secs = rows["ours:compare"]["seconds"]
        print(
            f"  ours end to end (profile + compare)  {secs:7.2f} s  (<= {TARGET_SECONDS:g} s)  "
            f"{_verdict(secs <= TARGET_SECONDS)}"
        )
        print(f"    of which compare alone             {compare_secs:7.2f} s  (for information)")
        ok = sorted(ours_run["flagged"]) == sorted(INJECTED)
        print(f"  ours flags exactly the injected features      {_verdict(ok)}")
        if "evidently" in rows:
            ratio = rows["evidently"]["seconds"] / secs
            print(
                f"  evidently / ours end to end          {ratio:7.1f} x  (>= {TARGET_RATIO:g})    "
                f"{_verdict(ratio >= TARGET_RATIO)}"
            )
            compare_ratio = rows["evidently"]["seconds"] / compare_secs
            print(f"    evidently / ours compare alone     {compare_ratio:7.1f} x  (for information)")
        elif "evidently" in methods:
            print("  evidently / ours end to end          n/a (Evidently did not run)")
    if min(a.rows, a.ref_rows) < 1_000_000:
        print(
            f"  (note: the targets are meant for 1M rows x 20 vs a 1M-row reference; this run has "
            f"{_fmt_rows(a.rows)} vs {_fmt_rows(a.ref_rows)}, so treat it as a smoke test)"
        )


_T0 = time.perf_counter()

if __name__ == "__main__":
    sys.exit(main())
