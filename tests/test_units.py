"""``statusdash.units``: binary sizes, rates, percentages and counts that never raise."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from statusdash import units
from statusdash.durations import humanize
from statusdash.tui import fmt


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, "-"),
        (-5, "0"),
        (1023, "1.0K"),
        (1536, "1.5K"),
        (10 * 2**20, "10M"),
        (2**40, "1.0T"),
        (2**70, "1.0Z"),
        (2**80, "1.0Y"),
        (2**90, "1.02e+03Y"),
        (1e300, "8.27e+275Y"),
        (math.nan, "-"),
        (math.inf, "-"),
        (10**400, "-"),
    ],
)
def test_size_is_binary_and_total(value: float | None, text: str) -> None:
    assert units.size(value) == text


def test_rate_percent_and_count() -> None:
    assert units.rate(1.2 * 2**20) == "1.2M/s"
    assert units.rate(None) == "-"
    assert units.percent(23.4) == "23%" and units.percent(99.5) == "100%"
    assert units.percent(None) == "-" and units.percent(math.nan) == "-"
    assert units.count(1, "host") == "1 host" and units.count(2, "host") == "2 hosts"
    assert units.count(0, "host") == "0 hosts" and units.count(3, "index", "indices") == "3 indices"


def test_the_tui_keeps_hours_up_to_two_days() -> None:
    assert fmt.duration(30 * 3600) == "30h" and humanize(30 * 3600) == "1d"
    assert fmt.duration(3 * 86400) == humanize(3 * 86400) == "3d"


anything = st.one_of(
    st.none(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.sampled_from([1e300, -1e300, 2**70, 10**400]),
)


@given(anything)
def test_no_formatter_raises(value: float | None) -> None:
    for text in (
        units.size(value),
        units.size(value, "B"),
        units.rate(value),
        units.percent(value),
        humanize(value),
        fmt.duration(value),
        fmt.rate_pair(value, value),
    ):
        assert isinstance(text, str) and text
