from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from statusdash.agent.rates import MAX_BYTES_S, WRAP32, counter_delta, percent, rate


def test_counter_moving_forward() -> None:
    assert counter_delta(100, 250) == 150
    assert rate(100, 250, 2.0) == 75.0


def test_32bit_wrap_counts_the_distance_through_zero() -> None:
    assert counter_delta(WRAP32 - 100, 50) == 150
    assert rate(WRAP32 - 100, 50, 10.0) == 15.0


def test_reset_counts_from_zero_never_negative() -> None:
    # a 64-bit counter (far beyond 32 bits) that went back: the device was re-created
    assert counter_delta(10**12, 5_000) == 5_000
    # small counter that dropped: also a reset, not a wrap
    assert counter_delta(1_000, 10) == 10


def test_absurd_rate_is_dropped() -> None:
    assert rate(0, 10**15, 1.0) is None
    assert rate(0, 10, 0.0) is None
    assert rate(0, 10, -1.0) is None
    assert rate(0, 10, math.nan) is None


@given(st.integers(0, 2**64 - 1), st.integers(0, 2**64 - 1), st.floats(0.001, 1e6))
def test_rate_is_never_negative(prev: int, cur: int, dt: float) -> None:
    r = rate(prev, cur, dt)
    assert r is None or 0 <= r <= MAX_BYTES_S


def test_percent_is_clamped_and_safe() -> None:
    assert percent(1, 4) == 25.0
    assert percent(5, 4) == 100.0
    assert percent(-1, 4) == 0.0
    assert percent(1, 0) == 0.0
    assert percent(math.inf, 1) == 0.0
