"""Asset event payloads: round trips, and every malformed payload refused with a message naming the key."""

from __future__ import annotations

import json

import pytest

from mlops_provider.core.errors import InvalidInputError
from mlops_provider.core.events import (
    ChampionChanged,
    NewDataEvent,
    RetrainRequest,
    asset_uri,
    parse_triggering_events,
)

ROOT = "file:///data/mlops"
REPORT = f"{ROOT}/drift/flights_delay/ab12.json"


def request(**kw) -> RetrainRequest:
    base = dict(
        model="flights_delay",
        reason="drift",
        champion_version=3,
        window={"start": "2013-12-01T00:00:00+00:00", "end": "2014-01-01T00:00:00+00:00"},
        drifted_features=["temp", "dewp"],
        scores={"temp": 2.5, "dewp": 1.9},
        report_uri=REPORT,
        requested_at="2014-01-01T01:00:00+00:00",
    )
    base.update(kw)
    return RetrainRequest(**base)


def test_asset_uris():
    assert asset_uri("flights_delay", "retrain-requested") == "x-mlops://flights_delay/retrain-requested"
    assert asset_uri("flights_delay", "champion") == "x-mlops://flights_delay/champion"
    assert request().asset_uri == "x-mlops://flights_delay/retrain-requested"
    with pytest.raises(InvalidInputError, match="'model' parameter of asset_uri.*'../x'"):
        asset_uri("../x", "champion")
    with pytest.raises(InvalidInputError, match="'kind' parameter.*'retrain'"):
        asset_uri("m", "retrain")


def test_round_trips_are_json_able():
    req = request()
    extra = json.loads(json.dumps(req.to_extra()))
    assert extra["type"] == "retrain_requested" and extra["schema_version"] == 1
    assert RetrainRequest.parse(extra, artifact_root=ROOT) == req
    minimal = request(
        reason="manual", champion_version=None, window=None, drifted_features=[], scores={}, report_uri=None
    )
    assert RetrainRequest.parse(minimal.to_extra()) == minimal  # no URI: no root needed
    ch = ChampionChanged(
        "flights_delay", 4, 3, "airflow:dag/run", "challenger beat champion", "2014-01-02T00:00:00+00:00"
    )
    extra = json.loads(json.dumps(ch.to_extra()))
    assert extra["type"] == "champion_changed" and ChampionChanged.parse(extra) == ch
    assert ch.asset_uri == "x-mlops://flights_delay/champion"
    new = NewDataEvent(f"{ROOT}/landing/2014-01.parquet", 1024, "2014-01-01T00:00:00+00:00")
    assert NewDataEvent.parse(new.to_extra(), artifact_root=ROOT) == new


def bad(key, value=..., drop=False):
    extra = request().to_extra()
    if drop:
        extra.pop(key)
    else:
        extra[key] = value
    return extra


@pytest.mark.parametrize(
    "extra, match",
    [
        (bad("model", drop=True), r"lacks the 'model' key \(expected a non-empty string\)"),
        (bad("requested_at", drop=True), "lacks the 'requested_at' key"),
        (
            bad("champion_version", True),
            r"'champion_version' key .* must be an int >= 1 or null\. Got True \(bool\)",
        ),
        (bad("champion_version", "3"), r"'champion_version' key .* Got '3' \(str\)"),
        (
            bad("reason", "boredom"),
            r"'reason' key .* one of \['drift', 'performance', 'estimated_performance', 'manual'\]\. "
            r"Got 'boredom'",
        ),
        (
            bad("drifted_features", "temp"),
            r"'drifted_features' key .* list of non-empty strings\. Got 'temp' \(str\)",
        ),
        (bad("scores", {"temp": True}), r"'scores.temp' key .* finite number \(not a bool\)\. Got True"),
        (bad("scores", {"temp": "high"}), r"'scores.temp' key"),
        (bad("window", {"start": "2013-12-01"}), "'window' key .* exactly the keys 'start' and 'end'"),
        (
            bad("window", {"start": "yesterday", "end": "2014-01-01"}),
            r"'window.start' key .* ISO 8601.*'yesterday'",
        ),
        (bad("requested_at", 1388534400), r"'requested_at' key .* ISO 8601.*\(int\)"),
        (bad("report_uri", "file:///etc/passwd"), r"'report_uri' key .* inside the artifact root.*outside"),
        (
            bad("report_uri", "s3://other-bucket/drift/x.json"),
            "'report_uri' key .* outside the artifact root",
        ),
        (bad("report_uri", "drift/../../etc/passwd"), "'report_uri' key .* not a relative path"),
        (bad("report_uri", f"{ROOT}/drift/../../../etc/passwd"), r"'report_uri' key .* without '\.\.'"),
        (bad("model", "../../x"), "'model' key .* not a valid model name.*'../../x'"),
        (bad("model", ""), r"'model' key .* non-empty string\. Got ''"),
        (bad("type", "champion_changed"), r"'type' key .* 'retrain_requested'"),
        (bad("schema_version", 2), r"'schema_version' key .* 1 .*Got 2"),
        (bad("surprise", 1), r"unknown key\(s\) \['surprise'\]"),
        ("not a dict", r"must be a JSON object \(dict\)\. Got 'not a dict' \(str\)"),
    ],
)
def test_bad_retrain_requests_are_refused_naming_the_key(extra, match):
    with pytest.raises(InvalidInputError, match=match):
        RetrainRequest.parse(extra, artifact_root=ROOT)


def test_report_uri_needs_a_root_to_be_checked():
    with pytest.raises(InvalidInputError, match="'report_uri' key .* no artifact root"):
        RetrainRequest.parse(request().to_extra(), artifact_root=None)


@pytest.mark.parametrize(
    "change, match",
    [
        ({"version": True}, r"'version' key .* an int >= 1\. Got True \(bool\)"),
        ({"version": 0}, r"'version' key .* an int >= 1\. Got 0"),
        ({"previous_version": 2.0}, r"'previous_version' key .* Got 2\.0 \(float\)"),
        ({"actor": None}, r"'actor' key .* non-empty string\. Got None"),
        ({"model": "a b"}, "'model' key .* not a valid model name"),
    ],
)
def test_bad_champion_changes_are_refused(change, match):
    extra = ChampionChanged("m", 2, 1, "me", "why", "2014-01-01T00:00:00").to_extra()
    extra.update(change)
    with pytest.raises(InvalidInputError, match=match):
        ChampionChanged.parse(extra)
    extra = ChampionChanged("m", 2, 1, "me", "why", "2014-01-01T00:00:00").to_extra()
    extra.pop("changed_at")
    with pytest.raises(InvalidInputError, match="lacks the 'changed_at' key"):
        ChampionChanged.parse(extra)


def test_new_data_events_from_a_watcher():
    payload = {
        "from_trigger": True,
        "payload": {"uri": "s3://landing/flights/2014-01.csv", "size": 10, "mtime": 0},
    }
    ev = NewDataEvent.parse(payload, allowed_prefix="s3://landing/flights")
    assert ev.mtime == "1970-01-01T00:00:00+00:00" and ev.size == 10
    for uri in ("s3://landing/flightsX/a.csv", "s3://landing/flights/../secrets/a.csv", "s3://other/a.csv"):
        with pytest.raises(
            InvalidInputError, match="'uri' key .* under the allowed prefix 's3://landing/flights/'"
        ):
            NewDataEvent.parse(
                {"from_trigger": True, "payload": {**payload["payload"], "uri": uri}},
                allowed_prefix="s3://landing/flights",
            )
    with pytest.raises(InvalidInputError, match="'uri' key .* outside the artifact root"):
        NewDataEvent.parse(payload, artifact_root=ROOT)
    with pytest.raises(InvalidInputError, match=r"'size' key .* int >= 0\. Got True \(bool\)"):
        NewDataEvent.parse(
            {"from_trigger": True, "payload": {**payload["payload"], "size": True}},
            allowed_prefix="s3://landing",
        )
    with pytest.raises(InvalidInputError, match="lacks the 'payload' key"):
        NewDataEvent.parse({"from_trigger": True}, artifact_root=ROOT)
    with pytest.raises(InvalidInputError, match="'from_trigger' key .* True"):
        NewDataEvent.parse({"from_trigger": False, "payload": {}}, artifact_root=ROOT)


def test_parse_triggering_events_all_or_nothing():
    champion = ChampionChanged("flights_delay", 4, 3, "me", "why", "2014-01-02T00:00:00+00:00")

    class Ev:  # like context["triggering_asset_events"] values: objects with .extra
        def __init__(self, extra):
            self.extra = extra

    good = [
        {"extra": request().to_extra()},
        Ev(request(reason="performance", drifted_features=[]).to_extra()),
        {"extra": champion.to_extra()},
    ]
    parsed = parse_triggering_events(good, ROOT)
    assert [type(p).__name__ for p in parsed] == ["RetrainRequest", "RetrainRequest", "ChampionChanged"]
    assert parsed[1].reason == "performance" and parsed[2] == champion
    by_asset = {"x-mlops://flights_delay/retrain-requested": [good[0], good[1]]}
    assert len(parse_triggering_events(by_asset, ROOT)) == 2
    with pytest.raises(
        InvalidInputError, match=r"event #1 rejected \(no event of this batch is used\).*'reason' key"
    ):
        parse_triggering_events([good[0], {"extra": bad("reason", "boredom")}, good[1]], ROOT)
    with pytest.raises(InvalidInputError, match="event #0 lacks the 'extra' key"):
        parse_triggering_events([{"payload": {}}], ROOT)
    assert parse_triggering_events([], ROOT) == []
