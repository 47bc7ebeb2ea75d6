"""Benchmark: parse (import) time of the DAG template files, against a minimal Airflow DAG file.

Usage::

    python benchmarks/bench_import_time.py               # every dags/*.py, 5 runs each
    python benchmarks/bench_import_time.py --runs 9
    python benchmarks/bench_import_time.py --dags path/to/a.py,path/to/b.py

What is measured
----------------
Each file is parsed the way the DAG processor does it (``importlib`` spec from the file path,
``exec_module``), each time in a FRESH interpreter, ``--runs`` times per file (interleaved between
files; the median is reported):

* ``warm``: the interpreter has already run ``import airflow.sdk`` (as a DAG processor has, and
  more) before the clock starts; the time is that of parsing the file alone. This is the fair
  figure: the extra cost each file adds to a parse loop.
* ``cold``: ``import airflow.sdk`` plus parsing the file, from a fresh interpreter (what a
  one-off ``python dags/x.py`` or a first parse pays).
* ``processor`` (for information): like ``warm``, but the ``airflow.*`` modules named in the
  file's own top-level imports are imported before the clock too. Airflow 3's DAG processor does
  exactly that in its parent process before forking the parse (``[dag_processor]
  parsing_pre_import_modules``, on by default), so this is the closest to what each parse costs
  there: the file's non-Airflow imports plus building the DAG objects.

The reference is a minimal DAG file (written to a temp folder): ``from airflow.sdk import DAG``
and a DAG holding one ``EmptyOperator``. The target is template/minimal <= 1.3 on the warm figure.

The script also lists the modules a template imports beyond ``airflow.sdk``, the slowest of them
(from ``python -X importtime``), and checks that parsing it imports none of the heavy modules
(pandas, sklearn, great_expectations, pyarrow, numpy, scipy, boto3, and a few more): the DAG
processor parses every file every few seconds, so those belong inside ``execute``.

Fairness details: every child gets the same environment; bytecode is cached (in a temporary
``PYTHONPYCACHEPREFIX``, so the repository gets no ``__pycache__``) and one untimed run per file
fills it, so no run pays for compiling Python sources to bytecode (the DAG files included: the DAG
processor's ``SourceFileLoader`` caches them too, where it can write). ``AIRFLOW_HOME`` is a
temporary folder unless already set.
Exits 0 whatever the figures (they are figures, not tests).
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from _common import _busy_cpu_seconds, _children_cpu_seconds  # noqa: E402

TARGET_RATIO = 1.3
#: Imported by parsing a DAG file, these fail the check (the brief's list).
HEAVY = ("pandas", "sklearn", "great_expectations", "pyarrow", "numpy", "scipy", "boto3")
#: Also reported if a template pulls them in (heavy too, but not in the target list).
WATCHED = ("botocore", "skops", "mlflow", "lightgbm", "xgboost", "s3fs", "gcsfs", "sqlalchemy", "fsspec")
MARKER = "--- mlops-bench: parsing the DAG file ---"

MINIMAL_DAG = '''\
"""Minimal reference DAG: one import of the SDK, one DAG, one EmptyOperator."""
import datetime as dt

from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG

with DAG(dag_id="minimal_reference", schedule=None, start_date=dt.datetime(2024, 1, 1)):
    EmptyOperator(task_id="noop")
'''


# ---------------------------------------------------------------------------------- child
def child(path: str, mode: str) -> dict:
    """Runs in a fresh interpreter: optionally import airflow.sdk, then parse ``path``."""
    import importlib.util

    t0 = time.perf_counter()
    import airflow.sdk  # noqa: F401

    t_sdk = time.perf_counter() - t0
    if mode == "processor":  # what airflow.dag_processing.processor._pre_import_airflow_modules does
        import ast
        import importlib

        with open(path, "rb") as f:
            tree = ast.parse(f.read())
        for st in tree.body:
            names = [n.name for n in st.names] if isinstance(st, ast.Import) else []
            if isinstance(st, ast.ImportFrom) and st.module is not None:
                names = [st.module]
            for m in names:
                if m.startswith("airflow."):
                    importlib.import_module(m)
    before = set(sys.modules)
    name = "unusual_prefix_bench_" + os.path.splitext(os.path.basename(path))[0]
    if mode == "importtime":
        print(MARKER, file=sys.stderr, flush=True)
    t1 = time.perf_counter()
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    t_file = time.perf_counter() - t1
    if mode == "importtime":
        print(MARKER + " done", file=sys.stderr, flush=True)
    new = sorted(set(sys.modules) - before - {name})

    from airflow.sdk import DAG

    dags = [v for v in vars(module).values() if isinstance(v, DAG)]
    top = lambda mods: sorted({m.split(".")[0] for m in mods})  # noqa: E731
    return {
        "sdk_import": t_sdk,
        "file": t_file,
        "new_modules": len(new),
        "new_top_level": top(new),
        "heavy_new": [m for m in HEAVY + WATCHED if m in top(new)],
        "heavy_preloaded": [m for m in HEAVY + WATCHED if m in top(before)],
        "dags": {d.dag_id: len(d.task_dict) for d in dags},
    }


# ---------------------------------------------------------------------------------- parent


def _run(path: str, mode: str, env: dict) -> tuple[dict, str]:
    cmd = [sys.executable]
    if mode == "importtime":
        cmd += ["-X", "importtime"]
    cmd += [os.path.abspath(__file__), "--_child", path, "--_mode", mode]
    busy0, cpu0, t0 = _busy_cpu_seconds(), _children_cpu_seconds(), time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO)
    busy1, cpu1, wall = _busy_cpu_seconds(), _children_cpu_seconds(), time.perf_counter() - t0
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr[-5000:])
        raise SystemExit(f"parsing {path} failed (exit code {proc.returncode})")
    line = [x for x in proc.stdout.splitlines() if x.startswith("{")][-1]
    out = json.loads(line)
    out["wall"] = wall
    # CPUs kept busy by OTHER processes during this run (the figures are only comparable near 0)
    out["other_load"] = None if busy0 is None else max(0.0, (busy1 - busy0) - (cpu1 - cpu0)) / wall
    return out, proc.stderr


def _slowest_imports(stderr: str, k: int = 6) -> list[tuple[str, float]]:
    """Outermost imports (cumulative ms) made while the file was parsed, from -X importtime: the
    file's own imports and the lazy imports Airflow makes while the DAG is built."""
    lines = stderr.splitlines()
    try:
        start = lines.index(MARKER)
        end = lines.index(MARKER + " done")
    except ValueError:
        return []
    rows = []
    for ln in lines[start + 1 : end]:
        if not ln.startswith("import time:") or "|" not in ln:
            continue
        _, cum, name = (p.strip() for p in ln[len("import time:") :].split("|", 2))
        raw = ln.split("|", 2)[2]
        depth = (len(raw) - len(raw.lstrip(" "))) // 2
        if depth == 0 and cum.isdigit():  # direct imports of the DAG file (their cost includes children)
            rows.append((name, int(cum) / 1000))
    return sorted(rows, key=lambda r: -r[1])[:k]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=5, help="fresh interpreters per file (median reported)")
    p.add_argument("--dags", default=None, help="comma-separated DAG files (default: every dags/*.py)")
    p.add_argument("--_child", default=None, help=argparse.SUPPRESS)
    p.add_argument("--_mode", default="warm", help=argparse.SUPPRESS)
    a = p.parse_args(argv)

    if a._child:
        print(json.dumps(child(a._child, a._mode)))
        return 0

    templates = [
        x
        for x in (a.dags.split(",") if a.dags else sorted(glob.glob(os.path.join(REPO, "dags", "*.py"))))
        if x.strip() and not os.path.basename(x).startswith("_")
    ]
    with tempfile.TemporaryDirectory(prefix="mlops-bench-import-") as tmp:
        minimal = os.path.join(tmp, "minimal_dag.py")
        with open(minimal, "w") as f:
            f.write(MINIMAL_DAG)
        env = dict(os.environ)
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = os.path.join(tmp, "pycache")
        env.setdefault("AIRFLOW_HOME", os.path.join(tmp, "airflow_home"))
        env.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
        try:
            import mlops_provider  # noqa: F401
        except ImportError:  # run from a checkout without the package installed
            env["PYTHONPATH"] = os.pathsep.join(
                filter(None, [os.path.join(REPO, "provider"), env.get("PYTHONPATH")])
            )
        files = [minimal] + [os.path.abspath(t) for t in templates]
        label = {minimal: "minimal (reference)"} | {f: os.path.relpath(f, REPO) for f in files[1:]}
        print(
            f"bench_import_time: {len(files) - 1} template(s), {a.runs} fresh interpreter(s) per file, "
            f"python {sys.version.split()[0]}",
            flush=True,
        )

        t0 = time.perf_counter()
        for f in files:  # untimed: fills the bytecode cache and AIRFLOW_HOME
            _run(f, "warm", env)
        print(f"warm-up (bytecode cache, AIRFLOW_HOME): {time.perf_counter() - t0:.1f}s", flush=True)

        runs: dict[str, list[dict]] = {f: [] for f in files}
        pruns: dict[str, list[dict]] = {f: [] for f in files}
        for _ in range(a.runs):  # interleaved, so a burst of outside load spreads over the files
            for f in files:
                runs[f].append(_run(f, "warm", env)[0])
                pruns[f].append(_run(f, "processor", env)[0])
        traces = {f: _run(f, "importtime", env) for f in files}

    med = {
        f: {
            "file": statistics.median(r["file"] for r in rs) * 1000,
            "cold": statistics.median(r["sdk_import"] + r["file"] for r in rs) * 1000,
            "proc": statistics.median(r["file"] for r in pruns[f]) * 1000,
            "wall": statistics.median(r["wall"] for r in rs) * 1000,
            "best": min(r["file"] for r in rs) * 1000,
            "all": [round(r["file"] * 1000, 1) for r in rs],
            "load": max(
                (r["other_load"] for r in rs + pruns[f] if r["other_load"] is not None), default=None
            ),
            "last": rs[-1],
        }
        for f, rs in runs.items()
    }
    ref = med[minimal]
    print()
    print(
        "ms, medians; warm = parse the file with airflow.sdk already imported; "
        "cold = import airflow.sdk + parse; processor = parse with the file's airflow.* imports "
        "preloaded too (as the DAG processor does); "
        "process = wall time of the whole fresh interpreter (warm runs)"
    )
    hdr = (
        f"{'file':<34} {'warm ms':>8} {'ratio':>6} {'cold ms':>8} {'ratio':>6} "
        f"{'processor ms':>12} {'ratio':>6} {'process ms':>10} {'new modules':>11}  dags (tasks)"
    )
    print(hdr)
    print("-" * len(hdr))
    for f in files:
        m = med[f]
        last = m["last"]
        dags = ", ".join(f"{k} ({v})" for k, v in last["dags"].items())
        print(
            f"{label[f]:<34} {m['file']:8.1f} {m['file'] / ref['file']:6.2f} {m['cold']:8.1f} "
            f"{m['cold'] / ref['cold']:6.2f} {m['proc']:12.1f} {m['proc'] / ref['proc']:6.2f} "
            f"{m['wall']:10.0f} {last['new_modules']:11d}  {dags}"
        )
    print()
    for f in files:
        load = med[f]["load"]
        print(
            f"{label[f]}: warm runs (ms) {med[f]['all']}, best {med[f]['best']:.1f}"
            + ("" if load is None else f"; other processes used up to {load:.2f} CPUs during its runs")
        )
    loads = [med[f]["load"] for f in files if med[f]["load"] is not None]
    if loads and max(loads) > 0.25:
        print(
            f"WARNING: other processes kept up to {max(loads):.2f} CPUs busy during the runs; "
            "the timings are perturbed (rerun on an idle machine, or with more --runs)."
        )
    print()
    preloaded = med[minimal]["last"]["heavy_preloaded"]
    print(
        "already imported by `import airflow.sdk` (not charged to any file): "
        f"{preloaded or 'none of the watched modules'}"
    )
    for f in files:
        last = med[f]["last"]
        extra = [m for m in last["new_top_level"] if m not in ("airflow",)]
        print(f"{label[f]}: new top-level packages {extra}")
        slow = _slowest_imports(traces[f][1])
        if slow:
            print(
                "    slowest outermost imports while parsing (cumulative ms, -X importtime, one warm run; "
                "includes Airflow's lazy imports): " + ", ".join(f"{n} {ms:.1f}" for n, ms in slow)
            )
    print()
    print("targets:")
    for f in files[1:]:
        m = med[f]
        ratio = m["file"] / ref["file"]
        ok = ratio <= TARGET_RATIO
        print(
            f"  {label[f]:<34} warm parse {m['file']:6.1f} ms vs {ref['file']:.1f} ms = {ratio:5.2f}x "
            f"(<= {TARGET_RATIO})  {'PASS' if ok else 'MISS'}"
        )
        pr = m["proc"] / ref["proc"]
        print(
            f"  {label[f]:<34} (info) best-of-runs {m['best'] / ref['best']:5.2f}x; processor-like parse "
            f"{m['proc']:.1f} ms vs {ref['proc']:.1f} ms = {pr:5.2f}x; cold {m['cold'] / ref['cold']:5.2f}x"
        )
        heavy = [h for h in med[f]["last"]["heavy_new"] if h in HEAVY]
        watched = [h for h in med[f]["last"]["heavy_new"] if h in WATCHED]
        status = "PASS" if not heavy else "FAIL"
        print(
            f"  {label[f]:<34} heavy modules imported by parsing: {heavy or 'none'}  {status}"
            + (f"  (also watched: {watched})" if watched else "")
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
