"""Benchmark: parse (import) time of the DAG template files, against a minimal Airflow DAG file.

Usage::

    python benchmarks/bench_import_time.py               # every dags/*.py, 5 runs each
    python benchmarks/bench_import_time.py --runs 9
    python benchmarks/bench_import_time.py --dags path/to/a.py,path/to/b.py

What is measured
----------------
Each file is parsed the way the DAG processor does it (``importlib`` spec from the file path,
``exec_module``), each time in a FRESH interpreter, ``--runs`` times per file (interleaved between
files and modes; the median is reported). Only ``exec_module`` is timed; what differs between the
modes is what the interpreter has already imported before the clock starts:

* ``dag-processor`` (the target figure): ``import airflow.dag_processing.processor`` (plus the
  ``comms`` / ``task_runner`` modules the parse entry point imports), then the ``airflow.*`` modules
  named in the file's own top-level imports, through Airflow's own
  ``_pre_import_airflow_modules``. That is the state in which Airflow 3's DAG processor parses a
  file: its parent process (``airflow dag-processor``, which has imported the processor module and
  everything it needs: the SDK's DAG and operator classes, assets, params, timetables, croniter,
  pydantic, triggers...) pre-imports the file's ``airflow.*`` imports (``[dag_processor]
  parsing_pre_import_modules``, on by default) and then forks the child that imports the file. So
  this figure is what each parse costs there, and all it costs: the file's non-Airflow imports
  (``mlops_provider.*``), the Airflow modules those pull in that the processor has NOT loaded
  (e.g. the ``@task`` decorator machinery, ``airflow.sdk.bases.decorator`` and
  ``decorators.setup_teardown``, reached through the lazy ``airflow.sdk.task`` attribute, which a
  module-level pre-import of ``airflow.sdk`` does not resolve), and building the DAG objects.
* ``warm`` (information): only ``import airflow.sdk`` before the clock. Cheaper to set up, but it
  charges each file (and the reference) for modules the DAG processor already holds (timetables,
  croniter, the operator and asset machinery), so it overstates every parse and compresses the
  differences between files: a ratio on it is not what the DAG processor sees.
* ``sdk+pre-import`` (information; the former ``processor`` mode): like ``warm``, plus the file's
  ``airflow.*`` pre-imports; the pre-import step alone, without the processor's own modules.
* ``cold`` (information): ``import airflow.sdk`` plus parsing the file, from a fresh interpreter
  (what a one-off ``python dags/x.py`` or a first parse pays).
* ``full parse`` (information): in the ``dag-processor`` state, the whole of what the processor's
  child does with the file, timed: ``BundleDagBag`` over it (the import above plus the DagBag's
  checks) and serializing its DAGs (``_serialize_dags``), the part that grows with the number of
  tasks.

The reference is a minimal DAG file (written to a temp folder): ``from airflow.sdk import DAG``
and a DAG holding one ``EmptyOperator``. The target is template/minimal <= 1.3 on the
``dag-processor`` figure (both measured in the same state); the ``warm`` ratio is printed as
information. In that state everything the minimal file imports is already loaded, so it parses in
about a millisecond: the ratio then measures what a template imports beyond Airflow (each
``mlops_provider`` module is paid on every parse, as the pre-import only covers ``airflow.*``), and
the target line also prints the difference in ms per parse, the cost that matters when the
processor re-parses every file every ``min_file_process_interval``.

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
#: Timed for every file, interleaved (the names given to ``--_mode``).
MODES = ("dagproc", "warm", "preimport", "dagbag")

MINIMAL_DAG = '''\
"""Minimal reference DAG: one import of the SDK, one DAG, one EmptyOperator."""
import datetime as dt

from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG

with DAG(dag_id="minimal_reference", schedule=None, start_date=dt.datetime(2024, 1, 1)):
    EmptyOperator(task_id="noop")
'''


# ---------------------------------------------------------------------------------- child
def _dag_processor_state(path: str) -> None:
    """Import what Airflow 3's DAG processor holds when it forks the parse of ``path``."""
    import structlog

    os.environ["_AIRFLOW_PROCESS_CONTEXT"] = "client"  # as the parse entry point sets it

    import airflow.dag_processing.processor as processor
    from airflow.sdk.execution_time import comms, task_runner  # noqa: F401  (the parse entry point's)

    pre_import = getattr(processor, "_pre_import_airflow_modules", None)
    if pre_import is not None:
        pre_import(path, structlog.get_logger("bench"))
    else:  # an Airflow without it: the same, by hand
        _pre_import(path)


def _pre_import(path: str) -> None:
    """What ``airflow.dag_processing.processor._pre_import_airflow_modules`` does."""
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


def child(path: str, mode: str) -> dict:
    """Runs in a fresh interpreter: import what ``mode`` says (untimed), then parse ``path``.

    ``mode``: ``warm`` (airflow.sdk), ``preimport`` (airflow.sdk and the file's airflow.* imports),
    ``dagproc`` (the DAG processor's state, see the module docstring), ``importtime`` (``dagproc``,
    under ``-X importtime``, with markers around the parse), ``dagbag`` (``dagproc``, but the whole
    parse of the processor's child is timed: ``BundleDagBag`` over the file, then serialization)."""
    import importlib.util

    t0 = time.perf_counter()
    if mode in ("dagproc", "importtime", "dagbag"):
        _dag_processor_state(path)
    else:
        import airflow.sdk  # noqa: F401

        if mode == "preimport":
            _pre_import(path)
    t_setup = time.perf_counter() - t0
    before = set(sys.modules)
    name = "unusual_prefix_bench_" + os.path.splitext(os.path.basename(path))[0]
    if mode == "importtime":
        print(MARKER, file=sys.stderr, flush=True)
    t_serialize = None
    if mode == "dagbag":  # already imported by the processor: no cost moved out of the clock
        from pathlib import Path

        import structlog
        from airflow.dag_processing.dagbag import BundleDagBag
        from airflow.dag_processing.processor import _serialize_dags
    t1 = time.perf_counter()
    if mode == "dagbag":  # what airflow.dag_processing.processor._parse_file does
        bag = BundleDagBag(
            dag_folder=path, bundle_path=Path(path).parent, bundle_name="bench", load_op_links=False
        )
        t_file = time.perf_counter() - t1
        serialized, errors = _serialize_dags(bag, structlog.get_logger("bench"))
        t_serialize = time.perf_counter() - t1 - t_file
        if bag.import_errors or errors or not serialized:
            raise SystemExit(f"{path}: import errors {bag.import_errors or errors}")
        dags = list(bag.dags.values())
    else:
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        t_file = time.perf_counter() - t1
        from airflow.sdk import DAG

        dags = [v for v in vars(module).values() if isinstance(v, DAG)]
    if mode == "importtime":
        print(MARKER + " done", file=sys.stderr, flush=True)
    new = sorted(set(sys.modules) - before - {name})

    top = lambda mods: sorted({m.split(".")[0] for m in mods})  # noqa: E731
    return {
        "setup": t_setup,
        "file": t_file,
        "serialize": t_serialize,
        "new_modules": len(new),
        "new_top_level": top(new),
        "new_airflow": [m for m in new if m.split(".")[0] == "airflow"],
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
    p.add_argument("--_mode", default="dagproc", help=argparse.SUPPRESS)
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
        for f in files:  # untimed: fills the bytecode cache (the processor's modules too) and AIRFLOW_HOME
            _run(f, "dagproc", env)
        print(f"warm-up (bytecode cache, AIRFLOW_HOME): {time.perf_counter() - t0:.1f}s", flush=True)

        runs: dict[str, dict[str, list[dict]]] = {f: {m: [] for m in MODES} for f in files}
        for _ in range(a.runs):  # interleaved, so a burst of outside load spreads over files and modes
            for f in files:
                for m in MODES:
                    runs[f][m].append(_run(f, m, env)[0])
        traces = {f: _run(f, "importtime", env) for f in files}

    def median_ms(rs: list[dict], key=lambda r: r["file"]) -> float:
        return statistics.median(key(r) for r in rs) * 1000

    med = {
        f: {
            "dagproc": median_ms(rs["dagproc"]),
            "warm": median_ms(rs["warm"]),
            "pre": median_ms(rs["preimport"]),
            "full": median_ms(rs["dagbag"], lambda r: r["file"] + r["serialize"]),
            "ser": median_ms(rs["dagbag"], lambda r: r["serialize"]),
            "cold": median_ms(rs["warm"], lambda r: r["setup"] + r["file"]),
            "wall": median_ms(rs["dagproc"], lambda r: r["wall"]),
            "best": min(r["file"] for r in rs["dagproc"]) * 1000,
            "best_warm": min(r["file"] for r in rs["warm"]) * 1000,
            "all": [round(r["file"] * 1000, 1) for r in rs["dagproc"]],
            "load": max(
                (r["other_load"] for m in MODES for r in rs[m] if r["other_load"] is not None), default=None
            ),
            "last": rs["dagproc"][-1],
            "last_warm": rs["warm"][-1],
        }
        for f, rs in runs.items()
    }
    ref = med[minimal]
    width = max(len(x) for x in label.values())
    print()
    print(
        "ms, medians of the parse (exec_module) alone, by what was imported before the clock:\n"
        "  dag-processor = Airflow 3's DAG processor state: airflow.dag_processing.processor + the file's "
        "airflow.* pre-imports (the TARGET figure)\n"
        "  warm = airflow.sdk only; sdk+pre = airflow.sdk + the file's airflow.* pre-imports; "
        "cold = import airflow.sdk + parse\n"
        "  full parse = in the dag-processor state, the whole parse of the processor's child: "
        "DagBag over the file + serializing its DAGs (information)\n"
        "  process = wall time of the whole fresh interpreter (dag-processor runs); "
        "new modules = imported by the parse (dag-processor runs)"
    )
    cols = [
        ("dag-processor", "dagproc"),
        ("full parse", "full"),
        ("warm", "warm"),
        ("sdk+pre", "pre"),
        ("cold", "cold"),
    ]
    hdr = (
        f"{'file':<{width}} "
        + " ".join(f"{name + ' ms':>{max(8, len(name) + 3)}} {'ratio':>6}" for name, _ in cols)
        + f" {'process ms':>10} {'new modules':>11}  dags (tasks)"
    )
    print(hdr)
    print("-" * len(hdr))
    for f in files:
        m = med[f]
        last = m["last"]
        dags = ", ".join(f"{k} ({v})" for k, v in last["dags"].items())
        figures = " ".join(
            f"{m[key]:{max(8, len(name) + 3)}.1f} {m[key] / ref[key]:6.2f}" for name, key in cols
        )
        print(f"{label[f]:<{width}} {figures} {m['wall']:10.0f} {last['new_modules']:11d}  {dags}")
    print()
    for f in files:
        load = med[f]["load"]
        print(
            f"{label[f]}: dag-processor runs (ms) {med[f]['all']}, best {med[f]['best']:.1f}"
            + ("" if load is None else f"; other processes used up to {load:.2f} CPUs during its runs")
        )
    loads = [med[f]["load"] for f in files if med[f]["load"] is not None]
    if loads and max(loads) > 0.25:
        print(
            f"WARNING: other processes kept up to {max(loads):.2f} CPUs busy during the runs; "
            "the timings are perturbed (rerun on an idle machine, or with more --runs)."
        )
    print()
    print(
        "already imported before the parse (not charged to any file): "
        f"by `import airflow.sdk`: {ref['last_warm']['heavy_preloaded'] or 'none of the watched modules'}; "
        f"in the DAG processor: {ref['last']['heavy_preloaded'] or 'none of the watched modules'}"
    )
    for f in files:
        last = med[f]["last"]
        extra = [x for x in last["new_top_level"] if x not in ("airflow",)]
        airflow_new = last["new_airflow"]
        print(
            f"{label[f]}: new top-level packages {extra}; Airflow modules the DAG processor had not "
            f"loaded: {len(airflow_new)}"
            + (
                f" ({', '.join(airflow_new[:6])}{', ...' if len(airflow_new) > 6 else ''})"
                if airflow_new
                else ""
            )
        )
        slow = _slowest_imports(traces[f][1])
        if slow:
            print(
                "    slowest outermost imports while parsing (cumulative ms, -X importtime, one "
                "dag-processor run; includes Airflow's lazy imports): "
                + ", ".join(f"{n} {ms:.1f}" for n, ms in slow)
            )
    print()
    print("targets:")
    for f in files[1:]:
        m = med[f]
        ratio = m["dagproc"] / ref["dagproc"]
        ok = ratio <= TARGET_RATIO
        print(
            f"  {label[f]:<{width}} dag-processor parse {m['dagproc']:6.1f} ms vs {ref['dagproc']:.1f} ms "
            f"= {ratio:5.2f}x (<= {TARGET_RATIO})  {'PASS' if ok else 'MISS'}  "
            f"(+{m['dagproc'] - ref['dagproc']:.1f} ms per parse)"
        )
        print(
            f"  {label[f]:<{width}} (info) best-of-runs {m['best'] / ref['best']:5.2f}x; "
            f"full parse {m['full']:.1f} ms vs {ref['full']:.1f} ms = {m['full'] / ref['full']:5.2f}x "
            f"(serialization {m['ser']:.1f} ms); "
            f"warm (sdk only) {m['warm']:.1f} ms vs {ref['warm']:.1f} ms = {m['warm'] / ref['warm']:5.2f}x; "
            f"sdk+pre {m['pre'] / ref['pre']:5.2f}x; cold {m['cold'] / ref['cold']:5.2f}x"
        )
        new_heavy = sorted(set(m["last"]["heavy_new"]) | set(m["last_warm"]["heavy_new"]))
        heavy = [h for h in new_heavy if h in HEAVY]
        watched = [h for h in new_heavy if h in WATCHED]
        status = "PASS" if not heavy else "FAIL"
        print(
            f"  {label[f]:<{width}} heavy modules imported by parsing: {heavy or 'none'}  {status}"
            + (f"  (also watched: {watched})" if watched else "")
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
