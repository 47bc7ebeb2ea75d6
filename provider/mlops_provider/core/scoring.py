"""Batch scoring with bounded memory.

The input Parquet is streamed one row group at a time, in batches of ``batch_size`` rows, through
three stages joined by queues: one thread reads, a few worker threads prepare and predict, one
thread writes the predictions back in input order. A fixed number of batch "tokens" bounds what is
in flight (read, being predicted or waiting to be written), so memory holds a row group and a few
batches whatever the input size. pyarrow releases the GIL while decoding and encoding, and so do
the estimators' compiled predict loops.

With a scikit-learn model, up to one worker per CPU (at most ``_MAX_WORKERS``) predicts different
batches at the same time, each with its share of the CPUs for its OpenMP threads (set per thread
with ``threadpoolctl``). One OpenMP team spanning every CPU waits at each tree for its slowest
thread, so it stalls whenever the reader, the writer or another process takes one of its CPUs;
independent teams do not. Other models (LightGBM, XGBoost, registered estimators), whose thread
safety is not known here, are predicted by a single worker with their own threading.

The output is one Parquet file that appears at once when complete, then a ``manifest.json``; a
reader sees all predictions or none. The predictions are those of ``prepare_frame`` then
``predict`` on each batch, the same as scoring the whole input at once: ``prediction``, then for a
multiclass model one probability column per class (:func:`probability_columns`, the mapping in the
manifest's ``class_columns``), else ``score`` (a binary model's P(positive class), named in the
manifest's ``score_class``; a regressor's prediction), then ``model_version``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import re
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from mlops_provider.core.datasets import MANIFEST, _data_key, _parquet_file
from mlops_provider.core.errors import CorruptArtifactError, EmptyDatasetError, InvalidInputError
from mlops_provider.core.modeling import FeatureSpec, check_columns, predict, prepare_frame
from mlops_provider.core.storage import ArtifactStore

log = logging.getLogger(__name__)
PREDICTIONS_FILE = "predictions.parquet"
_DONE = object()
#: At most this many predict workers (each holds a batch and its intermediate copies).
_MAX_WORKERS = 4
#: Batches in flight beyond one per worker (one being read, one being written).
_SPARE_BATCHES = 2
_POLL = 0.2


def probability_columns(classes: list[Any]) -> dict[str, Any]:
    """``proba_<class>`` column name -> class, one per class: letters, digits and ``_`` only (other
    characters become ``_``, at most 60), made unique with a ``_<n>`` suffix where two collide."""
    out: dict[str, Any] = {}
    for i, c in enumerate(classes):
        base = "proba_" + (re.sub(r"[^A-Za-z0-9_]", "_", str(c))[:60] or "class")
        name = base if base not in out else f"{base}_{i}"
        while name in out:
            name = f"{name}_{i}"
        out[name] = c
    return out


def output_columns(spec: FeatureSpec) -> dict[str, Any]:
    """What a prediction set holds for ``spec``: ``prediction``; for a multiclass model one
    probability column per class (``class_columns``: name -> class), else ``score`` (a binary
    model's P(``score_class``), a regressor's prediction); ``model_version``."""
    if spec.kind == "multiclass":
        classes = probability_columns(spec.classes)
        return {
            "columns": ["prediction", *classes, "model_version"],
            "class_columns": classes,
            "score_class": None,
        }
    return {
        "columns": ["prediction", "score", "model_version"],
        "class_columns": {},
        "score_class": spec.positive_label if spec.kind == "binary" else None,
    }


@dataclass
class ScoringResult:
    model: str
    model_version: int
    model_sha256: str
    input_uri: str
    output_uri: str
    manifest_uri: str
    rows: int
    batches: int
    seconds: float
    rows_per_second: float
    columns: list[str]
    output_sha256: str
    engine: dict[str, Any] | None = None  # core.compiled.Engine: scikit-learn or compiled, and why

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _progress_logger(every_seconds: float = 10.0) -> Callable[[int, int, float], None]:
    last = [0.0]

    def report(rows: int, total: int, elapsed: float) -> None:
        if elapsed - last[0] >= every_seconds or rows == total:
            last[0] = elapsed
            pct = 100.0 * rows / total if total else 100.0
            rate = rows / elapsed if elapsed > 0 else 0.0
            log.info("Scored %d/%d rows (%.1f%%), %.0f rows/s", rows, total, pct, rate)

    return report


class _Stage(threading.Thread):
    def __init__(self, target, name: str, failed: threading.Event):
        super().__init__(target=self._run, name=name, daemon=True)
        self._target_fn = target
        self._failed = failed
        self.error: BaseException | None = None

    def _run(self):
        try:
            self._target_fn()
        except BaseException as err:  # surfaced in the main thread
            self.error = err
            self._failed.set()


def _get(q: queue.Queue, stop: threading.Event):
    """The next item of ``q``, or None once ``stop`` is set."""
    while not stop.is_set():
        try:
            return q.get(timeout=_POLL)
        except queue.Empty:
            continue
    return None


def _acquire(tokens: threading.Semaphore, stop: threading.Event) -> bool:
    while not stop.is_set():
        if tokens.acquire(timeout=_POLL):
            return True
    return False


def _cpu_budget() -> int:
    """CPUs this process may use: its affinity mask, capped by ``OMP_NUM_THREADS`` if set."""
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        n = os.cpu_count() or 1
    env = os.environ.get("OMP_NUM_THREADS", "").split(",")[0].strip()
    if env.isdigit() and int(env) > 0:
        n = min(n, int(env))
    return max(1, n)


def _sklearn_only(model: Any) -> bool:
    """True if ``model`` and every estimator nested in it are scikit-learn's (their predict is
    thread-safe); a LightGBM model inside a Pipeline, say, makes it False."""
    objs = [model]
    get_params = getattr(model, "get_params", None)
    if callable(get_params):
        try:
            objs += [
                v for v in get_params(deep=True).values() if hasattr(v, "fit") or hasattr(v, "get_params")
            ]
        except Exception:
            return False
    return all(type(o).__module__.startswith("sklearn.") for o in objs)


def _plan_workers(model: Any) -> tuple[int, Callable[[], Any]]:
    """(number of predict workers, factory of the per-worker OpenMP limit context)."""
    budget = _cpu_budget()
    if hasattr(model, "thread_budget"):  # a compiled model: one predictor per worker thread
        workers = min(budget, _MAX_WORKERS)
        per_worker = max(1, budget // workers)
        return workers, lambda: model.thread_budget(per_worker)
    workers = min(budget, _MAX_WORKERS) if _sklearn_only(model) else 1
    if workers > 1:
        try:
            from threadpoolctl import ThreadpoolController

            controller = ThreadpoolController()
        except Exception:  # without a way to split the CPUs, several OpenMP teams would oversubscribe
            workers = 1
        else:
            per_worker = max(1, budget // workers)
            # OpenMP limits are per calling thread, so each worker sets its own.
            return workers, lambda: controller.limit(limits=per_worker, user_api="openmp")
    return workers, contextlib.nullcontext


def _dictionary_columns(schema, passthrough) -> list[str]:
    """Columns worth dictionary-encoding: not floats (scores) and not integer ids."""
    import pyarrow as pa

    return [
        f.name
        for f in schema
        if not pa.types.is_floating(f.type) and not (f.name in passthrough and pa.types.is_integer(f.type))
    ]


def _open_input(store: ArtifactStore, input_uri: str, spec: FeatureSpec, passthrough) -> tuple:
    """(key, Parquet file, its handle, the output columns, rows) of a scoring input, its columns
    checked; the handle is closed if a check fails."""
    key = _data_key(store, input_uri)
    pf, fh = _parquet_file(store, key)
    names = pf.schema_arrow.names
    where = f"The scoring input {store.uri(key)}"
    try:
        check_columns(names, spec.features, "feature", where)
        check_columns(names, list(passthrough), "passthrough", where)
        outputs = output_columns(spec)
        overlap = [c for c in outputs["columns"] if c in passthrough]
        if overlap:
            raise InvalidInputError(
                f"The 'passthrough' columns {overlap} clash with the output columns of the same names."
            )
        total = pf.metadata.num_rows
        if total == 0:
            raise EmptyDatasetError(f"{where} has 0 rows; nothing to score.")
    except BaseException:
        fh.close()
        raise
    return key, pf, fh, outputs, total


def _sample(pf, spec: FeatureSpec, where: str):
    """The first :data:`~mlops_provider.core.compiled.CHECK_ROWS` rows' features, prepared (the
    sample a compiled model is checked on)."""
    from mlops_provider.core.compiled import CHECK_ROWS

    batch = next(pf.iter_batches(batch_size=CHECK_ROWS, columns=spec.features), None)
    if batch is None:
        raise EmptyDatasetError(f"{where} has 0 rows; nothing to score.")
    return prepare_frame(batch.to_pandas(), spec, where)


class _Pipeline:
    """One scoring run's three stages (read, predict, write) and what they share: the queues, the
    batch tokens bounding what is in flight, and the stop / failed events."""

    def __init__(
        self, store, key, pf, model, spec, *, passthrough, outputs, version, batch_size, total, progress
    ):
        self.store, self.key, self.pf, self.model, self.spec = store, key, pf, model, spec
        self.where = f"The scoring input {store.uri(key)}"
        self.passthrough = passthrough
        self.class_columns = outputs["class_columns"]
        self.read_cols = list(dict.fromkeys(passthrough + spec.features))
        self.version, self.batch_size, self.total, self.progress = version, batch_size, total, progress
        self.n_workers, self.omp_limit = _plan_workers(model)
        self.stop = threading.Event()  # tells every stage to give up
        self.failed = threading.Event()  # set by a stage that raised
        self.tokens = threading.Semaphore(self.n_workers + _SPARE_BATCHES)  # batches in flight
        self.q_in: queue.Queue = queue.Queue()  # bounded by the tokens
        self.q_out: queue.Queue = queue.Queue()
        self.rows = 0
        self.batches = 0
        self.t0 = time.perf_counter()

    # ------------------------------------------------------------------ read
    def chunks(self):
        """Lists of record batches of ``batch_size`` rows (the last one shorter), in file order.

        Row groups are read one at a time: with pyarrow 26, one ``iter_batches`` over the whole
        file kept what it had read, so memory grew with the file (1.25 GiB at 5M rows x 20).
        """
        size = self.batch_size
        buf, rows = [], 0
        for rg in range(self.pf.num_row_groups):
            for b in self.pf.iter_batches(
                batch_size=size, row_groups=[rg], columns=self.read_cols, use_threads=True
            ):
                while b.num_rows:
                    take = min(b.num_rows, size - rows)
                    buf.append(b.slice(0, take))
                    rows += take
                    b = b.slice(take)
                    if rows == size:
                        yield buf
                        buf, rows = [], 0
        if buf:
            yield buf

    def read(self) -> None:
        seq = 0
        it = self.chunks()
        try:
            while _acquire(self.tokens, self.stop):
                try:
                    chunk = next(it)
                except StopIteration:
                    return
                except Exception as err:
                    raise CorruptArtifactError(
                        f"{self.store.uri(self.key)} could not be read as Parquet: {err}"
                    ) from err
                self.q_in.put((seq, chunk))
                seq += 1
        finally:
            for _ in range(self.n_workers):
                self.q_in.put(_DONE)

    # ------------------------------------------------------------------ predict
    def score_batch(self, chunk):
        import numpy as np
        import pyarrow as pa

        spec = self.spec
        table = pa.Table.from_batches(chunk)
        frame = table.select(spec.features).to_pandas(split_blocks=True)
        X = prepare_frame(frame, spec, self.where)
        p = predict(self.model, X, spec)
        cols = {c: table.column(c) for c in self.passthrough}
        cols["prediction"] = pa.array(p.pred)
        if self.class_columns:
            index = {str(c): j for j, c in enumerate(p.classes)}
            for name, cls in self.class_columns.items():
                cols[name] = pa.array(p.proba[:, index[str(cls)]], type=pa.float64())
        else:
            cols["score"] = pa.array(p.score, type=pa.float64())
        cols["model_version"] = pa.array(np.full(len(p.pred), self.version, dtype=np.int32))
        return pa.table(cols)

    def work(self) -> None:
        with self.omp_limit():
            while True:
                item = _get(self.q_in, self.stop)
                if item is None or item is _DONE:
                    return
                seq, chunk = item
                self.q_out.put((seq, self.score_batch(chunk)))

    # ------------------------------------------------------------------ write
    def write(self, sink) -> None:
        state: dict[str, Any] = {"writer": None}
        pending: dict[int, Any] = {}
        try:
            while True:
                item = _get(self.q_out, self.stop)
                if item is None:
                    return
                if item is _DONE:
                    break
                seq, table = item
                pending[seq] = table
                self._write_ready(pending, state, sink)
            if pending:
                raise CorruptArtifactError(
                    f"Batches {sorted(pending)} of {self.store.uri(self.key)} were never written"
                )
        finally:
            if state["writer"] is not None:
                state["writer"].close()

    def _write_ready(self, pending: dict[int, Any], state: dict[str, Any], sink) -> None:
        """Write the pending batches that come next in input order."""
        import pyarrow.parquet as pq

        while self.batches in pending:
            table = pending.pop(self.batches)
            if state["writer"] is None:
                state["writer"] = pq.ParquetWriter(
                    sink,
                    table.schema,
                    compression="zstd",
                    use_dictionary=_dictionary_columns(table.schema, self.passthrough),
                )
            state["writer"].write_table(table)
            self.rows += table.num_rows
            self.batches += 1
            del table
            self.tokens.release()
            self.progress(self.rows, self.total, time.perf_counter() - self.t0)

    # ------------------------------------------------------------------ run
    def run(self, sink) -> None:
        """Run the stages to the end (or the first failure, re-raised here)."""
        reader = _Stage(self.read, "mlops-score-read", self.failed)
        workers = [_Stage(self.work, f"mlops-score-predict-{i}", self.failed) for i in range(self.n_workers)]
        writer = _Stage(lambda: self.write(sink), "mlops-score-write", self.failed)
        stages = [reader, *workers, writer]
        try:
            for stage in stages:
                stage.start()
            self._wait(reader, workers, writer)
        finally:
            self.stop.set()  # every stage polls it, so each returns within one batch
            for stage in stages:
                with contextlib.suppress(RuntimeError):  # never started (interrupted while starting)
                    stage.join()
        for stage in stages:
            if stage.error is not None:
                raise stage.error
        if self.rows != self.total:
            raise CorruptArtifactError(
                f"Scored {self.rows} rows but {self.store.uri(self.key)} holds {self.total}"
            )

    def _wait(self, reader: _Stage, workers: list[_Stage], writer: _Stage) -> None:
        for stage in (reader, *workers):
            while stage.is_alive() and not self.failed.is_set():
                stage.join(_POLL)
        if self.failed.is_set():
            self.stop.set()
        else:
            self.q_out.put(_DONE)
        while writer.is_alive():
            writer.join(_POLL)


def batch_score(
    store: ArtifactStore,
    model: Any,
    spec: FeatureSpec,
    *,
    model_name: str,
    model_version: int,
    model_sha256: str,
    input_uri: str,
    output_key: str,
    passthrough: list[str] | tuple[str, ...] = (),
    batch_size: int = 131_072,
    progress: Callable[[int, int, float], None] | None = None,
    extra_manifest: dict[str, Any] | None = None,
    compiled: str = "auto",
) -> ScoringResult:
    """Score ``input_uri`` with ``model`` into ``<output_key>/predictions.parquet`` (atomically),
    then write ``<output_key>/manifest.json`` (see the module docstring).

    ``compiled`` (``"auto"``, ``"off"``, ``"require"``): whether a tree ensemble's trees are scored
    as compiled code, checked first against scikit-learn on a sample of this input (see
    :mod:`mlops_provider.core.compiled`); the result's ``engine`` says which scored and why."""
    from mlops_provider.core import compiled as compiled_mod

    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise InvalidInputError(
            f"The 'batch_size' parameter must be an int >= 1. Got {batch_size!r} instead."
        )
    if compiled not in compiled_mod.MODES:
        raise InvalidInputError(
            f"The 'compiled' parameter must be one of {list(compiled_mod.MODES)}. Got {compiled!r} instead."
        )
    progress = progress or _progress_logger()
    key, pf, fh, outputs, total = _open_input(store, input_uri, spec, passthrough)
    passthrough = list(passthrough)
    out_key = f"{output_key.strip('/')}/{PREDICTIONS_FILE}"
    try:
        scorer, engine = compiled_mod.prepare(
            model,
            spec,
            mode=compiled,
            model_sha256=model_sha256,
            sample=lambda: _sample(pf, spec, f"The scoring input {store.uri(key)}"),
            rows=total,
            store=store,
            threads=_cpu_budget(),
        )
        pipeline = _Pipeline(
            store,
            key,
            pf,
            scorer,
            spec,
            passthrough=passthrough,
            outputs=outputs,
            version=int(model_version),
            batch_size=batch_size,
            total=total,
            progress=progress,
        )
    except BaseException:
        fh.close()
        raise
    with fh, store.open_atomic(out_key) as sink:
        pipeline.run(sink)
    seconds = time.perf_counter() - pipeline.t0
    result = ScoringResult(
        model=model_name,
        model_version=pipeline.version,
        model_sha256=model_sha256,
        input_uri=store.uri(key),
        output_uri=store.uri(out_key),
        manifest_uri=store.uri(f"{output_key.strip('/')}/{MANIFEST}"),
        rows=pipeline.rows,
        batches=pipeline.batches,
        seconds=round(seconds, 3),
        rows_per_second=round(pipeline.rows / seconds, 1) if seconds > 0 else 0.0,
        columns=passthrough + outputs["columns"],
        output_sha256=sink.sha256,
    )
    if isinstance(scorer, compiled_mod.CompiledModel):
        engine.tie_rows = scorer.tie_rows
    result.engine = engine.to_dict()
    manifest = result.to_dict()
    manifest["class_columns"] = outputs["class_columns"] or None
    manifest["score_class"] = outputs["score_class"]
    manifest.update(extra_manifest or {})
    store.write_json(f"{output_key.strip('/')}/{MANIFEST}", manifest)
    return result
