"""The templates' first tasks as operators (mlops_provider.operators.windows), run through Airflow
(dag.test, SQLite metadata DB): ``window`` returns the data interval of a scheduled run, re-scores
the last scored window when a champion change triggers the run, and skips the run (and what
follows) when nothing was scored yet; ``plan`` reads the run's triggering asset events and builds
the train / eval SQL from the template's SQL string, and a malformed payload fails it at once,
saying what was wrong."""

from __future__ import annotations

import datetime as dt
import json

import pytest

MODEL = "flights_delay"
LANDING = "file:///landing/flights/"
REQUESTED = f"x-mlops://{MODEL}/retrain-requested"
SELECT = "SELECT id, late FROM flights"
WINDOW_SQL = SELECT + " WHERE sched_dep_at >= '{start}' AND sched_dep_at < '{end}' ORDER BY id"

DAG_FILE = f"""
import datetime as dt

from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG, Asset, CronDataIntervalTimetable

from mlops_provider.operators.windows import PlanEventRetrainOperator, ScoringWindowOperator

START = dt.datetime(2013, 1, 1, tzinfo=dt.timezone.utc)
with DAG(dag_id="test_windows_score", schedule=CronDataIntervalTimetable("0 0 1 * *", timezone="UTC"),
         start_date=START, catchup=False, render_template_as_native_obj=True):
    window = ScoringWindowOperator(task_id="window", model_name={MODEL!r}, retries=0)
    window >> EmptyOperator(task_id="score")

with DAG(dag_id="test_windows_plan", start_date=START, catchup=False,
         schedule=Asset(name="test_windows_landing", uri={LANDING!r}) | Asset({REQUESTED!r})):
    PlanEventRetrainOperator(task_id="plan", landing_uri={LANDING!r}, train_months=3,
                             window_sql={WINDOW_SQL!r}, retries=2) >> EmptyOperator(task_id="extract")
"""


def utc(day: str) -> dt.datetime:
    return dt.datetime.fromisoformat(day).replace(tzinfo=dt.timezone.utc)


@pytest.fixture
def bag(airflow_db, artifact_root, tmp_path, monkeypatch):
    from tests.helpers import dag_bag_of

    return dag_bag_of(tmp_path / "dags", monkeypatch, "mlops-window-tests", {"window_dags.py": DAG_FILE})


@pytest.fixture
def asset_triggered(monkeypatch):
    """Make dag.test() create its run as the scheduler does for an asset-triggered run: run type
    ``asset_triggered`` and the given asset events (``(asset name or URI, extra)``) as the run's
    consumed events, which the task reads as ``triggering_asset_events``. dag.test() itself only
    creates manual runs (airflow.models.dagrun.get_or_create_dagrun, looked up at each call)."""
    from airflow.models import dagrun as dagrun_module

    original = dagrun_module.get_or_create_dagrun
    events: list[tuple[str, dict]] = []

    def get_or_create_dagrun(*, session, **kwargs):
        from airflow.models.asset import AssetEvent, AssetModel
        from airflow.utils.types import DagRunType
        from sqlalchemy import or_, select

        dr = original(session=session, **kwargs)
        dr.run_type = DagRunType.ASSET_TRIGGERED
        for key, extra in events:
            asset = session.scalars(
                select(AssetModel).where(or_(AssetModel.name == key, AssetModel.uri == key))
            ).one()
            event = AssetEvent(asset_id=asset.id, extra=extra, timestamp=dt.datetime.now(dt.timezone.utc))
            session.add(event)
            dr.consumed_asset_events.append(event)
        session.commit()
        return dr

    monkeypatch.setattr(dagrun_module, "get_or_create_dagrun", get_or_create_dagrun)
    return events


def run(bag, dag_id, day="2013-09-01"):
    dr = bag.dags[dag_id].test(logical_date=utc(day))
    return dr, {ti.task_id: ti for ti in dr.get_task_instances()}


def xcom(dr, task_id):
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        row = (
            session.query(XComModel.value)
            .filter(
                XComModel.dag_id == dr.dag_id,
                XComModel.run_id == dr.run_id,
                XComModel.task_id == task_id,
                XComModel.key == "return_value",
            )
            .one_or_none()
        )
    value = None if row is None else row[0]
    return json.loads(value) if isinstance(value, str) else value


# ------------------------------------------------------------------------------------ window
def test_window_is_the_data_interval_of_a_scheduled_run(bag):
    dr, tis = run(bag, "test_windows_score", "2013-09-01")
    assert dr.state == "success", {t: ti.state for t, ti in tis.items()}
    assert xcom(dr, "window") == ["2013-08-01", "2013-09-01"]
    assert tis["window"].try_number == 1 and bag.dags["test_windows_score"].get_task("window").retries == 0


def test_window_after_a_champion_change_is_the_last_scored_one(bag, store, asset_triggered):
    store.write_json(f"predictions/{MODEL}/mlops_batch_score/run_a/manifest.json", {"window": ["a", "b"]})
    store.write_json(
        f"predictions/{MODEL}/mlops_batch_score/run_b/manifest.json",
        {"window": ["2013-07-01", "2013-08-01"]},
    )
    store.write_json(f"predictions/{MODEL}/mlops_batch_score/run_c/manifest.json", {"rows": 3})
    dr, tis = run(bag, "test_windows_score", "2013-09-01")
    assert dr.run_type == "asset_triggered" and dr.state == "success"
    assert xcom(dr, "window") == ["2013-07-01", "2013-08-01"]  # the newest manifest with a window


def test_window_skips_an_asset_triggered_run_when_nothing_was_scored(bag, asset_triggered, capfd):
    dr, tis = run(bag, "test_windows_score", "2013-09-01")
    assert dr.run_type == "asset_triggered"
    assert {t: ti.state for t, ti in tis.items()} == {"window": "skipped", "score": "skipped"}
    assert f"No window of {MODEL} has been scored yet" in capfd.readouterr().out
    assert xcom(dr, "window") is None


# -------------------------------------------------------------------------------------- plan
def new_file(name="flights_2013-07.parquet", **payload):
    return {
        "from_trigger": True,
        "payload": {"uri": LANDING + name, "size": 1024, "mtime": "2013-08-01T00:00:00+00:00", **payload},
    }


def test_plan_of_a_landing_file_builds_the_train_sql(bag, asset_triggered):
    asset_triggered.append(("test_windows_landing", new_file()))
    dr, tis = run(bag, "test_windows_plan", "2013-08-01")
    assert dr.state == "success", {t: ti.state for t, ti in tis.items()}
    plan = xcom(dr, "plan")
    assert plan == {
        "reason": "new_data",
        "eval_uri": LANDING + "flights_2013-07.parquet",
        "eval_window": None,
        "event": new_file(),
        "train_window": ["2013-04-01", "2013-07-01"],
        "events": 1,
        "train_sql": f"{SELECT} WHERE sched_dep_at >= '2013-04-01' AND sched_dep_at < '2013-07-01' "
        "ORDER BY id",
        "eval_sql": None,  # the new file itself is the evaluation set
    }


def test_plan_of_a_retrain_request_builds_train_and_eval_sql(bag, artifact_root, asset_triggered):
    from mlops_provider.core.events import RetrainRequest

    request = RetrainRequest(
        model=MODEL,
        reason="drift",
        champion_version=1,
        window={"start": "2013-12-01T00:00:00+00:00", "end": "2014-01-01T00:00:00+00:00"},
        drifted_features=["temp"],
        scores={"temp": 2.5},
        report_uri=f"{artifact_root}/drift/{MODEL}/r.json",
        requested_at="2014-01-01T01:00:00+00:00",
    )
    asset_triggered.append((REQUESTED, request.to_extra()))
    dr, tis = run(bag, "test_windows_plan", "2014-01-01")
    assert dr.state == "success", {t: ti.state for t, ti in tis.items()}
    plan = xcom(dr, "plan")
    assert (plan["reason"], plan["eval_uri"]) == ("drift", None)
    assert plan["eval_window"] == ["2013-12-01", "2014-01-01"]
    assert plan["train_window"] == ["2013-09-01", "2013-12-01"]
    assert plan["train_sql"] == WINDOW_SQL.replace("{start}", "2013-09-01").replace("{end}", "2013-12-01")
    assert plan["eval_sql"] == WINDOW_SQL.replace("{start}", "2013-12-01").replace("{end}", "2014-01-01")


def test_plan_of_a_malformed_payload_fails_at_once_and_says_why(bag, asset_triggered, capfd):
    asset_triggered.append(("test_windows_landing", new_file(size=-5)))
    dr, tis = run(bag, "test_windows_plan", "2013-08-01")
    assert dr.state == "failed"
    assert {t: ti.state for t, ti in tis.items()} == {"plan": "failed", "extract": "upstream_failed"}
    assert tis["plan"].try_number == 1  # bad input is not retried (the task has retries=2)
    out = capfd.readouterr().out
    assert "InvalidInputError: Triggering event #0 rejected (no event of this batch is used)" in out
    assert "'size'" in out and "-5" in out
    assert xcom(dr, "plan") is None


def test_plan_of_a_file_outside_the_landing_prefix_fails(bag, asset_triggered, capfd):
    asset_triggered.append(
        ("test_windows_landing", new_file(uri="file:///elsewhere/flights_2013-07.parquet"))
    )
    dr, tis = run(bag, "test_windows_plan", "2013-08-01")
    assert tis["plan"].state == "failed"
    assert f"a URI under the allowed prefix {LANDING!r}" in capfd.readouterr().out


# ----------------------------------------------------------------------------- configuration
def test_window_sql_needs_both_placeholders():
    from mlops_provider.core.errors import InvalidParameterError
    from mlops_provider.operators.windows import PlanEventRetrainOperator

    with pytest.raises(InvalidParameterError, match=r"'window_sql' parameter .* \{start\} and \{end\}"):
        PlanEventRetrainOperator(
            task_id="plan", landing_uri=LANDING, window_sql=SELECT + " WHERE x >= '{start}'"
        )
    op = PlanEventRetrainOperator(task_id="plan", landing_uri=LANDING, window_sql="a {start} {x} {end} {{b}}")
    assert op.sql_for(["2013-01-01", "2013-02-01"]) == "a 2013-01-01 {x} 2013-02-01 {{b}}"  # only the two
    assert op.sql_for(None) is None
    assert PlanEventRetrainOperator(task_id="plan", landing_uri=LANDING).sql_for(["a", "b"]) is None


@pytest.mark.parametrize("months", [0, -1, "three", True, None])
def test_plan_refuses_a_bad_train_months(months):
    from airflow.sdk.exceptions import AirflowFailException

    from mlops_provider.operators.windows import PlanEventRetrainOperator
    from tests.helpers import context_for

    op = PlanEventRetrainOperator(task_id="plan", landing_uri=LANDING, train_months=months)
    context = context_for("plan") | {"triggering_asset_events": [{"extra": new_file()}]}
    with pytest.raises(AirflowFailException, match=r"'train_months' parameter .* an int >= 1"):
        op.execute(context)


def test_importing_the_operators_loads_nothing_heavy():
    """The templates import this module at parse time: no data library, no @task machinery."""
    import subprocess
    import sys

    code = (
        "import sys, json; import airflow.sdk; before = set(sys.modules)\n"
        "import mlops_provider.operators.windows\n"
        "print(json.dumps(sorted(set(sys.modules) - before)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    new = json.loads(out.strip().splitlines()[-1])
    heavy = ("pandas", "sklearn", "pyarrow", "numpy", "scipy", "boto3", "great_expectations", "skops")
    assert not [m for m in new if m.split(".")[0] in heavy]
    assert not [
        m for m in new if m.startswith(("airflow.sdk.bases.decorator", "airflow.sdk.definitions.decorators"))
    ]
    assert "mlops_provider.operators.windows" in new and "mlops_provider.chains" not in new
