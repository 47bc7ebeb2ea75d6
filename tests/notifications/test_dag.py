"""Through Airflow (dag.test): a data gate fails on a snapshot with defects; the GateAlertOperator
after it (trigger_rule all_done) reads the failed task's XCom and emails the alert; the gate's
own on_failure_callback and the DAG's on_failure_callback (QualityGateNotifier) post to a webhook."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import textwrap

import pytest

from tests.notifications.conftest import BASE_URL, NEGATIVE_DISTANCE, NULL_DEP_TIME, SUITE, UNSEEN_CARRIER

pytestmark = pytest.mark.e2e
DAG_ID = "mlops_gate_alert_test"

DAG_FILE = """
import datetime as dt

from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG

from mlops_provider.notifications.quality_gate import GateAlertOperator, QualityGateNotifier
from mlops_provider.operators.validate import ValidateDataOperator

SNAPSHOT = {snapshot!r}
SUITE = {suite!r}

with DAG(
    dag_id={dag_id!r},
    schedule=None,
    start_date=dt.datetime(2013, 7, 1, tzinfo=dt.timezone.utc),
    catchup=False,
    on_failure_callback=QualityGateNotifier(
        channels=[{{"type": "webhook", "conn_id": "notify_webhook", "endpoint": "/dag-callback"}}],
        gate_task_ids=["validate_train"],
    ),
):
    validate = ValidateDataOperator(
        task_id="validate_train", dataset=SNAPSHOT, expectations=SUITE,
        on_failure_callback=QualityGateNotifier(
            channels=[{{"type": "webhook", "conn_id": "notify_webhook", "endpoint": "/task-callback"}}]
        ),
    )
    alert = GateAlertOperator(
        task_id="gate_alert", gate_task_ids=["validate_train"],
        channels=[{{"type": "email", "conn_id": "smtp_notify", "to": ["ml-team@example.com"]}}],
    )
    train = EmptyOperator(task_id="train")
    validate >> [alert, train]
    # a gate that passes: with notify_on="problems" its alert task stays quiet
    validate_ok = ValidateDataOperator(
        task_id="validate_ok", dataset=SNAPSHOT,
        expectations=[{{"type": "expect_column_values_to_not_be_null", "kwargs": {{"column": "origin"}}}}],
    )
    validate_ok >> GateAlertOperator(
        task_id="quiet_alert", gate_task_ids=["validate_ok"],
        channels=[{{"type": "webhook", "conn_id": "notify_webhook", "endpoint": "/quiet"}}],
    )
"""


@pytest.fixture
def gate_dag(airflow_db, defect_snapshot, tmp_path, monkeypatch):
    """The DAG above in its own folder, registered as a second DAG bundle so dag.test() can serialize it."""
    from tests.helpers import dag_bag_of

    monkeypatch.setenv("AIRFLOW__API__BASE_URL", BASE_URL)
    dag_file = textwrap.dedent(DAG_FILE.format(snapshot=defect_snapshot.uri, suite=SUITE, dag_id=DAG_ID))
    bag = dag_bag_of(
        tmp_path / "dags", monkeypatch, "mlops-notification-tests", {"gate_alert_dag.py": dag_file}
    )
    return bag.dags[DAG_ID]


def test_gate_alert_operator_emails_after_a_failed_gate(
    gate_dag, smtp_server, http_receiver, defect_snapshot
):
    dr = gate_dag.test(logical_date=dt.datetime(2013, 7, 1, tzinfo=dt.timezone.utc))
    states = {ti.task_id: ti.state for ti in dr.get_task_instances()}
    assert states == {
        "validate_train": "failed",
        "gate_alert": "success",
        "train": "upstream_failed",
        "validate_ok": "success",
        "quiet_alert": "success",
    }, states
    assert dr.state == "failed"

    ((_, rcpts, raw),) = smtp_server.wait_for(1)
    assert rcpts == ["ml-team@example.com"]
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    text = msg.get_body(("plain",)).get_content()
    html = msg.get_body(("html",)).get_content()
    assert msg["Subject"] == "[MLOps] data gate FAILED: flights_delay_train — 3 of 5 expectations failed"
    n = defect_snapshot.rows
    run_q = dr.run_id.replace(":", "%3A").replace("+", "%2B")
    for body in (text, html):
        assert f"{NULL_DEP_TIME} of {n}" in body and f"{NEGATIVE_DISTANCE} of {n}" in body
        assert f"{UNSEEN_CARRIER} of {n}" in body and "ZZ" in body and defect_snapshot.sha256 in body
        assert f"{BASE_URL}/dags/{DAG_ID}/runs/{run_q}/tasks/validate_train" in body
        assert (
            f"{BASE_URL}/mlops/artifacts/runs/{DAG_ID}/" in body and "/validate_train/validation.json" in body
        )

    # the gate's own on_failure_callback: its log link is RuntimeTaskInstance.log_url (with try_number)
    (task_cb,) = http_receiver.json_bodies("/task-callback")
    (gate,) = task_cb["gates"]
    assert (task_cb["status"], gate["task_id"], gate["task_state"]) == ("failed", "validate_train", "failed")
    assert (
        gate["links"]["task_log"]
        == f"{BASE_URL}/dags/{DAG_ID}/runs/{run_q}/tasks/validate_train?try_number=1"
    )
    assert {f["column"]: f["unexpected_count"] for f in gate["failures"]} == {
        "dep_time": NULL_DEP_TIME,
        "distance": NEGATIVE_DISTANCE,
        "carrier": UNSEEN_CARRIER,
    }
    # the DAG-level on_failure_callback reads the same result
    (dag_cb,) = http_receiver.json_bodies("/dag-callback")
    assert dag_cb["gates"][0]["failures"] == gate["failures"] and dag_cb["run_id"] == dr.run_id
    assert http_receiver.json_bodies("/quiet") == []  # the passing gate sent nothing


BLOCKED_DAG_ID = "mlops_gate_not_run_test"
BLOCKED_DAG_FILE = """
import datetime as dt

from airflow.sdk import DAG

from mlops_provider.notifications.quality_gate import GateAlertOperator
from mlops_provider.operators.config import CheckRetrainConfigOperator
from mlops_provider.operators.validate import ValidateDataOperator

with DAG(
    dag_id={dag_id!r},
    schedule=None,
    start_date=dt.datetime(2013, 7, 1, tzinfo=dt.timezone.utc),
    catchup=False,
):
    check = CheckRetrainConfigOperator(
        task_id="check_config", model_name="flights_delay",
        estimator="sklearn.ensemble.HistGradientBoostingClassifier", model_params={{"max_iter": "ten"}},
    )
    gate = ValidateDataOperator(task_id="validate_train", dataset={snapshot!r}, expectations={suite!r})
    check >> gate >> GateAlertOperator(
        task_id="gate_alert", gate_task_ids=["validate_train"],
        channels=[{{"type": "webhook", "conn_id": "notify_webhook", "endpoint": "/not-run"}}],
    )
"""


@pytest.fixture
def blocked_dag(airflow_db, defect_snapshot, tmp_path, monkeypatch):
    from tests.helpers import dag_bag_of

    monkeypatch.setenv("AIRFLOW__API__BASE_URL", BASE_URL)
    dag_file = textwrap.dedent(
        BLOCKED_DAG_FILE.format(snapshot=defect_snapshot.uri, suite=SUITE, dag_id=BLOCKED_DAG_ID)
    )
    bag = dag_bag_of(tmp_path / "dags", monkeypatch, "mlops-not-run-tests", {"not_run_dag.py": dag_file})
    return bag.dags[BLOCKED_DAG_ID]


def test_a_gate_that_did_not_run_is_reported_with_the_failure_that_stopped_it(blocked_dag, http_receiver):
    dr = blocked_dag.test(logical_date=dt.datetime(2013, 7, 1, tzinfo=dt.timezone.utc))
    states = {ti.task_id: ti.state for ti in dr.get_task_instances()}
    assert states == {"check_config": "failed", "validate_train": "upstream_failed", "gate_alert": "success"}
    (alert,) = http_receiver.json_bodies("/not-run")
    (gate,) = alert["gates"]
    assert gate["status"] == "not_run" and alert["status"] == "not_run"  # not a failed gate
    assert gate["cause"]["task_id"] == "check_config" and gate["cause"]["error"] == "InvalidParameterError"
    assert gate["summary"].startswith("not run because check_config failed: InvalidParameterError: ")
    assert "max_iter" in gate["summary"] and "ten" in gate["summary"]
    subject = "[MLOps] gate task validate_train NOT RUN: validate_train — not run because check_config failed"
    assert alert["subject"].startswith(subject)
