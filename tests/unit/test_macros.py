import datetime as dt

from mlops_provider.macros import months_before


def test_months_before_crosses_years_and_clamps_days():
    assert months_before(dt.datetime(2013, 6, 1), 3) == "2013-03-01"
    assert months_before(dt.date(2013, 2, 1), 3) == "2012-11-01"
    assert months_before(dt.date(2013, 3, 31), 1) == "2013-02-28"
    assert months_before(dt.date(2013, 3, 1), "0") == "2013-03-01"
