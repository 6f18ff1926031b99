"""Counters to rates per second: a wrap or reset never yields a negative or absurd rate."""

from __future__ import annotations

import math

WRAP32 = 2**32
# Above these a "rate" is a glitch (a reset we misread, a clock jump), not traffic:
# 1 TB/s is ten times the fastest NIC or NVMe array a host of ours will see.
MAX_BYTES_S = 1e12
MAX_COUNT_S = 1e10


def counter_delta(prev: int, cur: int) -> int:
    """How far a monotonic counter moved, allowing for a 32-bit wrap or a reset to zero."""
    if cur >= prev:
        return cur - prev
    # It went backwards: a 32-bit counter that wrapped (it was in its upper half and is now
    # low), or a counter reset (driver reload, device re-created) that restarted from zero.
    if WRAP32 // 2 <= prev < WRAP32 and cur < WRAP32 // 2:
        return cur + WRAP32 - prev
    return cur


def rate(prev: int, cur: int, dt: float, ceiling: float = MAX_BYTES_S) -> float | None:
    """Per-second rate of a counter over ``dt`` seconds; ``None`` when it cannot be trusted."""
    if not dt > 0 or not math.isfinite(dt):
        return None
    r = counter_delta(prev, cur) / dt
    if r > ceiling or not math.isfinite(r):
        return None
    return r


def percent(part: float, whole: float) -> float:
    """``part`` as a percentage of ``whole``, clamped to 0-100 and rounded to 0.01."""
    if not whole > 0:
        return 0.0
    p = 100.0 * part / whole
    if not math.isfinite(p):
        return 0.0
    return round(min(100.0, max(0.0, p)), 2)
