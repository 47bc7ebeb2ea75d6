"""The HTML kit shared by reports, registry pages, alert e-mails and the CLI (core/html.py)."""

from __future__ import annotations

import html as std_html
import math
from html.parser import HTMLParser

import numpy as np
import pytest

from mlops_provider.core import html as h

HOSTILE = "<script>alert('x')</script>\" onmouseover=\"x"


class _Collect(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)

    def handle_data(self, data):
        self.text.append(data)


def _parse(markup: str) -> _Collect:
    p = _Collect()
    p.feed(markup)
    return p


def test_escape_round_trips_hostile_text_and_quotes():
    out = h.escape(HOSTILE)
    assert "<" not in out and '"' not in out and "'" not in out
    assert std_html.unescape(out) == HOSTILE
    assert h.escape(None) == ""


def test_url_segment_encodes_every_reserved_character():
    assert h.url_segment("a/b?c#d e") == "a%2Fb%3Fc%23d%20e"


@pytest.mark.parametrize("value", [0.123456, -2.5, 1e-7, 12345.678901])
def test_number_matches_python_fixed_format(value):
    assert h.number(value) == format(value, ".4f")
    assert h.number(value, 2, signed=True) == format(value, "+.2f")


def test_number_keeps_ints_and_converts_numpy_scalars():
    assert h.number(12) == "12" and h.number(3, signed=True) == "+3"
    assert h.number(np.float32(0.5)) == "0.5000"
    assert h.number(np.int64(7)) == "7"


def test_number_missing_values():
    assert h.number(None) == ""
    assert h.number(float("nan")) == ""
    assert h.number(float("nan"), nan="NaN") == "NaN"
    assert h.number(math.inf) == "inf"
    assert h.number(True) == "True"


@pytest.mark.parametrize(
    "value, expected",
    [(0.85, "0.85"), (0.8500001, "0.85"), (-0.0123, "-0.0123"), (2.0, "2.0"), (3.2e-05, "3.2e-05"), (0, "0")],
)
def test_compact_drops_trailing_zeros(value, expected):
    assert h.compact(value) == expected
    assert float(h.compact(value)) == pytest.approx(value, abs=5e-5, rel=0.05)


def test_compact_signed_and_missing():
    assert h.compact(0.05, signed=True) == "+0.05"
    assert h.compact(-0.05, signed=True) == "-0.05"
    assert h.compact(None) == "n/a"


def test_aligned_uses_fixed_decimals_in_range_and_general_outside():
    assert h.aligned(0.86) == "0.8600"
    assert h.aligned(0.0) == "0.0000"
    assert h.aligned(1.23e-5) == format(1.23e-5, ".4g")
    assert h.aligned(2.5e7) == format(2.5e7, ".4g")


@pytest.mark.parametrize("p, expected", [(0, "0%"), (12.5, "12.50%"), (0.25, "0.25%"), (0.0001, "<0.001%")])
def test_percent(p, expected):
    assert h.percent(p) == expected


def test_percent_of_a_non_number_is_na():
    assert h.percent(None) == "n/a" and h.percent(float("nan")) == "n/a"


@pytest.mark.parametrize(
    "n, expected", [(512, "512 B"), (1536, "1.5 KiB"), (5 * 2**20, "5.0 MiB"), (3 * 2**40, "3072.0 GiB")]
)
def test_human_size(n, expected):
    assert h.human_size(n) == expected


def test_short_cuts_with_an_ellipsis_to_the_limit():
    assert h.short("x" * 500, 100) == "x" * 99 + "\u2026"
    assert len(h.short("x" * 500, 100)) == 100
    assert h.short("abc", 100) == "abc"


def test_readable_values():
    assert h.readable(None) == "null"
    assert h.readable(float("nan")) == "NaN"
    assert h.readable(1 / 3) == format(1 / 3, ".6g")
    assert h.readable({"b": 1, "a": [1, 2]}) == '{"a": [1, 2], "b": 1}'


def test_readable_set_lists_a_bounded_number_of_items():
    out = h.readable_set(range(25), max_items=20)
    assert out.startswith("{0, 1,") and out.endswith("(+5 more)}")


def test_table_escapes_headers_and_has_an_empty_row():
    out = h.table([HOSTILE, "b"], [], "nothing here", caption="cap", cls="x")
    parsed = _parse(out)
    assert "script" not in parsed.tags
    assert HOSTILE in "".join(parsed.text)
    assert '<td colspan="2" class="muted">nothing here</td>' in out
    assert out.startswith('<table class="x"><caption')


def test_number_cell_has_the_exact_value_in_its_tooltip():
    out = h.number_cell(0.123456789)
    assert 'class="num"' in out and 'title="0.123456789"' in out and ">0.1235<" in out


def test_definitions_skip_empty_values_unless_asked():
    assert h.definitions([("a", "1"), ("b", "")]) == '<dl class="kv"><dt>a</dt><dd>1</dd></dl>'
    assert h.stats([("a", "1"), ("b", "")]).count("<dt>") == 2


def test_document_is_a_complete_page_with_an_escaped_title():
    out = h.document(HOSTILE, "<p>body</p>", body_class="report")
    assert out.startswith("<!DOCTYPE html>") and out.rstrip().endswith("</html>")
    assert h.escape(HOSTILE) in out and "<script>" not in out
    assert '<body class="report">' in out and h.CSS in out
