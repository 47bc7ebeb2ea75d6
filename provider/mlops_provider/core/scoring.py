"""Batch scoring with bounded memory.

The input Parquet is streamed in record batches; reading, predicting and writing run in three
stages joined by small bounded queues (pyarrow releases the GIL while decoding and encoding, and
the model's own threads predict), so memory holds a few batches whatever the input size. The
output is one Parquet file that appears at once when complete, then a ``manifest.json``; a
reader sees all predictions or none.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from mlops_provider.core.datasets import MANIFEST, _data_key, _parquet_file
from mlops_provider.core.errors import CorruptArtifactError, EmptyDatasetError, InvalidInputError
from mlops_provider.core.modeling import FeatureSpec, check_columns, predict_scores, prepare_frame
from mlops_provider.core.storage import ArtifactStore

log = logging.getLogger(__name__)
PREDICTIONS_FILE = "predictions.parquet"
_DONE = object()


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
    def __init__(self, target, name):
        super().__init__(target=self._run, name=name, daemon=True)
        self._target_fn = target
        self.error: BaseException | None = None

    def _run(self):
        try:
            self._target_fn()
        except BaseException as err:  # surfaced in the main thread
            self.error = err


def _put(q: queue.Queue, item, stop: threading.Event, peer: threading.Thread | None = None) -> bool:
    """Put unless ``stop`` is set or the consuming ``peer`` thread has died; True if put."""
    while not stop.is_set() and (peer is None or peer.is_alive()):
        try:
            q.put(item, timeout=0.2)
            return True
        except queue.Full:
            continue
    return False


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
    import pyarrow as pa
    import pyarrow.parquet as pq

    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise InvalidInputError(f"The 'batch_size' parameter must be an int >= 1. Got {batch_size!r} instead.")
    progress = progress or _progress_logger()
    key = _data_key(store, input_uri)
    pf, fh = _parquet_file(store, key)
    names = pf.schema_arrow.names
    where = f"The scoring input {store.uri(key)}"
    check_columns(names, spec.features, "feature", where)
    check_columns(names, list(passthrough), "passthrough", where)
    overlap = [c for c in ("prediction", "score", "model_version") if c in passthrough]
    if overlap:
        raise InvalidInputError(f"The 'passthrough' columns {overlap} clash with the output columns of the same names.")
    total = pf.metadata.num_rows
    if total == 0:
        fh.close()
        raise EmptyDatasetError(f"{where} has 0 rows; nothing to score.")
    read_cols = list(dict.fromkeys(list(passthrough) + spec.features))
    out_key = f"{output_key.strip('/')}/{PREDICTIONS_FILE}"

    stop = threading.Event()
    q_in: queue.Queue = queue.Queue(maxsize=2)
    q_out: queue.Queue = queue.Queue(maxsize=2)
    state = {"rows": 0, "batches": 0}

    def read():
        try:
            for b in pf.iter_batches(batch_size=batch_size, columns=read_cols, use_threads=True):
                if not _put(q_in, b, stop):
                    return
        except Exception as err:
            raise CorruptArtifactError(f"{store.uri(key)} could not be read as Parquet: {err}") from err
        finally:
            _put(q_in, _DONE, stop)

    def write(sink):
        writer = None
        while True:
            item = q_out.get()
            if item is _DONE:
                break
            if writer is None:
                writer = pq.ParquetWriter(sink, item.schema, compression="zstd")
            writer.write_table(item)
        if writer is not None:
            writer.close()

    t0 = time.perf_counter()
    reader = _Stage(read, "mlops-score-read")
    with fh, store.open_atomic(out_key) as sink:
        writer_stage = _Stage(lambda: write(sink), "mlops-score-write")
        reader.start()
        writer_stage.start()
        try:
            while True:
                try:
                    b = q_in.get(timeout=0.5)
                except queue.Empty:
                    if reader.error or writer_stage.error:
                        break
                    continue
                if b is _DONE:
                    break
                frame = pa.Table.from_batches([b]).select(spec.features).to_pandas(split_blocks=True)
                X = prepare_frame(frame, spec, where)
                pred, score = predict_scores(model, X, spec)
                cols = {c: b.column(c) for c in passthrough}
                cols["prediction"] = pa.array(pred)
                cols["score"] = pa.array(score, type=pa.float64())
                cols["model_version"] = pa.array([int(model_version)] * len(score), type=pa.int32())
                if not _put(q_out, pa.table(cols), stop, writer_stage):
                    break
                state["rows"] += len(score)
                state["batches"] += 1
                progress(state["rows"], total, time.perf_counter() - t0)
        except BaseException:
            stop.set()
            raise
        finally:
            _put(q_out, _DONE, threading.Event(), writer_stage)
            writer_stage.join()
            stop.set()
            reader.join()
        for stage in (reader, writer_stage):
            if stage.error is not None:
                raise stage.error
        if state["rows"] != total:
            raise CorruptArtifactError(f"Scored {state['rows']} rows but {store.uri(key)} holds {total}")
    seconds = time.perf_counter() - t0
    result = ScoringResult(
        model=model_name,
        model_version=int(model_version),
        model_sha256=model_sha256,
        input_uri=store.uri(key),
        output_uri=store.uri(out_key),
        manifest_uri=store.uri(f"{output_key.strip('/')}/{MANIFEST}"),
        rows=state["rows"],
        batches=state["batches"],
        seconds=round(seconds, 3),
        rows_per_second=round(state["rows"] / seconds, 1) if seconds > 0 else 0.0,
        columns=list(passthrough) + ["prediction", "score", "model_version"],
        output_sha256=sink.sha256,
    )
    manifest = result.to_dict()
    manifest.update(extra_manifest or {})
    store.write_json(f"{output_key.strip('/')}/{MANIFEST}", manifest)
    return result
