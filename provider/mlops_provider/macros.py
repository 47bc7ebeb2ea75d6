"""Jinja helpers for the DAG templates (pass as ``user_defined_macros=MACROS``). Light: no imports
beyond the standard library, since DAG files import this at parse time."""

from __future__ import annotations

import datetime as dt


def months_before(value: dt.datetime | dt.date, months: int | str) -> str:
    """``value`` moved back ``months`` calendar months, as ``YYYY-MM-DD`` (day clamped to month end)."""
    months = int(months)
    y, m = divmod(value.year * 12 + (value.month - 1) - months, 12)
    m += 1
    import calendar

    day = min(value.day, calendar.monthrange(y, m)[1])
    return dt.date(y, m, day).isoformat()


MACROS = {"months_before": months_before}
