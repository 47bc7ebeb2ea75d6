import json

import numpy as np
import pytest

from mlops_provider.core.errors import InvalidInputError
from mlops_provider.core.quality import load_suite_file, normalize_suite, validate_dataframe

SUITE = {
    "name": "flights",
    "expectations": [
        {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "dep_time"}},
        {"type": "expect_column_values_to_be_between", "kwargs": {"column": "distance", "min_value": 1}},
        {
            "type": "expect_column_values_to_be_in_set",
            "kwargs": {
                "column": "carrier",
                "value_set": [
                    "UA",
                    "AA",
                    "B6",
                    "DL",
                    "EV",
                    "MQ",
                    "US",
                    "WN",
                    "VX",
                    "FL",
                    "AS",
                    "9E",
                    "F9",
                    "HA",
                    "YV",
                    "OO",
                ],
            },
        },
        {"type": "expect_table_row_count_to_be_between", "kwargs": {"min_value": 1000}},
    ],
}


def real_flights_with_defects():
    from mlops_provider.examples.nycflights import load_flights_with_weather

    df = load_flights_with_weather()
    df = df[df["month"] == 6].reset_index(drop=True)
    rng = np.random.default_rng(0)
    df.loc[rng.choice(len(df), 250, replace=False), "dep_time"] = np.nan
    df.loc[:9, "distance"] = -df.loc[:9, "distance"]
    df.loc[20:24, "carrier"] = "ZZ"
    return df


def test_failing_suite_reports_each_failure_with_counts():
    df = real_flights_with_defects()
    base_nulls = int(load_base_nulls())
    report = validate_dataframe(df, SUITE, dataset_uri="file:///x", dataset_sha256="abc")
    assert not report.success
    assert report.evaluated == 4 and report.unsuccessful == 3
    by = {(f.expectation, f.column): f for f in report.failures}
    nulls = by[("expect_column_values_to_not_be_null", "dep_time")]
    assert nulls.unexpected_count >= 250 and nulls.unexpected_count <= 250 + base_nulls
    assert nulls.element_count == len(df)
    assert nulls.unexpected_percent == pytest.approx(100 * nulls.unexpected_count / len(df))
    neg = by[("expect_column_values_to_be_between", "distance")]
    assert neg.unexpected_count == 10 and all(v < 0 for v in neg.unexpected_examples)
    carrier = by[("expect_column_values_to_be_in_set", "carrier")]
    assert carrier.unexpected_count == 5 and set(carrier.unexpected_examples) == {"ZZ"}
    d = report.to_dict()
    json.dumps(d)  # XCom-serializable
    assert d["gate"] == "data" and len(d["failures"]) == 3
    assert "distance" in d["summary"] and "10 of" in d["summary"] and "ZZ" in d["summary"]


def load_base_nulls():
    from mlops_provider.examples.nycflights import load_flights_with_weather

    df = load_flights_with_weather()
    return df[df["month"] == 6]["dep_time"].isna().sum()


def test_passing_suite_and_missing_column_is_reported():
    import pandas as pd

    df = pd.DataFrame({"distance": [10, 20, 30]})
    ok = validate_dataframe(
        df, [{"type": "expect_column_values_to_be_between", "column": "distance", "min_value": 1}]
    )
    assert ok.success and ok.failures == []
    bad = validate_dataframe(
        df, [{"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "dep_time"}}]
    )
    assert not bad.success
    assert bad.failures[0].exception and "dep_time" in bad.failures[0].exception


def test_unknown_expectation_type_names_it():
    import pandas as pd

    with pytest.raises(InvalidInputError, match="expect_values_to_be_nice"):
        validate_dataframe(pd.DataFrame({"a": [1]}), [{"type": "expect_values_to_be_nice", "column": "a"}])


def test_suite_forms_and_file(tmp_path):
    flat = normalize_suite([{"expectation_type": "expect_column_values_to_not_be_null", "column": "a"}])
    assert flat["expectations"] == [
        {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "a"}}
    ]
    p = tmp_path / "suite.json"
    p.write_text(json.dumps(SUITE))
    assert load_suite_file(str(p))["name"] == "flights"
    with pytest.raises(InvalidInputError, match="no 'type'"):
        normalize_suite([{"column": "a"}])
    with pytest.raises(InvalidInputError, match="not valid JSON"):
        normalize_suite("{nope")
