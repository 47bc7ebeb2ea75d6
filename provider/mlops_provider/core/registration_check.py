"""What is registered is what was judged.

The evaluation keeps a seeded sample (up to :data:`MAX_ROWS` labelled rows) of its snapshot and the
predictions the judged, in-memory challenger made on it (:func:`write_judged_sample`). Before a
version is registered, :func:`check_registered_model` loads the exact bytes about to be registered
through the safe loader (:func:`~mlops_provider.core.serialization.load_model`) in a **fresh
process** of the same interpreter (``python -m mlops_provider.core.registration_check``), scores
the sample there and compares:

* labels exactly;
* probabilities and regression values within :data:`TOLERANCE` (absolute up to 1, relative above:
  ``|got - judged| <= 1e-12 * max(1, |judged|)``). The same bytes on the same rows with the same
  libraries give the same numbers, but a linear model's dot products may be summed in another
  order on another batch size (BLAS blocking), a few ulps (1e-16 each); a different model or a lost
  state moves them by many orders of magnitude more.

Nothing crosses the process boundary but files: the model file, the sample as Parquet, a JSON
request; the predictions come back as Parquet (or the child's error as JSON).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping
from typing import Any

from mlops_provider.core.errors import (
    CorruptArtifactError,
    IntegrityError,
    MlopsError,
    ModelExecutionError,
    RegisteredModelMismatchError,
    UnsafeModelError,
)

MAX_ROWS = 2000
TOLERANCE = 1e-12
TIMEOUT_SECONDS = 600
SAMPLE_FILE = "judged_sample.parquet"
PREDICTIONS_FILE = "judged_predictions.parquet"
PRED = "pred"
_CHILD_ERRORS = {
    cls.__name__: cls for cls in (UnsafeModelError, IntegrityError, CorruptArtifactError, ModelExecutionError)
}


# --------------------------------------------------------------------------- the evaluation's side
def _predictions_frame(preds, positions) -> Any:
    import numpy as np
    import pandas as pd

    out = {PRED: np.asarray(preds.pred)[positions]}
    if preds.proba is not None:
        for j in range(preds.proba.shape[1]):
            out[f"proba_{j}"] = preds.proba[positions, j].astype("float64")
    return pd.DataFrame(out)


def write_judged_sample(
    store, folder: str, labelled, spec, preds, *, seed: int | None, trusted_types: Iterable[str] = ()
) -> dict[str, Any]:
    """Write a seeded sample of the judged rows (their features) and the judged model's predictions
    on them under ``folder``; returns what the registration check needs (URIs pinned by sha256)."""
    import io

    import numpy as np

    n = len(labelled)
    rng = np.random.default_rng(0 if seed is None else seed)
    positions = np.sort(rng.choice(n, size=min(n, MAX_ROWS), replace=False)) if n else np.array([], int)
    sample = labelled.iloc[positions][spec.features].reset_index(drop=True)
    pred = _predictions_frame(preds, positions)
    out: dict[str, Any] = {"rows": int(len(positions)), "seed": seed, "trusted_types": list(trusted_types)}
    for what, frame, fname in (("sample", sample, SAMPLE_FILE), ("predictions", pred, PREDICTIONS_FILE)):
        buf = io.BytesIO()
        frame.to_parquet(buf, index=False)
        key = f"{folder}/{fname}"
        out[f"{what}_sha256"] = store.write_bytes(key, buf.getvalue())
        out[f"{what}_uri"] = store.uri(key)
    out["classes"] = [_plain(c) for c in (preds.classes or [])]
    return out


def _plain(v: Any) -> Any:
    return v.item() if hasattr(v, "item") else v


# --------------------------------------------------------------------------- the registration's side
def _read_pinned(store, uri: str, sha256: str, what: str) -> bytes:
    from mlops_provider.core.serialization import sha256_bytes

    data = store.read_bytes(store.key_of(uri))
    if sha256_bytes(data) != sha256:
        raise IntegrityError(
            f"The judged {what} {uri} has sha256 {sha256_bytes(data)}, but the evaluation recorded {sha256}; "
            "refusing to compare against a file that changed after the evaluation."
        )
    return data


def _child_env() -> dict[str, str]:
    """The parent's environment, with its import path (a DAG folder's modules, say) made explicit."""
    env = dict(os.environ)
    paths = [p for p in sys.path if isinstance(p, str) and p]
    env["PYTHONPATH"] = os.pathsep.join(paths)
    return env


def run_fresh_process(
    model_bytes: bytes, sha256: str, spec: Mapping[str, Any], sample: bytes | None, trusted: list[str]
) -> tuple[Any, dict[str, Any]]:
    """Load ``model_bytes`` safely in a new interpreter and score ``sample`` (Parquet bytes, or None
    for a load only); returns (predictions frame or None, the child's report)."""
    import pandas as pd

    with tempfile.TemporaryDirectory(prefix="mlops-regcheck-") as tmp:
        req = {
            "model_path": os.path.join(tmp, "model.skops"),
            "sha256": sha256,
            "spec": dict(spec),
            "trusted_types": list(trusted),
            "sample_path": os.path.join(tmp, SAMPLE_FILE) if sample is not None else None,
            "out_path": os.path.join(tmp, "predictions.parquet"),
            "report_path": os.path.join(tmp, "report.json"),
        }
        with open(req["model_path"], "wb") as f:
            f.write(model_bytes)
        if sample is not None:
            with open(req["sample_path"], "wb") as f:
                f.write(sample)
        with open(os.path.join(tmp, "request.json"), "w") as f:
            json.dump(req, f)
        cmd = [
            sys.executable,
            "-m",
            "mlops_provider.core.registration_check",
            os.path.join(tmp, "request.json"),
        ]
        try:
            proc = subprocess.run(
                cmd, capture_output=True, text=True, timeout=TIMEOUT_SECONDS, env=_child_env(), check=False
            )
        except subprocess.TimeoutExpired as err:
            raise RegisteredModelMismatchError(
                f"The model file did not load (and score the judged sample) in a fresh process within "
                f"{TIMEOUT_SECONDS} s; nothing was registered."
            ) from err
        report = {}
        if os.path.exists(req["report_path"]):
            with open(req["report_path"]) as f:
                report = json.load(f)
        if report.get("error_type"):
            cls = _CHILD_ERRORS.get(report["error_type"], RegisteredModelMismatchError)
            raise cls(f"In a fresh process, {report['error_type']}: {report['message']}")
        if proc.returncode != 0 or "ok" not in report:
            raise RegisteredModelMismatchError(
                f"The fresh process that loads the model file exited with code {proc.returncode}: "
                f"{(proc.stderr or '').strip()[-800:]}"
            )
        frame = pd.read_parquet(req["out_path"]) if sample is not None else None
    return frame, report


def compare_predictions(judged, got, task: str) -> dict[str, Any]:
    """Rows differing and the largest difference between the judged and the reloaded predictions
    (same columns: ``pred`` and, for a classifier, ``proba_<j>``)."""
    import numpy as np

    if list(judged.columns) != list(got.columns) or len(judged) != len(got):
        return {
            "rows_differing": int(max(len(judged), len(got))),
            "max_diff": float("inf"),
            "label_mismatches": int(max(len(judged), len(got))),
            "detail": f"columns {list(got.columns)} x {len(got)} rows, judged {list(judged.columns)} x "
            f"{len(judged)}",
        }
    bad = np.zeros(len(judged), dtype=bool)
    max_diff = 0.0
    label_mismatches = 0
    value_cols = [c for c in judged.columns if c.startswith("proba_")]
    if task == "regression":
        value_cols = [PRED]
    else:
        a = judged[PRED].to_numpy(dtype=object)
        b = got[PRED].to_numpy(dtype=object)
        lab = np.array([x != y for x, y in zip(a, b, strict=True)], dtype=bool)
        label_mismatches = int(lab.sum())
        bad |= lab
    for c in value_cols:
        a = judged[c].to_numpy(dtype="float64")
        b = got[c].to_numpy(dtype="float64")
        both_nan = np.isnan(a) & np.isnan(b)
        diff = np.where(both_nan, 0.0, np.abs(a - b))
        diff = np.where(np.isnan(diff), np.inf, diff)
        bad |= diff > TOLERANCE * np.maximum(1.0, np.abs(np.nan_to_num(a)))
        if len(diff):
            max_diff = max(max_diff, float(diff.max()))
    return {"rows_differing": int(bad.sum()), "max_diff": max_diff, "label_mismatches": label_mismatches}


def check_registered_model(
    *,
    model: str,
    model_bytes: bytes,
    sha256: str,
    model_uri: str,
    spec: Mapping[str, Any] | None,
    judged: Mapping[str, Any] | None,
    store,
) -> dict[str, Any]:
    """Load ``model_bytes`` in a fresh process and, when the evaluation kept a ``judged`` sample,
    compare its predictions there with the judged ones; raises
    :class:`~mlops_provider.core.errors.RegisteredModelMismatchError` on any difference beyond
    :data:`TOLERANCE`, or the loader's own error (untrusted type, ...). Returns the check's record."""
    start = time.perf_counter()
    judged = dict(judged or {})
    sample = predictions = None
    if judged.get("sample_uri"):
        sample = _read_pinned(store, judged["sample_uri"], judged["sample_sha256"], "sample")
        predictions = _read_pinned(
            store, judged["predictions_uri"], judged["predictions_sha256"], "predictions"
        )
    trusted = list(judged.get("trusted_types") or [])
    got, report = run_fresh_process(model_bytes, sha256, spec or {}, sample, trusted)
    record: dict[str, Any] = {"fresh_process": True, "loaded_as": report.get("loaded_as")}
    if sample is None:
        record.update(
            rows_checked=0, compared=False, why="no judged sample (registered without an evaluation)"
        )
    else:
        import io

        import pandas as pd

        expected = pd.read_parquet(io.BytesIO(predictions))
        task = "regression" if (spec or {}).get("task") != "classification" else "classification"
        cmp = compare_predictions(expected, got, task)
        record.update(rows_checked=int(len(expected)), compared=True, tolerance=TOLERANCE, **cmp)
        if cmp["rows_differing"]:
            err = RegisteredModelMismatchError(
                f"Model {model!r}: the file {model_uri} (sha256 {sha256[:12]}...), loaded in a fresh "
                f"process, predicts differently from the model the evaluation judged on "
                f"{cmp['rows_differing']} of {len(expected)} sampled evaluation rows "
                f"({cmp['label_mismatches']} label(s) differ; largest probability/value difference "
                f"{cmp['max_diff']:.3g}, tolerance {TOLERANCE:g}). Nothing was "
                "registered: re-run training and evaluation."
            )
            err.model, err.rows_checked = model, int(len(expected))
            err.rows_differing, err.max_diff = cmp["rows_differing"], cmp["max_diff"]
            raise err
    record["seconds"] = round(time.perf_counter() - start, 3)
    return record


# --------------------------------------------------------------------------- the fresh process
def _child(request_path: str) -> int:
    with open(request_path) as f:
        req = json.load(f)
    try:
        from mlops_provider.core.modeling import FeatureSpec, predict, prepare_frame
        from mlops_provider.core.serialization import load_model

        with open(req["model_path"], "rb") as f:
            data = f.read()
        model = load_model(
            data, expected_sha256=req["sha256"], source="the model file", trusted_types=req["trusted_types"]
        )
        report: dict[str, Any] = {
            "ok": True,
            "loaded_as": f"{type(model).__module__}.{type(model).__qualname__}",
        }
        if req.get("sample_path"):
            import pandas as pd

            spec = FeatureSpec.from_dict(req["spec"])
            X = prepare_frame(pd.read_parquet(req["sample_path"]), spec, "The judged sample")
            _predictions_frame(predict(model, X, spec), slice(None)).to_parquet(req["out_path"], index=False)
    except MlopsError as err:
        report = {"error_type": type(err).__name__, "message": str(err)}
    with open(req["report_path"], "w") as f:
        json.dump(report, f)
    return 0 if "ok" in report else 3


if __name__ == "__main__":  # pragma: no cover - runs in the fresh process
    sys.exit(_child(sys.argv[1]))
