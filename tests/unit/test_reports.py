"""HTML/PNG reports of the two gates, written for real through a file:// ArtifactStore and read back.

The pages are checked with a strict HTML5 parser (html5lib) and a tag-balance parser (stdlib),
their tables are read cell by cell, and every ``<img src>`` must name a real PNG next to the page.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from mlops_provider.core import evaluation, modeling
from mlops_provider.core.errors import InvalidInputError
from mlops_provider.core.reports import (
    describe_expected,
    render_validation_html,
    write_evaluation_report,
    write_validation_report,
)
from mlops_provider.examples.nycflights import CATEGORICAL, FEATURES, LABEL
from tests.conftest import files_under

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
SCRIPT = "<script>alert('x')</script>"
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


# --------------------------------------------------------------------------- page parsing helpers
class Page(HTMLParser):
    """Checks that every tag is closed in order; collects images, tables (cell texts) and the text."""

    def __init__(self, text: str):
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.imgs: list[dict[str, str]] = []
        self.tables: list[list[list[str]]] = []
        self.row_classes: list[list[str]] = []
        self._cell: list[str] | None = None
        self._text: list[str] = []
        self._href: str | None = None
        self.feed(text)
        self.close()
        if self.stack:
            self.errors.append(f"unclosed tags at end: {self.stack}")

    def handle_starttag(self, tag, attrs):
        a = {k: v or "" for k, v in attrs}
        if tag == "a":
            self._href = a.get("href")
        if tag == "img":
            a["_link"] = self._href or ""  # the link the image sits in (click to enlarge)
            self.imgs.append(a)
        if tag not in VOID:
            self.stack.append(tag)
        if tag == "table":
            self.tables.append([])
            self.row_classes.append([])
        elif tag == "tr":
            self.tables[-1].append([])
            self.row_classes[-1].append(a.get("class", ""))
        elif tag in ("td", "th"):
            self._cell = []

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        if tag not in VOID:
            self.handle_endtag(tag)

    def handle_endtag(self, tag):
        if tag in VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
            return
        self.stack.pop()
        if tag == "a":
            self._href = None
        if tag in ("td", "th") and self._cell is not None:
            self.tables[-1][-1].append(" ".join("".join(self._cell).split()))
            self._cell = None

    def handle_data(self, data):
        self._text.append(data)
        if self._cell is not None:
            self._cell.append(data)

    @property
    def text(self) -> str:
        return " ".join("".join(self._text).split())

    def table(self, first_header: str) -> tuple[list[str], list[list[str]], list[str]]:
        """(header, body rows, body row classes) of the table whose first column is ``first_header``."""
        for rows, classes in zip(self.tables, self.row_classes, strict=True):
            if rows and rows[0] and rows[0][0] == first_header:
                return rows[0], rows[1:], classes[1:]
        raise AssertionError(
            f"no table starting with {first_header!r}; tables: {[t[0] for t in self.tables if t]}"
        )


def parse_valid_html(text: str) -> Page:
    import html5lib

    assert text.startswith("<!DOCTYPE html>")
    html5lib.HTMLParser(strict=True, namespaceHTMLElements=False).parse(text)  # raises on any parse error
    page = Page(text)
    assert page.errors == []
    return page


def local_path(store, uri: str) -> Path:
    return Path(store.path(store.key_of(uri)))


def assert_real_png(path: Path) -> tuple[int, int]:
    from PIL import Image

    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC, path
    assert len(data) > 5_000, f"{path} is only {len(data)} bytes"
    with Image.open(path) as im:
        im.verify()
    with Image.open(path) as im:
        width, height = im.size
    assert width >= 300 and height >= 300
    return width, height


def assert_images_next_to_page(store, html_uri: str, page: Page, expected: set[str]) -> None:
    html_path = local_path(store, html_uri)
    srcs = [img["src"] for img in page.imgs]
    assert set(srcs) == expected and len(srcs) == len(expected)
    for img in page.imgs:
        src = img["src"]
        assert "/" not in src and "://" not in src, f"{src} is not a relative link to a sibling"
        assert img.get("alt")
        assert img["_link"] == src, f"{src} does not open full size on click"
        assert_real_png(html_path.parent / src)


def fmt(v: float, signed: bool = False) -> str:
    return f"{v:+.4f}" if signed else f"{v:.4f}"


# --------------------------------------------------------------------------- data-quality report
VALIDATION_SUITE = {
    "name": "flights <june>",
    "expectations": [
        {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "dep_time"}},
        {
            "type": "expect_column_values_to_be_between",
            "kwargs": {"column": "distance", "min_value": 1, "max_value": 5000},
        },
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
        {
            "type": "expect_column_mean_to_be_between",
            "kwargs": {"column": "air_time", "min_value": 10, "max_value": 400},
        },
    ],
}


def test_validation_report_of_a_real_failed_gx_run(store):
    from mlops_provider.core.quality import validate_dataframe
    from mlops_provider.examples.nycflights import load_flights_with_weather

    df = load_flights_with_weather()
    df = df[df["month"] == 6].head(4000).reset_index(drop=True)
    df.loc[[3, 50, 700], "dep_time"] = np.nan
    df.loc[:6, "distance"] = -df.loc[:6, "distance"]
    df.loc[100:103, "carrier"] = SCRIPT
    base_nulls = int(df["dep_time"].isna().sum())
    report = validate_dataframe(
        df, VALIDATION_SUITE, dataset_uri="file:///snap/<x>.parquet", dataset_sha256="ab" * 32
    )
    d = report.to_dict()
    assert not d["success"] and d["unsuccessful"] == 3

    uri = write_validation_report(store, "/runs/r1/quality/", d)
    assert uri == store.uri("runs/r1/quality/validation.html")
    path = local_path(store, uri)
    assert files_under(path.parent) == ["validation.html"]  # atomic: no temporary file left behind
    text = path.read_text("utf-8")
    assert text == render_validation_html(d)
    page = parse_valid_html(text)

    assert "FAIL" in page.text and "2 of 5 expectations met" in page.text
    assert "flights &lt;june&gt;" in text and "file:///snap/&lt;x&gt;.parquet" in text and "ab" * 32 in text
    header, rows, classes = page.table("Status")
    assert header == [
        "Status",
        "Expectation",
        "Column",
        "Expected",
        "Observed",
        "Unexpected",
        "Unexpected %",
        "Missing",
        "Examples",
    ]
    assert len(rows) == 5
    # failed rows first, highlighted
    assert [r[0] for r in rows] == ["FAIL"] * 3 + ["PASS"] * 2
    assert classes == ["fail"] * 3 + ["pass"] * 2
    by_column = {r[2]: r for r in rows}
    nulls, dist, carrier = by_column["dep_time"], by_column["distance"], by_column["carrier"]
    assert nulls[1] == "expect_column_values_to_not_be_null"
    assert nulls[5] == f"{base_nulls} / 4000"
    gx_nulls = next(r for r in d["results"] if r["column"] == "dep_time")
    assert gx_nulls["unexpected_percent"] == pytest.approx(100 * base_nulls / 4000)
    assert nulls[6] == f"{gx_nulls['unexpected_percent']:.2f}%"
    assert dist[3] == ">= 1 and <= 5000" and dist[5] == "7 / 4000"
    assert all(x.startswith("-") for x in dist[8].split())  # the negative distances as examples
    assert carrier[5] == "4 / 4000" and carrier[8].split() == [SCRIPT] * 4
    assert carrier[3].startswith("in {UA, AA, B6") and "OO}" in carrier[3]
    # escaping: the injected value is shown, never interpreted
    assert SCRIPT not in text
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in text
    assert by_column["(table)"][3] == ">= 1000" and by_column["(table)"][4] == "4000"
    mean_row = by_column["air_time"]
    assert mean_row[0] == "PASS" and float(mean_row[4]) == pytest.approx(df["air_time"].mean(), rel=1e-5)


def test_validation_report_pass_banner_exceptions_and_expected_rendering(store):
    report = {
        "suite_name": "tiny",
        "dataset_uri": None,
        "dataset_sha256": None,
        "success": True,
        "evaluated": 2,
        "successful": 2,
        "unsuccessful": 0,
        "success_percent": 100.0,
        "results": [
            {
                "expectation": "expect_column_values_to_match_regex",
                "column": "tailnum",
                "kwargs": {"column": "tailnum", "regex": "^N[0-9]+<", "mostly": 0.95},
                "success": True,
                "observed_value": None,
                "element_count": 10,
                "unexpected_count": 0,
                "unexpected_percent": 0.0,
                "missing_count": 0,
                "unexpected_examples": [],
                "exception": None,
            },
            {
                "expectation": "expect_column_pair_values_a_to_be_greater_than_b",
                "column": None,
                "kwargs": {"column_A": "arr_time", "column_B": "dep_time", "or_equal": True},
                "success": True,
                "observed_value": {"q": [1, 2]},
                "element_count": None,
                "unexpected_count": None,
                "unexpected_percent": None,
                "missing_count": None,
                "unexpected_examples": [],
                "exception": None,
            },
        ],
        "summary": "Data quality gate passed for suite 'tiny': 2/2 expectations met",
    }
    page = parse_valid_html(render_validation_html(report))
    assert "PASS" in page.text and "FAIL" not in page.text
    _, rows, classes = page.table("Status")
    assert classes == ["pass", "pass"]
    assert rows[0][3] == "matches /^N[0-9]+</; (mostly >= 95%)"
    assert (
        rows[1][2] == "arr_time, dep_time" and rows[1][3] == "or_equal=True" and rows[1][4] == '{"q": [1, 2]}'
    )

    failed = dict(report, success=False, successful=1, unsuccessful=1)
    failed["results"] = [
        dict(report["results"][0]),
        dict(report["results"][1], success=False, exception="KeyError: 'arr_time' <missing>"),
    ]
    uri = write_validation_report(store, "q", failed)
    text = local_path(store, uri).read_text()
    page = parse_valid_html(text)
    _, rows, classes = page.table("Status")
    assert classes == ["fail", "pass"] and rows[0][4] == "error: KeyError: 'arr_time' <missing>"
    assert "&lt;missing&gt;" in text


@pytest.mark.parametrize(
    "etype, kwargs, expected",
    [
        ("expect_column_values_to_be_between", {"column": "x", "min_value": 0, "strict_min": True}, "> 0"),
        ("expect_column_values_to_be_between", {"column": "x", "max_value": 2.5}, "<= 2.5"),
        (
            "expect_column_values_to_not_be_in_set",
            {"column": "x", "value_set": ["a", None]},
            "not in {a, null}",
        ),
        (
            "expect_column_values_to_be_in_set",
            {"column": "x", "value_set": list(range(25))},
            "in {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, \u2026 (+5 more)}",
        ),
        ("expect_column_values_to_be_of_type", {"column": "x", "type_": "float64"}, "type float64"),
        (
            "expect_table_columns_to_match_set",
            {"column_set": ["a", "b"], "exact_match": True},
            'column_set=["a", "b"]; exact_match=True',
        ),
        ("expect_column_values_to_not_be_null", {"column": "x", "result_format": "SUMMARY"}, "\u2014"),
    ],
)
def test_describe_expected(etype, kwargs, expected):
    assert describe_expected(etype, kwargs) == expected


# --------------------------------------------------------------------------- evaluation report on real data
@pytest.fixture(scope="module")
def flights_models():
    """A challenger (HGB, 20 iterations) and a weaker champion (HGB, 3 shallow iterations) trained on
    March-May 2013 flights; scored on June (~28k flights). late = arr_delay > 15."""
    from mlops_provider.examples.nycflights import load_flights_with_weather

    df = load_flights_with_weather()
    df = df[df["arr_delay"].notna()].copy()
    df[LABEL] = (df["arr_delay"] > 15).astype(int)
    train = df[df["month"].isin([3, 4, 5])].reset_index(drop=True)
    june = df[df["month"] == 6].reset_index(drop=True)
    estimator = "sklearn.ensemble.HistGradientBoostingClassifier"
    challenger, result = modeling.train_model(
        train,
        label=LABEL,
        estimator=estimator,
        params={"max_iter": 20},
        features=FEATURES,
        categorical=CATEGORICAL,
    )
    champion, _ = modeling.train_model(
        train,
        label=LABEL,
        estimator=estimator,
        params={"max_iter": 3, "max_depth": 2},
        features=FEATURES,
        categorical=CATEGORICAL,
    )
    spec = result.spec
    X = modeling.prepare_frame(june, spec)
    _, ch_score = modeling.predict_scores(challenger, X, spec)
    _, cm_score = modeling.predict_scores(champion, X, spec)
    ch_metrics = evaluation.compute_metrics(challenger, june, spec)
    cm_metrics = evaluation.compute_metrics(champion, june, spec)
    verdict = evaluation.decide(
        model="flights_late",
        task="classification",
        challenger_metrics=ch_metrics,
        champion_metrics=cm_metrics,
        champion_version=3,
        thresholds={"roc_auc": 0.6, "log_loss": {"max": 0.3}},
        eval_dataset={"uri": "file:///datasets/june", "rows": len(june)},
    ).to_dict()
    return june, spec, ch_score, cm_score, verdict


def test_evaluation_report_on_real_flights_model(store, flights_models):
    from sklearn.metrics import accuracy_score, roc_auc_score

    june, spec, ch_score, cm_score, verdict = flights_models
    assert spec.positive_label == 1 and len(june) > 25_000
    t0 = time.perf_counter()
    out = write_evaluation_report(
        store,
        "models/flights_late/v4/report",
        verdict=verdict,
        y_true=june[LABEL],
        challenger_score=ch_score,
        champion_score=cm_score,
        slice_values=june["carrier"],
        slice_column="carrier",
    )
    elapsed = time.perf_counter() - t0
    assert elapsed < 15, f"report for {len(june)} rows took {elapsed:.1f}s"

    folder = local_path(store, out["html_uri"]).parent
    assert out["html_uri"] == store.uri("models/flights_late/v4/report/evaluation.html")
    matrices = ["confusion", "confusion_normalized", "confusion_champion", "confusion_champion_normalized"]
    names = ["roc", "pr", *matrices, "calibration"]
    assert files_under(folder) == sorted([f"{n}.png" for n in names] + ["evaluation.html"])
    assert out["images"] == {n: store.uri(f"models/flights_late/v4/report/{n}.png") for n in names}
    page = parse_valid_html(local_path(store, out["html_uri"]).read_text("utf-8"))
    assert_images_next_to_page(store, out["html_uri"], page, {f"{n}.png" for n in names})
    # one matrix per figure, each about square (not two squeezed side by side), readable at 1x
    for n in matrices:
        w, h = assert_real_png(folder / f"{n}.png")
        assert 0.8 < w / h < 1.6 and h >= 400, (n, w, h)

    # verdict banner
    assert ("PASSED" if verdict["passed"] else "FAILED") in page.text
    assert verdict["decision"].upper() in page.text
    assert verdict["reason"] in page.text

    # checks: one row per check with the verdict's numbers
    header, rows, classes = page.table("kind")
    assert header == ["kind", "metric", "op", "threshold", "challenger", "champion", "delta", "passed"]
    assert len(rows) == len(verdict["checks"]) == 3
    for row, cls, check in zip(rows, classes, verdict["checks"], strict=True):
        assert row[:3] == [check["kind"], check["metric"], check["op"]]
        assert row[3:7] == [
            fmt(check["threshold"]),
            fmt(check["challenger"]),
            fmt(check["champion"]),
            fmt(check["delta"], signed=True),
        ]
        assert row[7] == ("passed" if check["passed"] else "FAILED") and cls == (
            "pass" if check["passed"] else "fail"
        )

    # metrics: champion vs challenger with delta, for every metric of the verdict
    header, rows, _ = page.table("metric")
    assert header == ["metric", "champion", "challenger", "delta (challenger - champion)"]
    ch, cm = verdict["metrics"]["challenger"], verdict["metrics"]["champion"]
    assert [r[0] for r in rows] == list(ch)
    by_metric = {r[0]: r for r in rows}
    for name in evaluation.CLASSIFICATION_METRICS:
        assert by_metric[name][1:] == [
            fmt(cm[name]),
            fmt(ch[name]),
            fmt(round(ch[name] - cm[name], 6), signed=True),
        ]
    assert by_metric["rows"][1:] == [str(len(june)), str(len(june)), "+0"]
    assert by_metric["roc_auc"][2] == fmt(roc_auc_score(june[LABEL], ch_score))

    # slices: the carriers, largest first, metrics recomputed independently
    header, rows, _ = page.table("carrier")
    assert header == [
        "carrier",
        "rows",
        "positive rate",
        "challenger roc_auc",
        "challenger accuracy",
        "champion roc_auc",
        "champion accuracy",
    ]
    counts = june["carrier"].value_counts()
    assert [r[0] for r in rows] == [s["value"] for s in out["slices"]]
    assert {s["value"] for s in out["slices"]} == set(counts.index) and len(rows) == len(counts) <= 30
    assert [s["rows"] for s in out["slices"]] == sorted(counts.to_numpy().tolist(), reverse=True)
    assert {"UA", "EV", "B6", "DL", "AA", "MQ"} <= {r[0] for r in rows}
    for s, row in zip(out["slices"], rows, strict=True):
        m = (june["carrier"] == s["value"]).to_numpy()
        y = june[LABEL].to_numpy()[m]
        assert s["rows"] == m.sum() and row[1] == str(m.sum())
        assert s["positive_rate"] == pytest.approx(y.mean(), abs=1e-6)
        assert s["challenger_accuracy"] == pytest.approx(accuracy_score(y, ch_score[m] >= 0.5), abs=1e-6)
        if 0 < y.sum() < len(y):
            assert s["challenger_roc_auc"] == pytest.approx(roc_auc_score(y, ch_score[m]), abs=1e-6)
            assert s["champion_roc_auc"] == pytest.approx(roc_auc_score(y, cm_score[m]), abs=1e-6)
            assert row[3] == fmt(s["challenger_roc_auc"])
        else:
            assert s["challenger_roc_auc"] is None and row[3] == ""


# --------------------------------------------------------------------------- evaluation report edge cases
def synthetic_classification(n: int = 6000, seed: int = 0):
    from sklearn.datasets import make_classification
    from sklearn.linear_model import LogisticRegression

    X, y = make_classification(n_samples=2 * n, n_features=8, n_informative=4, random_state=seed)
    model = LogisticRegression(max_iter=500).fit(X[:n], y[:n])
    return y[n:], model.predict_proba(X[n:])[:, 1]


def test_evaluation_report_without_champion_escapes_and_handles_single_class_slices(store):
    y, score = synthetic_classification()
    n = len(y)
    slices = np.array(["big"] * (n - 60) + [SCRIPT] * 40 + ["allneg"] * 20, dtype=object)
    y = y.copy()
    y[-20:] = 0  # the "allneg" slice has a single class
    score = score.copy()
    score[5] = np.nan  # rows with a missing score are left out
    challenger = {"roc_auc": 0.81, "log_loss": 0.45, "rows": n - 1}
    verdict = evaluation.decide(
        model="m<1>",
        task="classification",
        challenger_metrics=challenger,
        champion_metrics=None,
        champion_version=None,
        thresholds={"roc_auc": 0.9},
    ).to_dict()
    out = write_evaluation_report(
        store,
        "r",
        verdict=verdict,
        y_true=y.tolist(),
        challenger_score=score,
        slice_values=slices,
        slice_column="segment <b>",
        title="Report <for> m",
    )
    text = local_path(store, out["html_uri"]).read_text()
    page = parse_valid_html(text)
    assert_images_next_to_page(
        store,
        out["html_uri"],
        page,
        {"roc.png", "pr.png", "confusion.png", "confusion_normalized.png", "calibration.png"},
    )
    assert "FAILED" in page.text and "REJECT" in page.text and "<title>Report &lt;for&gt; m</title>" in text
    assert SCRIPT not in text and "<b>" not in text and "m&lt;1&gt;" in text

    (check_row,) = page.table("kind")[1]
    assert check_row == ["threshold", "roc_auc", ">=", "0.9000", "0.8100", "", "-0.0900", "FAILED"]
    header, rows, _ = page.table("metric")
    assert rows[0] == ["roc_auc", "", "0.8100", ""]

    header, rows, _ = page.table("segment <b>")
    assert header == ["segment <b>", "rows", "positive rate", "challenger roc_auc", "challenger accuracy"]
    assert [r[0] for r in rows] == ["big", SCRIPT, "allneg"]
    assert [s["rows"] for s in out["slices"]] == [n - 61, 40, 20]
    allneg = out["slices"][2]
    assert allneg["positive_rate"] == 0 and allneg["challenger_roc_auc"] is None
    assert rows[2][3] == "" and rows[2][4] == fmt(allneg["challenger_accuracy"])
    assert "champion_roc_auc" not in allneg
    assert_real_png(local_path(store, out["images"]["confusion"]))


def test_evaluation_report_keeps_the_30_largest_slices(store):
    y, score = synthetic_classification(n=3000, seed=1)
    rng = np.random.default_rng(0)
    slices = rng.choice(
        [f"S{i:02d}" for i in range(45)], size=len(y), p=np.linspace(1, 3, 45) / np.linspace(1, 3, 45).sum()
    )
    verdict = evaluation.decide(
        model="m",
        task="classification",
        challenger_metrics={"roc_auc": 0.8},
        champion_metrics={"roc_auc": 0.7},
        champion_version=1,
    ).to_dict()
    out = write_evaluation_report(
        store,
        "many",
        verdict=verdict,
        y_true=y,
        challenger_score=score,
        champion_score=np.clip(score + rng.normal(0, 0.1, len(y)), 0, 1),
        slice_values=slices,
        slice_column="dest",
    )
    assert len(out["slices"]) == 30
    rows = [s["rows"] for s in out["slices"]]
    assert rows == sorted(rows, reverse=True)
    _, counts = np.unique(slices, return_counts=True)
    assert rows == sorted(counts.tolist(), reverse=True)[:30]
    page = parse_valid_html(local_path(store, out["html_uri"]).read_text())
    assert "30 largest of 45 slices" in page.text and len(page.table("dest")[1]) == 30


def test_regression_report(store):
    from sklearn.datasets import make_regression
    from sklearn.linear_model import Ridge

    X, y = make_regression(n_samples=8000, n_features=6, noise=25.0, random_state=0)
    challenger = Ridge().fit(X[:4000], y[:4000]).predict(X[4000:])
    champion = Ridge().fit(X[:4000, :3], y[:4000]).predict(X[4000:, :3])
    y = y[4000:]
    rmse = lambda p: float(np.sqrt(np.mean((y - p) ** 2)))  # noqa: E731
    verdict = evaluation.decide(
        model="reg",
        task="regression",
        champion_version=2,
        challenger_metrics={"rmse": round(rmse(challenger), 6), "mae": 20.0, "r2": 0.9},
        champion_metrics={"rmse": round(rmse(champion), 6), "mae": 60.0, "r2": 0.5},
    ).to_dict()
    regions = np.where(X[4000:, 0] > 0, "north", "south")
    out = write_evaluation_report(
        store,
        "reg/report",
        verdict=verdict,
        y_true=y,
        challenger_score=challenger,
        champion_score=champion,
        slice_values=regions,
        slice_column="region",
    )
    folder = local_path(store, out["html_uri"]).parent
    assert files_under(folder) == ["evaluation.html", "predicted_vs_actual.png", "residuals.png"]
    assert set(out["images"]) == {"residuals", "predicted_vs_actual"}
    page = parse_valid_html((folder / "evaluation.html").read_text())
    assert_images_next_to_page(store, out["html_uri"], page, {"residuals.png", "predicted_vs_actual.png"})
    assert "PASSED" in page.text and "regression" in page.text
    _, rows, _ = page.table("metric")
    by = {r[0]: r for r in rows}
    assert by["rmse"][3] == fmt(round(rmse(challenger) - rmse(champion), 6), signed=True)
    header, rows, _ = page.table("region")
    assert header == [
        "region",
        "rows",
        "mean actual",
        "challenger rmse",
        "challenger mae",
        "champion rmse",
        "champion mae",
    ]
    for s in out["slices"]:
        m = regions == s["value"]
        assert s["challenger_rmse"] == pytest.approx(
            float(np.sqrt(np.mean((y[m] - challenger[m]) ** 2))), abs=1e-5
        )
        assert s["champion_mae"] == pytest.approx(float(np.mean(np.abs(y[m] - champion[m]))), abs=1e-5)


def test_mismatched_lengths_are_refused_before_anything_is_written(store):
    verdict = evaluation.decide(
        model="m",
        task="classification",
        challenger_metrics={"roc_auc": 0.8},
        champion_metrics=None,
        champion_version=None,
    ).to_dict()
    with pytest.raises(InvalidInputError, match="champion_score has 3 values but y_true has 4"):
        write_evaluation_report(
            store,
            "bad",
            verdict=verdict,
            y_true=[0, 1, 0, 1],
            challenger_score=[0.1, 0.9, 0.2, 0.8],
            champion_score=[0.1, 0.2, 0.3],
        )
    assert not store.exists("bad")


def test_reports_module_is_light_and_leaves_pyplot_alone(tmp_path):
    """Importing the module loads no heavy library; writing a report uses no pyplot / global backend."""
    code = textwrap.dedent(
        f"""
        import sys
        import mlops_provider.core.reports as reports
        heavy = [m for m in ("matplotlib", "pandas", "numpy", "sklearn", "airflow") if m in sys.modules]
        assert not heavy, heavy
        from mlops_provider.core.storage import ArtifactStore
        store = ArtifactStore("file://{tmp_path}")
        verdict = {{"model": "m", "passed": True, "decision": "promote", "reason": "ok",
                    "compare_metric": "roc_auc", "checks": [],
                    "metrics": {{"challenger": {{"roc_auc": 0.75}}}}}}
        reports.write_evaluation_report(store, "x", verdict=verdict, y_true=[0, 1, 0, 1, 1, 0],
                                        challenger_score=[0.2, 0.7, 0.4, 0.6, 0.9, 0.1])
        assert "matplotlib.pyplot" not in sys.modules
        assert "airflow" not in sys.modules
        """
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    for name in ("roc", "pr", "confusion", "calibration"):
        assert_real_png(tmp_path / "x" / f"{name}.png")
    parse_valid_html((tmp_path / "x" / "evaluation.html").read_text())


# --------------------------------------------------------------------------- confusion matrices
def _figure_texts(fig):
    """Every visible text of a drawn figure with its size in pixels at the figure's dpi."""
    from matplotlib.text import Text

    fig.canvas.draw()
    out = []
    for t in fig.findobj(Text):
        if t.get_visible() and t.get_text().strip():
            out.append((t.get_text(), t.get_fontsize() * fig.dpi / 72))
    return out


@pytest.mark.parametrize("k", [2, 3, 9, 15, 24])
def test_confusion_figure_is_one_matrix_with_labels_of_at_least_11_px(k):
    from sklearn.metrics import confusion_matrix

    from mlops_provider.core.reports.plots import confusion_figure

    rng = np.random.default_rng(k)
    # real class names made long on purpose; predictions right 70 % of the time
    names = [f"cultivar {c} of the Piedmont wine region"[: 12 + k] + f" #{c}" for c in range(k)]
    y = rng.integers(0, k, 3000)
    pred = np.where(rng.random(3000) < 0.7, y, rng.integers(0, k, 3000))
    cm = confusion_matrix(y, pred, labels=list(range(k)))
    for normalized in (False, True):
        fig = confusion_figure(cm, names, "challenger", normalized=normalized)
        images = [im for ax in fig.axes for im in ax.get_images()]
        assert len(images) == 1  # one matrix (the colour bar is the other axes)
        shown = images[0].get_array()
        expected = cm / cm.sum(axis=1, keepdims=True) if normalized else cm
        np.testing.assert_allclose(np.asarray(shown), expected)
        texts = _figure_texts(fig)
        small = [(t, round(px, 1)) for t, px in texts if px < 11]
        assert not small, small
        labels = {t for t, _ in texts}
        assert all(n in labels for n in names)
        cells = [t for t, _ in texts if t.replace(",", "").replace(".", "").split("\n")[0].isdigit()]
        if k <= 15:  # cell values are written, and they are the matrix's
            want = [f"{v:.2f}" if normalized else f"{v:,}" for v in expected.ravel()]
            got = [c.split("\n")[0] for c in cells if c.split("\n")[0] in set(want)]
            assert len(got) >= k * k


def test_binary_confusion_matches_scikit_learn():
    from sklearn.metrics import confusion_matrix

    from mlops_provider.core.reports.plots import binary_confusion

    rng = np.random.default_rng(3)
    y = rng.random(5000) < 0.3
    score = np.clip(y * 0.3 + rng.random(5000) * 0.7, 0, 1)
    np.testing.assert_array_equal(binary_confusion(y, score), confusion_matrix(y, score >= 0.5))


def test_multiclass_report_on_wine_has_one_matrix_per_figure_for_each_model(store):
    from sklearn.datasets import load_wine
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import confusion_matrix
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    data = load_wine()
    names = np.array(["barolo", "grignolino", "barbera"], dtype=object)
    X, y = data.data, names[data.target]
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.5, random_state=0, stratify=y)
    challenger = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(Xtr, ytr)
    champion = make_pipeline(StandardScaler(), LogisticRegression(C=0.001, max_iter=500)).fit(Xtr, ytr)
    classes = list(challenger.classes_)

    def preds(model):
        return modeling.Predictions(model.predict(Xte), model.predict_proba(Xte), classes)

    verdict = {"model": "wine", "passed": True, "decision": "promote", "reason": "ok", "checks": []}
    out = write_evaluation_report(
        store,
        "wine/report",
        verdict=verdict,
        y_true=list(yte),
        challenger=preds(challenger),
        champion=preds(champion),
    )
    folder = local_path(store, out["html_uri"]).parent
    pngs = {n for n in files_under(folder) if n.startswith("confusion")}
    assert pngs == {
        "confusion.png",
        "confusion_normalized.png",
        "confusion_champion.png",
        "confusion_champion_normalized.png",
    }
    page = parse_valid_html(local_path(store, out["html_uri"]).read_text("utf-8"))
    assert all(img["_link"] == img["src"] for img in page.imgs)
    for n in pngs:
        w, h = assert_real_png(folder / n)
        assert 0.8 < w / h < 1.6, (n, w, h)
    # the per-class table's support is the true class count
    header, rows, _ = page.table("class")
    want = confusion_matrix(yte, challenger.predict(Xte), labels=classes).sum(axis=1)
    support = header.index("support")
    assert [int(r[support].replace(",", "")) for r in rows] == list(want)


# --------------------------------------------------------------------------- links back
def test_run_report_links_point_at_the_run_model_snapshot_and_registry(store):
    from urllib.parse import quote

    from mlops_provider.core.steps.run import RunInfo

    run_id = "manual__2013-07-01T00:00:00+00:00 <x>"
    run = RunInfo("dag_a", run_id, "evaluate", ui_base_url="https://airflow.example.com/af")
    snap = store.uri("datasets/flights/abc123")
    links = dict(run.report_links(model="churn model/é", snapshot_uri=snap, store=store))
    assert links == {
        # through the registry's /open page, which opens Airflow's run page in the whole window
        "Run": "https://airflow.example.com/af/mlops/open?to="
        + quote(f"/af/dags/dag_a/runs/{quote(run_id)}", safe=""),
        "Model churn model/é": "https://airflow.example.com/af/mlops/models/churn%20model%2F%C3%A9",
        "Snapshot": "https://airflow.example.com/af/mlops/artifacts/datasets/flights/abc123/manifest.json",
        "Model registry": "https://airflow.example.com/af/mlops/",
    }
    # outside Airflow (a notebook) a report has no links back
    assert RunInfo.local().report_links(model="m", snapshot_uri=snap, store=store) == []


def test_validation_report_opens_with_escaped_links(store):
    from mlops_provider.core.reports import write_validation_report

    report = {"success": True, "suite_name": "s", "results": [], "statistics": {}}
    links = [("Run", '/dags/d/runs/r?a=1&b="><script>'), (SCRIPT, "/mlops/"), ("Nothing", None)]
    uri = write_validation_report(store, "v", report, links=links)
    text = local_path(store, uri).read_text()
    parse_valid_html(text)
    assert '<nav class="back" id="report-links">' in text
    assert 'href="/dags/d/runs/r?a=1&amp;b=&quot;&gt;&lt;script&gt;"' in text
    assert SCRIPT not in text and "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;</a>" in text
    assert "Nothing" not in text
