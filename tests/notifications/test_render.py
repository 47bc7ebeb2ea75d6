"""The renderer on real gate results: what failed, by how much, and where to look."""

from __future__ import annotations

import pytest

from mlops_provider.core.errors import InvalidParameterError
from mlops_provider.notifications.quality_gate import (
    EmailChannel,
    GateAlert,
    normalize_channels,
    render_gate_alert,
    sns_subject,
)
from tests.notifications.conftest import BASE_URL, NEGATIVE_DISTANCE, NULL_DEP_TIME, SUITE, UNSEEN_CARRIER

DAG, RUN = "mlops_retrain_scheduled", "scheduled__2013-07-01T00:00:00+00:00"
RUN_Q = "scheduled__2013-07-01T00%3A00%3A00%2B00%3A00"


def render(*results, **kw) -> GateAlert:
    kw.setdefault("task_links", {})
    return render_gate_alert(list(results), dag_id=DAG, run_id=RUN, base_url=BASE_URL, **kw)


def pct(count: int, total: int) -> str:
    p = count / total * 100
    return f"{p:.2f}%" if p >= 1 else f"{p:.3g}%"


def test_data_gate_failure_names_each_failed_expectation(data_gate_result, defect_frame, session_store):
    n = len(defect_frame)
    alert = render(
        {**data_gate_result, "task_id": "validate_train", "task_state": "failed"},
        task_links={"validate_train": "http://logs.example/validate_train?try_number=1"},
    )
    assert alert.subject == "[MLOps] data gate FAILED: flights_delay_train — 3 of 5 expectations failed"
    p = alert.payload
    assert (p["gate"], p["status"], p["dag_id"], p["run_id"]) == ("data", "failed", DAG, RUN)
    (g,) = p["gates"]
    assert g["dataset"]["sha256"] == data_gate_result["dataset_sha256"] and g["suite"] == SUITE["name"]
    fails = {f["column"]: f for f in g["failures"]}
    assert set(fails) == {"dep_time", "distance", "carrier"}
    assert fails["dep_time"]["unexpected_count"] == NULL_DEP_TIME and fails["dep_time"]["element_count"] == n
    assert fails["dep_time"]["examples"] == [None]
    assert fails["distance"]["unexpected_count"] == NEGATIVE_DISTANCE and fails["distance"]["expected"] == {
        "min_value": 1
    }
    assert all(v < 0 for v in fails["distance"]["examples"])
    assert fails["carrier"]["unexpected_count"] == UNSEEN_CARRIER and fails["carrier"]["examples"] == ["ZZ"]
    assert fails["carrier"]["expected"]["value_set"] == SUITE["expectations"][2]["kwargs"]["value_set"]
    assert fails["carrier"]["unexpected_percent"] == pytest.approx(UNSEEN_CARRIER / n * 100)
    report_key = session_store.key_of(data_gate_result["report_uri"])
    assert g["links"]["report"] == f"{BASE_URL}/mlops/artifacts/{report_key}"
    assert g["links"]["task_log"] == "http://logs.example/validate_train?try_number=1"
    assert p["links"]["dag_run"] == f"{BASE_URL}/dags/{DAG}/runs/{RUN_Q}"
    for body in (alert.text, alert.html):
        assert f"{NULL_DEP_TIME} of {n}" in body and pct(NULL_DEP_TIME, n) in body
        assert f"{NEGATIVE_DISTANCE} of {n}" in body and pct(NEGATIVE_DISTANCE, n) in body
        assert f"{UNSEEN_CARRIER} of {n}" in body and pct(UNSEEN_CARRIER, n) in body
        assert "expect_column_values_to_be_in_set" in body and "dep_time" in body
        assert data_gate_result["dataset_uri"] in body and data_gate_result["dataset_sha256"] in body
        assert f"{BASE_URL}/mlops/artifacts/{report_key}" in body
    assert "min_value=1" in alert.text and '"ZZ"' in alert.text and "examples: null" in alert.text
    assert "&quot;ZZ&quot;" in alert.html and "<table" in alert.html


def test_model_gate_failure_shows_threshold_champion_and_delta(model_gate_result, session_store):
    alert = render({**model_gate_result, "task_id": "evaluate", "task_state": "failed"})
    assert alert.subject == (
        "[MLOps] model gate FAILED: flights_delay — roc_auc 0.6412 < 0.65 (delta -0.0088), "
        "1 more check failed"
    )
    (g,) = alert.payload["gates"]
    assert (g["model"], g["champion_version"], g["challenger_version"], g["decision"]) == (
        "flights_delay",
        3,
        None,
        "reject",
    )
    thr, champ = g["checks"]
    assert (thr["kind"], thr["op"], thr["threshold"], thr["challenger"], thr["delta"], thr["passed"]) == (
        "threshold",
        ">=",
        0.65,
        0.6412,
        -0.0088,
        False,
    )
    assert (champ["kind"], champ["champion"], champ["challenger"], champ["delta"], champ["passed"]) == (
        "champion",
        0.6731,
        0.6412,
        -0.0319,
        False,
    )
    assert g["eval_dataset"]["sha256"] == model_gate_result["eval_dataset"]["sha256"]
    html_key = session_store.key_of(model_gate_result["report_html_uri"])
    assert g["links"]["report"] == f"{BASE_URL}/mlops/artifacts/{html_key}"
    assert g["links"]["champion_model"] == f"{BASE_URL}/mlops/models/flights_delay/versions/3"
    assert g["links"]["task_log"] == f"{BASE_URL}/dags/{DAG}/runs/{RUN_Q}/tasks/evaluate"
    for body in (alert.text, alert.html):
        for s in (
            "0.6412",
            "0.6731",
            "-0.0088",
            "-0.0319",
            "0.65",
            "v3",
            model_gate_result["eval_dataset"]["uri"],
            model_gate_result["eval_dataset"]["sha256"],
            RUN,
            g["links"]["report"],
            g["links"]["task_log"],
        ):
            assert s in body, s
    assert (
        "roc_auc [threshold]: needs >= 0.65; challenger 0.6412, champion 0.6731, delta -0.0088 -> FAILED"
        in alert.text
    )


def test_passed_warned_skipped_and_missing_gates(data_gate_result, model_gate_result):
    from mlops_provider.core.evaluation import decide

    passed = decide(
        model="flights_delay",
        task="classification",
        challenger_metrics={"roc_auc": 0.7012},
        champion_metrics={"roc_auc": 0.69},
        champion_version=1,
        thresholds={"roc_auc": 0.65},
    ).to_dict()
    ok = render({**passed, "task_id": "evaluate", "task_state": "success"})
    assert ok.status == "passed" and not ok.has_problems
    assert ok.subject == (
        "[MLOps] model gate PASSED: flights_delay — roc_auc 0.7012 vs champion v1 0.69 "
        "(delta +0.0112, needs > 0.69)"
    )
    warned = render({**data_gate_result, "task_id": "validate_train", "task_state": "success"})
    assert warned.subject.startswith("[MLOps] data gate WARNED: flights_delay_train") and warned.has_problems
    assert "on_fail='warn'" in warned.text
    skipped = render({**data_gate_result, "task_id": "validate_train", "task_state": "skipped"})
    assert skipped.status == "skipped" and "SKIPPED" in skipped.subject
    both = render(
        {**data_gate_result, "task_id": "validate_eval", "task_state": "failed"},
        {**model_gate_result, "task_id": "evaluate", "task_state": "success"},
        {"task_id": "validate_train", "task_state": "upstream_failed"},
        {**passed, "task_id": "evaluate_other", "task_state": "success"},
    )
    assert both.status == "failed" and both.payload["gate"] == "mixed"
    assert both.subject == (
        f"[MLOps] 2 quality gates FAILED in {DAG}: validate_eval (data), evaluate (model)"
    )
    # a gate that did not run is not a failed gate
    assert [g["status"] for g in both.payload["gates"]] == ["failed", "warned", "not_run", "passed"]
    assert "no gate result in XCom (task state: upstream_failed)" in both.text


def test_a_gate_that_did_not_run_names_the_task_that_failed(data_gate_result):
    cause = {"task_id": "train", "error": "InvalidParameterError", "message": "max_iter must be an int"}
    alert = render({"task_id": "evaluate", "task_state": "upstream_failed", "cause": cause})
    (gate,) = alert.payload["gates"]
    assert gate["status"] == "not_run" and alert.has_problems  # sent, but not as a failed gate
    expected = "not run because train failed: InvalidParameterError: max_iter must be an int"
    assert gate["summary"] == expected and expected in alert.text and expected in alert.html
    assert alert.subject == f"[MLOps] gate task evaluate NOT RUN: evaluate — {expected}"
    assert "FAILED" not in alert.subject
    # with a failed gate next to it, the alert is about the failed gate; the other is "not run"
    missing = {"task_id": "evaluate", "task_state": "upstream_failed", "cause": cause}
    both = render({**data_gate_result, "task_id": "validate_eval", "task_state": "failed"}, missing)
    assert both.status == "failed" and "evaluate (not run)" in both.subject
    # the gate task itself failed without a result: an error, with its own recorded error
    own = {"task_id": "evaluate", "error": "CorruptArtifactError", "message": "not Parquet"}
    errored = render({"task_id": "evaluate", "task_state": "failed", "cause": own})
    assert errored.payload["gates"][0]["status"] == "error"
    assert "failed without a gate result: CorruptArtifactError: not Parquet" in errored.text
    # nothing known: still not counted as failed, and no alert for it alone
    quiet = render({"task_id": "evaluate", "task_state": "upstream_failed"})
    assert quiet.payload["gates"][0]["status"] == "not_run" and not quiet.has_problems


def test_links_outside_the_artifact_root_stay_raw(data_gate_result):
    alert = render({**data_gate_result, "report_uri": "s3://elsewhere/report.json", "task_id": "v"})
    assert alert.payload["gates"][0]["links"]["report"] == "s3://elsewhere/report.json"
    assert "Report: s3://elsewhere/report.json" in alert.text


def test_base_url_comes_from_airflow_config(model_gate_result, monkeypatch):
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", "https://airflow.corp.example/")
    alert = render_gate_alert([{**model_gate_result, "task_id": "evaluate"}], dag_id="d", run_id="r")
    assert alert.payload["links"]["dag_run"] == "https://airflow.corp.example/dags/d/runs/r"
    assert alert.payload["gates"][0]["links"]["champion_model"].startswith(
        "https://airflow.corp.example/mlops/models/"
    )


def test_sns_subject_is_short_plain_text():
    s = sns_subject("[MLOps] model gate FAILED: flights_delay — " + "roc_auc 0.6412 < 0.65 " * 10)
    assert len(s) <= 99 and s.isascii() and s.endswith("...") and " - roc_auc" in s


@pytest.mark.parametrize(
    "channels, match",
    [
        (
            [{"type": "pager", "to": "x"}],
            r"Alert channel #0 .* 'type' 'pager'; "
            r"it must be one of \['email', 'slack', 'sns', 'webhook', 'log'\]",
        ),
        ([{"type": "email", "to": ["a@x.io"], "tto": ["b@x.io"]}], r"#0 \(email\).*unknown key 'tto'"),
        ([{"type": "email", "conn_id": "smtp_default"}], r"#0 \(email\).*missing the required key 'to'"),
        ([{"type": "email", "to": ["not-an-address"]}], r"key 'to' holds 'not-an-address'"),
        (
            [{"type": "slack"}, {"type": "sns", "aws_conn_id": "aws"}],
            r"#1 \(sns\).*missing the required key 'target_arn'",
        ),
        (
            [{"type": "sns", "target_arn": "arn:aws:sns:us-east-1:1:t", "message_format": "xml"}],
            r"'message_format' must be",
        ),
        (
            [{"type": "webhook", "conn_id": "w", "timeout": 0}],
            r"#0 \(webhook\).*'timeout' must be a number > 0",
        ),
        ([{"type": "webhook", "endpoint": "/x"}], r"#0 \(webhook\).*missing the required key 'conn_id'"),
        ([], r"non-empty list"),
        ("[{", r"not valid JSON|JSON text"),
    ],
)
def test_channel_config_errors_name_the_bad_key(channels, match):
    with pytest.raises(InvalidParameterError, match=match):
        normalize_channels(channels)


def test_channel_objects_and_defaults():
    cfgs = normalize_channels(
        [EmailChannel(to="a@x.io; b@x.io"), {"type": "slack"}, {"type": "webhook", "conn_id": "w"}]
    )
    assert cfgs[0] == {
        "type": "email",
        "to": ["a@x.io", "b@x.io"],
        "conn_id": "smtp_default",
        "cc": None,
        "bcc": None,
        "from_email": None,
    }
    assert cfgs[1]["conn_id"] == "slack_default" and cfgs[2]["endpoint"] == "" and cfgs[2]["timeout"] == 30
    assert (
        normalize_channels('{"type": "sns", "target_arn": "arn:aws:sns:eu-west-1:1:t"}')[0]["aws_conn_id"]
        == "aws_default"
    )
