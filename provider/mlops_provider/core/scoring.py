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
) -> ScoringResult:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise InvalidInputError(
            f"The 'batch_size' parameter must be an int >= 1. Got {batch_size!r} instead."
        )
    progress = progress or _progress_logger()
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
    passthrough = list(passthrough)
    class_columns = outputs["class_columns"]
    read_cols = list(dict.fromkeys(passthrough + spec.features))
    out_key = f"{output_key.strip('/')}/{PREDICTIONS_FILE}"
    version = int(model_version)
    n_workers, omp_limit = _plan_workers(model)

    stop = threading.Event()  # tells every stage to give up
    failed = threading.Event()  # set by a stage that raised
    tokens = threading.Semaphore(n_workers + _SPARE_BATCHES)  # batches in flight
    q_in: queue.Queue = queue.Queue()  # bounded by the tokens
    q_out: queue.Queue = queue.Queue()
    state = {"rows": 0, "batches": 0}

    def chunks():
        """Lists of record batches of ``batch_size`` rows (the last one shorter), in file order.

        Row groups are read one at a time: with pyarrow 26, one ``iter_batches`` over the whole
        file kept what it had read, so memory grew with the file (1.25 GiB at 5M rows x 20).
        """
        buf, rows = [], 0
        for rg in range(pf.num_row_groups):
            for b in pf.iter_batches(
                batch_size=batch_size, row_groups=[rg], columns=read_cols, use_threads=True
            ):
                while b.num_rows:
                    take = min(b.num_rows, batch_size - rows)
                    buf.append(b.slice(0, take))
                    rows += take
                    b = b.slice(take)
                    if rows == batch_size:
                        yield buf
                        buf, rows = [], 0
        if buf:
            yield buf

    def read():
        seq = 0
        it = chunks()
        try:
            while _acquire(tokens, stop):
                try:
                    chunk = next(it)
                except StopIteration:
                    return
                except Exception as err:
                    raise CorruptArtifactError(
                        f"{store.uri(key)} could not be read as Parquet: {err}"
                    ) from err
                q_in.put((seq, chunk))
                seq += 1
        finally:
            for _ in range(n_workers):
                q_in.put(_DONE)

    def score_batch(chunk):
        table = pa.Table.from_batches(chunk)
        frame = table.select(spec.features).to_pandas(split_blocks=True)
        X = prepare_frame(frame, spec, where)
        p = predict(model, X, spec)
        cols = {c: table.column(c) for c in passthrough}
        cols["prediction"] = pa.array(p.pred)
        if class_columns:
            index = {str(c): j for j, c in enumerate(p.classes)}
            for name, cls in class_columns.items():
                cols[name] = pa.array(p.proba[:, index[str(cls)]], type=pa.float64())
        else:
            cols["score"] = pa.array(p.score, type=pa.float64())
        cols["model_version"] = pa.array(np.full(len(p.pred), version, dtype=np.int32))
        return pa.table(cols)

    def work():
        with omp_limit():
            while True:
                item = _get(q_in, stop)
                if item is None or item is _DONE:
                    return
                seq, chunk = item
                q_out.put((seq, score_batch(chunk)))

    def write(sink):
        writer = None
        pending: dict[int, Any] = {}
        try:
            while True:
                item = _get(q_out, stop)
                if item is None:
                    return
                if item is _DONE:
                    break
                seq, table = item
                pending[seq] = table
                while state["batches"] in pending:  # write in input order
                    table = pending.pop(state["batches"])
                    if writer is None:
                        writer = pq.ParquetWriter(
                            sink,
                            table.schema,
                            compression="zstd",
                            use_dictionary=_dictionary_columns(table.schema, passthrough),
                        )
                    writer.write_table(table)
                    state["rows"] += table.num_rows
                    state["batches"] += 1
                    del table
                    tokens.release()
                    progress(state["rows"], total, time.perf_counter() - t0)
            if pending:
                raise CorruptArtifactError(
                    f"Batches {sorted(pending)} of {store.uri(key)} were never written"
                )
        finally:
            if writer is not None:
                writer.close()

    t0 = time.perf_counter()
    with fh, store.open_atomic(out_key) as sink:
        reader = _Stage(read, "mlops-score-read", failed)
        workers = [_Stage(work, f"mlops-score-predict-{i}", failed) for i in range(n_workers)]
        writer_stage = _Stage(lambda: write(sink), "mlops-score-write", failed)
        stages = [reader, *workers, writer_stage]
        try:
            for stage in stages:
                stage.start()
            for stage in (reader, *workers):
                while stage.is_alive() and not failed.is_set():
                    stage.join(_POLL)
            if failed.is_set():
                stop.set()
            else:
                q_out.put(_DONE)
            while writer_stage.is_alive():
                writer_stage.join(_POLL)
        finally:
            stop.set()  # every stage polls it, so each returns within one batch
            for stage in stages:
                with contextlib.suppress(RuntimeError):  # never started (interrupted while starting)
                    stage.join()
        for stage in stages:
            if stage.error is not None:
                raise stage.error
        if state["rows"] != total:
            raise CorruptArtifactError(f"Scored {state['rows']} rows but {store.uri(key)} holds {total}")
    seconds = time.perf_counter() - t0
    result = ScoringResult(
        model=model_name,
        model_version=version,
        model_sha256=model_sha256,
        input_uri=store.uri(key),
        output_uri=store.uri(out_key),
        manifest_uri=store.uri(f"{output_key.strip('/')}/{MANIFEST}"),
        rows=state["rows"],
        batches=state["batches"],
        seconds=round(seconds, 3),
        rows_per_second=round(state["rows"] / seconds, 1) if seconds > 0 else 0.0,
        columns=passthrough + outputs["columns"],
        output_sha256=sink.sha256,
    )
    manifest = result.to_dict()
    manifest["class_columns"] = class_columns or None
    manifest["score_class"] = outputs["score_class"]
    manifest.update(extra_manifest or {})
    store.write_json(f"{output_key.strip('/')}/{MANIFEST}", manifest)
    return result
