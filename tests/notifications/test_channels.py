"""Each channel against a real server on 127.0.0.1: SMTP (aiosmtpd), HTTP (webhook, Slack webhook),
Amazon SNS -> SQS (moto_server)."""

from __future__ import annotations

import email
import email.policy
import json

import pytest

from mlops_provider.notifications.quality_gate import (
    GateAlertDeliveryError,
    post_json_urllib,
    render_gate_alert,
    send_gate_alert,
)
from tests.notifications.conftest import BASE_URL, NEGATIVE_DISTANCE, NULL_DEP_TIME, UNSEEN_CARRIER

DAG, RUN = "mlops_retrain_scheduled", "scheduled__2013-07-01T00:00:00+00:00"


@pytest.fixture(scope="module")
def data_alert(data_gate_result):
    return render_gate_alert(
        [{**data_gate_result, "task_id": "validate_train", "task_state": "failed"}],
        dag_id=DAG,
        run_id=RUN,
        base_url=BASE_URL,
        task_links={},
    )


@pytest.fixture(scope="module")
def model_alert(model_gate_result):
    return render_gate_alert(
        [{**model_gate_result, "task_id": "evaluate", "task_state": "failed"}],
        dag_id=DAG,
        run_id=RUN,
        base_url=BASE_URL,
        task_links={},
    )


def parse(raw: bytes):
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    return msg, msg.get_body(("plain",)).get_content(), msg.get_body(("html",)).get_content()


def test_email_via_smtp_hook(smtp_server, data_alert, data_gate_result, session_store):
    delivered = send_gate_alert(
        data_alert,
        [
            {
                "type": "email",
                "conn_id": "smtp_notify",
                "to": ["ml-team@example.com"],
                "cc": "oncall@example.com",
                "bcc": ["audit@example.com"],
            }
        ],
    )
    assert delivered == ["#0 email (ml-team@example.com)"]
    ((mail_from, rcpts, raw),) = smtp_server.wait_for(1)
    assert mail_from == "airflow@mlops.test"
    assert rcpts == ["ml-team@example.com", "oncall@example.com", "audit@example.com"]
    msg, text, html = parse(raw)
    assert msg["Subject"] == "[MLOps] data gate FAILED: flights_delay_train — 3 of 5 expectations failed"
    assert (
        msg["To"] == "ml-team@example.com" and msg["Cc"] == "oncall@example.com" and "audit" not in str(msg)
    )
    assert msg.get_content_type() == "multipart/alternative" and msg["X-MLOps-Status"] == "failed"
    fails = {f["column"]: f for f in data_gate_result["failures"]}
    n = fails["dep_time"]["element_count"]
    report = f"{BASE_URL}/mlops/artifacts/{session_store.key_of(data_gate_result['report_uri'])}"
    task_log = f"{BASE_URL}/dags/{DAG}/runs/scheduled__2013-07-01T00%3A00%3A00%2B00%3A00/tasks/validate_train"
    for body in (text, html):
        assert "expect_column_values_to_not_be_null" in body and "dep_time" in body
        assert f"{NULL_DEP_TIME} of {n}" in body and f"{fails['dep_time']['unexpected_percent']:.3g}%" in body
        assert (
            f"{NEGATIVE_DISTANCE} of {n}" in body and str(fails["distance"]["unexpected_examples"][0]) in body
        )
        assert f"{UNSEEN_CARRIER} of {n}" in body and f"{fails['carrier']['unexpected_percent']:.3g}%" in body
        assert "ZZ" in body and report in body and task_log in body and RUN in body
        assert data_gate_result["dataset_sha256"] in body
    assert f'href="{report}"' in html


def test_model_alert_by_email(smtp_server, model_alert):
    send_gate_alert(model_alert, {"type": "email", "conn_id": "smtp_notify", "to": "ml-team@example.com"})
    ((_, _, raw),) = smtp_server.wait_for(1)
    msg, text, html = parse(raw)
    assert msg["Subject"].startswith(
        "[MLOps] model gate FAILED: flights_delay — roc_auc 0.6412 < 0.65 (delta -0.0088)"
    )
    assert "needs >= 0.65; challenger 0.6412, champion 0.6731, delta -0.0088 -> FAILED" in text
    assert f"{BASE_URL}/mlops/models/flights_delay/versions/3" in html


def test_webhook_posts_the_payload_via_http_hook(http_receiver, model_alert):
    send_gate_alert(
        model_alert,
        [
            {
                "type": "webhook",
                "conn_id": "notify_webhook",
                "endpoint": "/hooks/mlops",
                "headers": {"X-Token": "s3cret"},
            }
        ],
    )
    (req,) = http_receiver.requests
    assert req["path"] == "/hooks/mlops" and req["headers"]["Content-Type"] == "application/json"
    assert req["headers"]["X-Token"] == "s3cret"
    body = json.loads(req["body"])
    assert body == model_alert.payload
    assert (body["gate"], body["status"], body["run_id"]) == ("model", "failed", RUN)
    (gate,) = body["gates"]
    assert [
        (c["kind"], c["metric"], c["threshold"], c["challenger"], c["champion"], c["delta"], c["passed"])
        for c in gate["checks"]
    ] == [
        ("threshold", "roc_auc", 0.65, 0.6412, 0.6731, -0.0088, False),
        ("champion", "roc_auc", 0.6731, 0.6412, 0.6731, -0.0319, False),
    ]
    assert gate["links"]["champion_model"] == f"{BASE_URL}/mlops/models/flights_delay/versions/3"


def test_webhook_without_the_http_provider_uses_urllib(http_receiver, data_alert):
    assert post_json_urllib("notify_webhook", "hook", data_alert.payload) == 200
    (body,) = http_receiver.json_bodies("/hook")
    assert body["gates"][0]["failures"][2]["examples"] == ["ZZ"]


def test_slack_webhook_blocks(http_receiver, data_alert):
    send_gate_alert(data_alert, [{"type": "slack", "conn_id": "notify_slack"}])
    (body,) = http_receiver.json_bodies("/services/T0001/B0001/XXXXXXXX")
    assert body["text"] == data_alert.subject
    assert body["blocks"][0] == {
        "type": "header",
        "text": {"type": "plain_text", "text": data_alert.subject, "emoji": False},
    }
    section = body["blocks"][2]["text"]["text"]
    assert (
        "`dep_time`" in section
        and f"{NULL_DEP_TIME} of" in section
        and '"ZZ"' in section
        and "`distance`" in section
    )
    links = body["blocks"][3]["elements"][0]["text"]
    assert f"<{BASE_URL}/dags/{DAG}/runs/" in links and "|Task log>" in links and "|Report>" in links


def _sqs_queue_for_topic(endpoint: str, name: str):
    import boto3

    kw = {
        "endpoint_url": endpoint,
        "region_name": "us-east-1",
        "aws_access_key_id": "testing",
        "aws_secret_access_key": "testing",
    }
    sns, sqs = boto3.client("sns", **kw), boto3.client("sqs", **kw)
    topic = sns.create_topic(Name=name)["TopicArn"]
    queue_url = sqs.create_queue(QueueName=f"{name}-q")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
    return topic, sqs, queue_url


def _receive(sqs, queue_url) -> list[dict]:
    msgs = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=2).get(
        "Messages", []
    )
    return [json.loads(m["Body"]) for m in msgs]


def test_sns_publish_reaches_a_subscribed_queue(aws_env, data_alert, model_alert):
    topic, sqs, queue_url = _sqs_queue_for_topic(aws_env, "mlops-gate-alerts")
    send_gate_alert(data_alert, [{"type": "sns", "target_arn": topic, "aws_conn_id": "aws_moto"}])
    (note,) = _receive(sqs, queue_url)
    assert note["TopicArn"] == topic
    assert note["Subject"] == "[MLOps] data gate FAILED: flights_delay_train - 3 of 5 expectations failed"
    assert note["Message"] == data_alert.text and f"{NULL_DEP_TIME} of" in note["Message"]
    assert (
        note["MessageAttributes"]["status"]["Value"] == "failed"
        and note["MessageAttributes"]["gate"]["Value"] == "data"
    )
    send_gate_alert(
        model_alert,
        [{"type": "sns", "target_arn": topic, "aws_conn_id": "aws_moto", "message_format": "json"}],
    )
    (note,) = _receive(sqs, queue_url)
    assert len(note["Subject"]) <= 99 and note["Subject"].startswith(
        "[MLOps] model gate FAILED: flights_delay - roc_auc"
    )
    assert json.loads(note["Message"]) == model_alert.payload


def test_a_failing_channel_does_not_stop_the_others(smtp_server, http_receiver, aws_env, data_alert):
    http_receiver.fail_paths.add("/broken")
    channels = [
        {"type": "webhook", "conn_id": "notify_webhook", "endpoint": "/broken"},
        {"type": "email", "conn_id": "smtp_notify", "to": ["ml-team@example.com"]},
        {"type": "sns", "target_arn": "arn:aws:sns:us-east-1:123456789012:nope", "aws_conn_id": "aws_moto"},
        {"type": "slack", "conn_id": "notify_slack"},
    ]
    with pytest.raises(GateAlertDeliveryError) as err:
        send_gate_alert(data_alert, channels)
    assert set(err.value.failures) == {
        "#0 webhook (notify_webhook)",
        "#2 sns (arn:aws:sns:us-east-1:123456789012:nope)",
    }
    assert "500" in err.value.failures["#0 webhook (notify_webhook)"]
    assert "NotFound" in err.value.failures["#2 sns (arn:aws:sns:us-east-1:123456789012:nope)"]
    assert err.value.delivered == ["#1 email (ml-team@example.com)", "#3 slack (notify_slack)"]
    assert "2 of 4 alert channel(s) failed" in str(err.value)
    assert len(smtp_server.wait_for(1)) == 1
    assert len(http_receiver.json_bodies("/services/T0001/B0001/XXXXXXXX")) == 1
