"""Secrets stay out of logs, exceptions and XCom, and other connections' requests; hostile values in
labels, payloads and subjects are handled as data; killed writers leave nothing behind for long.

Real parts: two local HTTP servers standing in for two MLflow tracking servers (recording the
Authorization header of each request), the notification tests' HTTP receiver and aiosmtpd server,
Airflow's dag.test() for a gate alert whose channels fail, a writer process killed with SIGKILL."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

SLACK_TOKEN_PATH = "/services/T0001/B0001/XXXXXXXX"  # the notify_slack connection's webhook token
WEBHOOK_TOKEN = "tok-7f3a9c2e1d5b4a60"


# --------------------------------------------------------------------------- MLflow credentials
@pytest.fixture
def fake_mlflow_servers(monkeypatch):
    """Two HTTP servers answering MLflow's registered-models search; each records the
    Authorization header it got. Connection mlflow_a has a token, mlflow_b has no credentials."""
    servers = []
    for _ in range(2):
        seen: list[str | None] = []

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self, seen=seen):
                seen.append(self.headers.get("Authorization"))
                body = json.dumps({"registered_models": []}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        servers.append((httpd, seen))
    (a, seen_a), (b, seen_b) = servers
    monkeypatch.setenv(
        "AIRFLOW_CONN_MLFLOW_A",
        json.dumps(
            {
                "conn_type": "mlflow",
                "host": f"http://127.0.0.1:{a.server_address[1]}",
                "extra": {"token": "token-of-a"},
            }
        ),
    )
    monkeypatch.setenv(
        "AIRFLOW_CONN_MLFLOW_B",
        json.dumps({"conn_type": "mlflow", "host": f"http://127.0.0.1:{b.server_address[1]}"}),
    )
    monkeypatch.setenv(
        "AIRFLOW_CONN_MLFLOW_C",
        json.dumps(
            {
                "conn_type": "mlflow",
                "host": f"http://127.0.0.1:{b.server_address[1]}",
                "login": "carol",
                "password": "pw-c",
            }
        ),
    )
    for env in ("MLFLOW_TRACKING_TOKEN", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
        monkeypatch.delenv(env, raising=False)
    yield seen_a, seen_b
    for httpd, _ in servers:
        httpd.shutdown()
        httpd.server_close()


def test_mlflow_credentials_do_not_leak_to_another_connection(fake_mlflow_servers, store):
    import base64

    from mlops_provider.hooks.registry import get_registry

    seen_a, seen_b = fake_mlflow_servers
    reg_a = get_registry("mlflow", "mlflow_a", store)
    reg_b = get_registry("mlflow", "mlflow_b", store)
    assert reg_a.list_models() == [] and reg_b.list_models() == []
    assert reg_a.list_models() == []  # interleaved: a, b, a, then c on b's server
    get_registry("mlflow", "mlflow_c", store).list_models()
    assert seen_a == ["Bearer token-of-a", "Bearer token-of-a"]
    assert seen_b[0] is None  # the server of the connection without credentials got none
    assert seen_b[1] == "Basic " + base64.b64encode(b"carol:pw-c").decode()
    for env in ("MLFLOW_TRACKING_TOKEN", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
        assert env not in os.environ, env  # restored after each call


# --------------------------------------------------------------------------- webhook secrets
GATE_DAG = """
import datetime as dt
from airflow.sdk import DAG
from mlops_provider.notifications.quality_gate import GateAlertOperator
from mlops_provider.operators.validate import ValidateDataOperator

with DAG(dag_id="mlops_secret_alert_test", schedule=None,
         start_date=dt.datetime(2013, 7, 1, tzinfo=dt.timezone.utc)):
    gate = ValidateDataOperator(task_id="validate", dataset={snapshot!r}, expectations=[
        {{"type": "expect_column_values_to_be_between",
          "kwargs": {{"column": "alcohol", "max_value": 13.0}}}}])
    gate >> GateAlertOperator(task_id="gate_alert", gate_task_ids=["validate"], retries=0, channels=[
        {{"type": "webhook", "conn_id": "notify_webhook", "endpoint": "/hooks/T0/B0/{token}"}},
        {{"type": "slack", "conn_id": "notify_slack"}},
        {{"type": "log"}},
    ])
"""


def test_webhook_and_slack_secrets_stay_out_of_logs_errors_and_xcom(
    http_receiver,
    airflow_db,
    wine,
    tmp_path,
    monkeypatch,
    capfd,
):
    import pyarrow as pa
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    from mlops_provider.core.datasets import write_snapshot
    from mlops_provider.core.storage import ArtifactStore
    from tests.helpers import dag_bag_of

    http_receiver.fail_paths.update({f"/hooks/T0/B0/{WEBHOOK_TOKEN}", SLACK_TOKEN_PATH})
    snap = write_snapshot(
        ArtifactStore(os.environ["MLOPS_ARTIFACT_ROOT"]),
        "wine_secret_test",
        [pa.Table.from_pandas(wine)],
        source="sklearn wine",
    )
    dag_file = textwrap.dedent(GATE_DAG.format(snapshot=snap.uri, token=WEBHOOK_TOKEN))
    bag = dag_bag_of(tmp_path / "dags", monkeypatch, "mlops-secret-tests", {"secret_alert.py": dag_file})
    dr = bag.dags["mlops_secret_alert_test"].test(
        logical_date=dt.datetime(2013, 7, 1, tzinfo=dt.timezone.utc)
    )
    states = {ti.task_id: ti.state for ti in dr.get_task_instances()}
    assert states == {"validate": "failed", "gate_alert": "failed"}, states
    assert {r["path"] for r in http_receiver.requests} == {f"/hooks/T0/B0/{WEBHOOK_TOKEN}", SLACK_TOKEN_PATH}

    out = capfd.readouterr()
    captured = out.out + out.err
    assert "2 of 3 alert channel(s) failed" in captured  # the failure itself is reported...
    for secret in (WEBHOOK_TOKEN, "XXXXXXXX", "T0001/B0001"):
        assert secret not in captured, secret  # ...without the tokens
    with create_session() as session:
        values = [
            repr(x.value)
            for x in session.query(XComModel).filter(XComModel.dag_id == "mlops_secret_alert_test")
        ]
    assert values and not any(WEBHOOK_TOKEN in v or "XXXXXXXX" in v for v in values)


def test_a_failed_channel_error_names_the_connection_not_its_url(http_receiver, monkeypatch):
    from mlops_provider.notifications.quality_gate import (
        GateAlertDeliveryError,
        post_json_urllib,
        render_gate_alert,
        send_gate_alert,
    )

    http_receiver.fail_paths.add(f"/hooks/{WEBHOOK_TOKEN}")
    with pytest.raises(Exception) as err:
        post_json_urllib("notify_webhook", f"/hooks/{WEBHOOK_TOKEN}", {"x": 1})
    assert "'notify_webhook' returned 500" in str(err.value) and WEBHOOK_TOKEN not in str(err.value)
    with pytest.raises(GateAlertDeliveryError) as err:
        alert = render_gate_alert(
            [{"task_id": "evaluate", "task_state": "failed"}], dag_id="d", run_id="r", base_url="http://x"
        )
        send_gate_alert(
            alert, [{"type": "webhook", "conn_id": "notify_webhook", "endpoint": f"/hooks/{WEBHOOK_TOKEN}"}]
        )
    assert list(err.value.failures) == ["#0 webhook (notify_webhook)"] and WEBHOOK_TOKEN not in str(err.value)


def test_a_newline_in_a_reason_gives_a_one_line_email_subject(smtp_server):
    import email
    import email.policy

    from mlops_provider.notifications.quality_gate import render_gate_alert, send_gate_alert

    result = {
        "gate": "model",
        "model": "wine_quality",
        "passed": False,
        "task_id": "evaluate",
        "task_state": "failed",
        "reason": "challenger worse\nBcc: everyone@example.com\r\nX: y",
        "checks": [],
        "compare_metric": "roc_auc",
    }
    alert = render_gate_alert([result], dag_id="wine_retrain", run_id="manual__1", base_url="http://x")
    assert "\n" not in alert.subject and "\r" not in alert.subject
    send_gate_alert(alert, [{"type": "email", "conn_id": "smtp_notify", "to": ["ml-team@example.com"]}])
    ((_, rcpts, raw),) = smtp_server.wait_for(1)
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert rcpts == ["ml-team@example.com"] and msg["Bcc"] is None
    assert "challenger worse Bcc: everyone@example.com X: y" in msg["Subject"]


# --------------------------------------------------------------------------- robustness
def test_a_mathtext_class_label_is_plain_text_in_the_report(store):
    import numpy as np

    from mlops_provider.core.reports import write_evaluation_report

    label = r"$\undefinedcommand$"
    y = np.array([label, "plain"] * 60, dtype=object)
    out = write_evaluation_report(
        store,
        "runs/wine/manual__1/evaluate",
        verdict={"model": "wine", "passed": True, "checks": []},
        y_true=y,
        challenger_score=np.linspace(0, 1, 120),
        positive_label=label,
        slice_values=y,
        slice_column="label",
    )
    html = store.read_bytes(store.key_of(out["html_uri"])).decode()
    assert "\\undefinedcommand" in html and set(out["images"]) >= {"roc", "pr", "confusion", "calibration"}
    assert store.read_bytes(store.key_of(out["images"]["confusion"])).startswith(b"\x89PNG")


WRITER = """
import sys, time
from mlops_provider.core.storage import ArtifactStore
store = ArtifactStore(sys.argv[1])
with store.open_atomic("predictions/wine/dag/run/predictions.parquet") as f:
    f.write(b"partial rows")
    f.flush()
    print("writing", flush=True)
    time.sleep(600)
"""


def test_temporaries_of_a_killed_writer_are_swept_by_age(store, capsys):
    from mlops_provider.cli import main

    folder = store.path("predictions/wine/dag/run")
    proc = subprocess.Popen([sys.executable, "-c", WRITER, store.root], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "writing"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(30)
    (tmp,) = [n for n in os.listdir(folder) if n.startswith(".tmp-")]
    assert not store.exists("predictions/wine/dag/run/predictions.parquet")  # the reader sees nothing
    # a fresh temporary might be a live writer's: kept
    assert main(["--root", store.root, "maintenance", "sweep", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["removed"] == [] and tmp in os.listdir(folder)
    old = time.time() - 7200
    os.utime(os.path.join(folder, tmp), (old, old))
    assert main(["--root", store.root, "maintenance", "sweep", "--dry-run"]) == 0
    assert "would remove" in capsys.readouterr().out and tmp in os.listdir(folder)
    # the next write to that folder sweeps it (in a new process: the sweep is rate-limited per process)
    subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from mlops_provider.core.storage import ArtifactStore; "
            "ArtifactStore(sys.argv[1]).write_bytes('predictions/wine/dag/run/manifest.json', b'{}')",
            store.root,
        ],
        check=True,
    )
    assert os.listdir(folder) == ["manifest.json"]
