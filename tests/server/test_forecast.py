"""Issue 14 item 1's forecast, a pure function over the 1 h tier of a disk series. The expected
answers were written down before the code:

- steady growth 50 % + 1 %/day, hourly for 10 days: 60 % now, 1.0 %/day, full in 40 days;
- the same with a delete of 20 points on day 5: 40 % now, still 1.0 %/day, full in 60 days;
- flat at 70 %, or shrinking 0.5 %/day: "not filling", no date;
- 2 %/day with +-3 points of noise: 1.8-2.2 %/day, the date inside its own range;
- three points: "not enough data".
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from statusdash.errors import Invalid
from statusdash.server.forecast import forecast

NOW = datetime(2026, 6, 1, tzinfo=UTC)
DAY = 86400.0


def _hourly(days: float, value: Callable[[float], float] | float) -> list[tuple[datetime, float]]:
    """Hourly samples over the ``days`` before NOW; ``value`` of the days since the start."""
    f = value if callable(value) else (lambda _d: float(value))
    start = NOW - timedelta(days=days)
    return [(start + timedelta(hours=h), float(f(h / 24))) for h in range(int(days * 24) + 1)]


def _near(a: datetime | None, b: datetime, hours: float = 2) -> bool:
    return a is not None and abs((a - b).total_seconds()) <= hours * 3600


def test_steady_growth() -> None:
    f = forecast(_hourly(10, lambda d: 50 + d), now=NOW)
    assert f.status == "filling"
    assert f.current == pytest.approx(60, abs=0.01)
    assert f.rate_per_day == pytest.approx(1.0, abs=0.001)
    assert _near(f.full_at, NOW + timedelta(days=40))
    assert f.full_low is not None and f.full_high is not None
    assert f.full_at is not None and f.full_low <= f.full_at <= f.full_high
    assert _near(f.full_low, NOW + timedelta(days=40), 12)
    assert _near(f.full_high, NOW + timedelta(days=40), 12)


def test_a_one_off_delete_is_ignored() -> None:
    f = forecast(_hourly(10, lambda d: 50 + d - (20 if d >= 5 else 0)), now=NOW)
    assert f.status == "filling"
    assert f.current == pytest.approx(40, abs=0.01)
    assert f.rate_per_day == pytest.approx(1.0, abs=0.01)
    assert _near(f.full_at, NOW + timedelta(days=60), 6)


@pytest.mark.parametrize("shape", [lambda d: 70.0, lambda d: 80 - 0.5 * d])
def test_flat_or_shrinking_is_not_filling(shape: Callable[[float], float]) -> None:
    f = forecast(_hourly(10, shape), now=NOW)
    assert f.status == "not filling"
    assert f.full_at is None and f.full_low is None and f.full_high is None


def test_noisy_growth_stays_close_and_inside_its_range() -> None:
    rng = random.Random(1)
    f = forecast(_hourly(20, lambda d: 20 + 2 * d + rng.uniform(-3, 3)), now=NOW)
    assert f.status == "filling"
    assert 1.8 <= f.rate_per_day <= 2.2
    assert f.full_low is not None and f.full_at is not None and f.full_high is not None
    assert f.full_low <= f.full_at <= f.full_high
    # 60 % now, 40 points to go at 2 %/day: about 20 days
    assert _near(f.full_at, NOW + timedelta(days=20), 48)


def test_too_little_data() -> None:
    f = forecast(_hourly(10, lambda d: 50 + d)[:3], now=NOW)
    assert f.status == "not enough data" and f.full_at is None


def test_capacity_must_be_positive() -> None:
    with pytest.raises(Invalid):
        forecast(_hourly(1, 1.0), now=NOW, capacity=0)
