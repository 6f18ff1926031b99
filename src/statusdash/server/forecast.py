"""When does a disk fill? A pure, robust forecast over a usage series (issue 14, item 1).

Meant for the 1 h tier of ``disk.mount.percent{mount}`` (hourly averages over up to 30 days):

1. One-off deletes are taken out: a drop far larger than the series' usual step (more than
   ``DROP_STEPS`` times the median absolute step, and at least ``MIN_DROP`` points) is treated
   as a level shift, and the samples after it are lifted by it (less one usual step) for the
   fit; the current level stays where the delete left it.
2. The growth rate is the Theil-Sen slope (the median of the slopes between every pair of
   samples), which a few spikes cannot move; its range is Sen's 95 % confidence interval (the
   ranks from Kendall's variance).
3. A rate at or below ``FLAT_PER_DAY`` points a day is "not filling", and so is a date past
   ``horizon_days``; fewer than ``min_points`` samples is "not enough data".
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import pairwise
from statistics import median
from typing import Literal

from statusdash.errors import Invalid

DAY_S = 86400.0
DROP_STEPS = 10.0
MIN_DROP = 2.0
FLAT_PER_DAY = 0.01
MAX_FIT_POINTS = 240  # the pairwise slopes are O(n^2): 240 samples are 28,680 pairs
Z95 = 1.96

Status = Literal["filling", "not filling", "not enough data"]


@dataclass(frozen=True)
class Forecast:
    status: Status
    current: float | None = None
    rate_per_day: float = 0.0
    full_at: datetime | None = None
    full_low: datetime | None = None  # the soonest likely date (upper rate)
    full_high: datetime | None = None  # the latest likely date (lower rate); None: open-ended


def _without_deletes(values: Sequence[float]) -> tuple[list[float], float]:
    """The values with each one-off drop added back to what follows it, and the total drop."""
    steps = [b - a for a, b in pairwise(values)]
    if not steps:
        return list(values), 0.0
    usual = median(abs(s) for s in steps)
    typical = median(steps)  # the growth of one step, kept across the delete
    limit = max(MIN_DROP, DROP_STEPS * usual)
    out = [values[0]]
    lifted = 0.0
    for v, step in zip(values[1:], steps, strict=True):
        if step < -limit:
            lifted -= step - typical
        out.append(v + lifted)
    return out, lifted


def _thin(n: int, most: int) -> list[int]:
    if n <= most:
        return list(range(n))
    return sorted({round(i * (n - 1) / (most - 1)) for i in range(most)})


def forecast(
    samples: Sequence[tuple[datetime, float]],
    *,
    now: datetime,
    capacity: float = 100.0,
    min_points: int = 6,
    horizon_days: float = 3650.0,
) -> Forecast:
    """The forecast for ``samples`` (time, used) in time order, full at ``capacity``."""
    if not capacity > 0:
        raise Invalid("forecast: capacity must be positive")
    pts = [(t, v) for t, v in samples if math.isfinite(v)]
    if len(pts) < max(2, min_points):
        return Forecast("not enough data")
    times = [(t - now).total_seconds() / DAY_S for t, _ in pts]  # days, <= 0
    fitted, lifted = _without_deletes([v for _, v in pts])
    keep = _thin(len(pts), MAX_FIT_POINTS)
    xs = [times[i] for i in keep]
    ys = [fitted[i] for i in keep]
    slopes = sorted(
        (ys[j] - ys[i]) / (xs[j] - xs[i])
        for i in range(len(xs))
        for j in range(i + 1, len(xs))
        if xs[j] > xs[i]
    )
    if not slopes:
        return Forecast("not enough data")
    rate = median(slopes)
    current = median(y - rate * x for x, y in zip(xs, ys, strict=True)) - lifted
    n, pairs = len(xs), len(slopes)
    spread = Z95 * math.sqrt(n * (n - 1) * (2 * n + 5) / 18)
    lo_rank = max(0, math.floor((pairs - spread) / 2))
    hi_rank = min(pairs - 1, math.ceil((pairs + spread) / 2))
    rate_lo, rate_hi = slopes[lo_rank], slopes[hi_rank]
    if rate <= FLAT_PER_DAY:
        return Forecast("not filling", current, rate)

    def when(r: float) -> datetime | None:
        if r <= FLAT_PER_DAY:
            return None
        days = max(0.0, (capacity - current) / r)
        return now + timedelta(days=days) if days <= horizon_days else None

    full_at = when(rate)
    if full_at is None:
        return Forecast("not filling", current, rate)
    return Forecast("filling", current, rate, full_at, when(rate_hi) or full_at, when(rate_lo))
