"""A real registry for the UI tests: three versions of a tiny scikit-learn model, trained, gated and
registered the way the retraining DAG does it, with the reports of each run on the artifact store.

* v1 bootstraps the champion (no champion yet, threshold met);
* v2 beats v1 on the same evaluation data and is promoted;
* v3 (a one-split tree) misses the threshold: registered, gate failed, not promoted.

Each run folder ``runs/<dag_id>/<safe run_id>/`` holds ``evaluate/evaluation.html`` + ``roc.png``
+ ``verdict.json`` and ``validate/validation.html`` + ``validation.json``; training snapshots are
real parquet files under ``datasets/``.
"""

from __future__ import annotations

import hashlib
import struct
import zlib
from typing import Any

MODEL = "flight_delay"
DAG_ID = "mlops_retrain_scheduled"
RUN_IDS = (
    "scheduled__2013-07-01T00:00:00+00:00",
    "scheduled__2013-08-01T00:00:00+00:00",
    "manual__2013-09-02T10:15:00+00:00",
)
QUERY = "SELECT * FROM flights WHERE sched_dep_at >= '{start}' AND sched_dep_at < '{end}'"
ESTIMATOR_XSS = "<script>alert('xss')</script>"


def safe_run_id(run_id: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_.+" else "_" for ch in run_id)


def png_bytes(width: int = 160, height: int = 90) -> bytes:
    """A real PNG (an RGB gradient), written without any imaging library."""
    raw = bytearray()
    for y in range(height):
        raw.append(0)  # filter: none
        for x in range(width):
            raw += bytes((30 + x * 200 // width, 120, 60 + y * 180 // height))

    def chunk(tag: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(bytes(raw)))
        + chunk(b"IEND", b"")
    )


def _evaluation_html(model: str, version: int, verdict: dict[str, Any]) -> str:
    status = "passed" if verdict["passed"] else "FAILED"
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>Evaluation</title>"
        "<style>body{font-family:sans-serif;margin:2rem}img{border:1px solid #ccc}</style></head><body>"
        f"<h1 id='title'>Evaluation report: {model} v{version}</h1>"
        f"<p id='verdict'>Model gate {status}: {verdict['reason']}</p>"
        "<figure><img id='roc' src='roc.png' alt='ROC curve'><figcaption>ROC curve</figcaption></figure>"
        "</body></html>"
    )


def _validation_html(run_id: str, rows: int) -> str:
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>Data quality</title></head><body>"
        "<h1 id='title'>Data quality report: PASS</h1>"
        f"<p>{rows} rows of {run_id} validated.</p></body></html>"
    )


def build_registry(root: str) -> dict[str, Any]:
    """Populate ``root`` (a file:// URI) and return what the tests need to know about it."""
    import numpy as np
    import pandas as pd
    import pyarrow as pa
    from sklearn.datasets import make_classification
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, average_precision_score, log_loss, roc_auc_score
    from sklearn.tree import DecisionTreeClassifier

    from mlops_provider.core.datasets import write_snapshot
    from mlops_provider.core.evaluation import decide
    from mlops_provider.core.lineage import package_versions
    from mlops_provider.core.model_card import build_card
    from mlops_provider.core.registry import ModelRegistry
    from mlops_provider.core.serialization import dump_model
    from mlops_provider.core.storage import ArtifactStore

    store = ArtifactStore(root)
    registry = ModelRegistry(store)
    X, y = make_classification(n_samples=800, n_features=6, n_informative=4, random_state=7)
    X_train, y_train, X_eval, y_eval = X[:600], y[:600], X[600:], y[600:]
    columns = [f"f{i}" for i in range(X.shape[1])]

    eval_frame = pd.DataFrame(X_eval, columns=columns).assign(label=y_eval)
    eval_key = "datasets/flight_delay_eval/snapshot/data.parquet"
    store.write_bytes(eval_key, eval_frame.to_parquet(index=False))
    eval_dataset = {
        "uri": store.uri(eval_key),
        "sha256": store.sha256(eval_key),
        "rows": len(eval_frame),
        "source": "sqlite warehouse",
        "query": QUERY.format(start="2013-06-01", end="2013-07-01"),
    }

    estimators = [
        ("sklearn.linear_model.LogisticRegression", LogisticRegression(C=0.001, max_iter=200), [0, 1]),
        ("sklearn.linear_model.LogisticRegression", LogisticRegression(C=1.0, max_iter=200), list(range(6))),
        (ESTIMATOR_XSS, DecisionTreeClassifier(max_depth=1, random_state=0), [5]),
    ]
    info: dict[str, Any] = {"root": root, "model": MODEL, "dag_id": DAG_ID, "versions": {}}
    champion_metrics = None
    champion_version = None
    for i, (estimator_name, est, feats) in enumerate(estimators):
        run_id = RUN_IDS[i]
        month = 7 + i
        train_key = f"datasets/flight_delay_train/{month:02d}/data.parquet"
        train_frame = pd.DataFrame(X_train, columns=columns).assign(label=y_train)
        store.write_bytes(train_key, train_frame.to_parquet(index=False))
        train_dataset = {
            "uri": store.uri(train_key),
            "sha256": store.sha256(train_key),
            "rows": len(train_frame),
            "source": "sqlite warehouse",
            "query": QUERY.format(start=f"2013-{month - 4:02d}-01", end=f"2013-{month - 1:02d}-01"),
        }
        # the version's evaluation snapshot, a real one (manifest + Parquet) recording its window:
        # the same rows each month here, told apart by the month column (so each has its own sha256)
        window = [f"2013-{month - 1:02d}-01T00:00:00+00:00", f"2013-{month:02d}-01T00:00:00+00:00"]
        snap = write_snapshot(
            store,
            "flight_delay_eval",
            [pa.Table.from_pandas(eval_frame.assign(month=month - 1), preserve_index=False)],
            source="sqlite warehouse",
            query=QUERY.format(start=window[0][:10], end=window[1][:10]),
            extra={
                "dag_id": DAG_ID,
                "run_id": run_id,
                "data_interval_start": window[0],
                "data_interval_end": window[1],
                "source_kind": "sql",
            },
        )
        eval_dataset = {
            "uri": snap.uri,
            "sha256": snap.sha256,
            "rows": snap.rows,
            "source": snap.source,
            "query": snap.query,
            "window": window,
        }
        info.setdefault("eval_snapshots", {})[i + 1] = {
            "uri": snap.uri,
            "sha256": snap.sha256,
            "window": window,
        }
        est.fit(X_train[:, feats], y_train)
        score = est.predict_proba(X_eval[:, feats])[:, 1]
        metrics = {
            "roc_auc": round(float(roc_auc_score(y_eval, score)), 6),
            "average_precision": round(float(average_precision_score(y_eval, score)), 6),
            "log_loss": round(float(log_loss(y_eval, np.clip(score, 1e-15, 1 - 1e-15))), 6),
            "accuracy": round(float(accuracy_score(y_eval, score >= 0.5)), 6),
            "rows": len(y_eval),
        }
        verdict = decide(
            model=MODEL,
            task="classification",
            challenger_metrics=metrics,
            champion_metrics=champion_metrics,
            champion_version=champion_version,
            thresholds={"roc_auc": 0.7},
            eval_dataset=eval_dataset,
        ).to_dict()
        folder = f"runs/{DAG_ID}/{safe_run_id(run_id)}"
        verdict["verdict_uri"] = store.uri(f"{folder}/evaluate/verdict.json")
        verdict["report_html_uri"] = store.uri(f"{folder}/evaluate/evaluation.html")
        store.write_json(f"{folder}/evaluate/verdict.json", verdict)
        store.write_bytes(f"{folder}/evaluate/roc.png", png_bytes())
        store.write_bytes(f"{folder}/validate/validation.json", b'{"success": true}')
        store.write_bytes(
            f"{folder}/validate/validation.html", _validation_html(run_id, len(train_frame)).encode()
        )
        data = dump_model(est)
        lineage = {
            "train_dataset": train_dataset,
            "eval_dataset": eval_dataset,
            "dag_id": DAG_ID,
            "run_id": run_id,
            "task_id": "register",
            "try_number": 1,
            "data_interval_start": f"2013-{month - 1:02d}-01 00:00:00+00:00",
            "data_interval_end": f"2013-{month:02d}-01 00:00:00+00:00",
            "seed": 42,
            "packages": package_versions(),
            "code": {
                "file": "retrain.py",
                "file_sha256": hashlib.sha256(b"dag code").hexdigest(),
                "git_commit": "0123456789abcdef0123456789abcdef01234567",
                "git_dirty": False,
            },
            "model_sha256": hashlib.sha256(data).hexdigest(),
            "model_card": {
                "intended_use": f"Flags late flights. {ESTIMATOR_XSS}",
                "limitations": [ESTIMATOR_XSS],
            },
        }
        mv, _ = registry.register(
            MODEL,
            data,
            run_key=f"{DAG_ID}/{run_id}/register",
            estimator=estimator_name,
            metrics=metrics,
            verdict=verdict,
            lineage=lineage,
            spec={"task": "classification", "label": "label", "features": [columns[f] for f in feats]},
            params={
                k: v for k, v in est.get_params().items() if isinstance(v, (int, float, str, type(None)))
            },
            card=lambda v: build_card(v.to_dict(), promotion="decided after registration"),
        )
        version_html = _evaluation_html(MODEL, mv.version, verdict)
        store.write_bytes(f"{folder}/evaluate/evaluation.html", version_html.encode())
        if verdict["passed"]:
            registry.promote(MODEL, mv.version, actor=f"airflow:{DAG_ID}/{run_id}", reason=verdict["reason"])
            champion_metrics, champion_version = metrics, mv.version
        events = [e.to_dict() for e in registry.history(MODEL) if e.version == mv.version]
        registry.write_card(
            MODEL, mv.version, build_card(mv.to_dict(), events=events, promotion="gate failed")
        )
        info["versions"][mv.version] = {
            "run_id": run_id,
            "folder": folder,
            "passed": verdict["passed"],
            "metrics": metrics,
            "report_key": f"{folder}/evaluate/evaluation.html",
            "png_key": f"{folder}/evaluate/roc.png",
            "validation_key": f"{folder}/validate/validation.html",
            "train_key": train_key,
            "model_sha256": mv.model_sha256,
            "train_sha256": train_dataset["sha256"],
            "query": train_dataset["query"],
        }
    assert [v for v, d in info["versions"].items() if d["passed"]] == [1, 2], info["versions"]
    assert registry.get_alias(MODEL) == 2
    return info
