"""The TUI's own formatting: ages, markers, sparklines, thresholds, chart axes.

Sizes, rates and percentages come from ``statusdash.units`` (shared with the CLI); this module
keeps what only the TUI needs, free of Textual so it can be tested without it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from statusdash import units
from statusdash.durations import humanize
from statusdash.schema import HostStatus, HostSummary
from statusdash.wire import HealthStatus

SPARK = "▁▂▃▄▅▆▇█"
BLOCKS = " ▁▂▃▄▅▆▇█"

MARK_UP = "●"
MARK_STALE = "◐"
MARK_DOWN = "○"
MARK_ALERT = "▲"
MARK_OVER = "!"
MARK_HEALTHY = "●"
MARK_UNHEALTHY = "✖"
MARK_UNKNOWN = "?"


@dataclass(frozen=True)
class Thresholds:
    """Alert thresholds in percent; a value at or above one is shown with ``!``."""

    cpu: float = 90.0
    memory: float = 85.0
    disk: float = 90.0
    warn_margin: float = 10.0


def level(value: float | None, threshold: float, margin: float = 10.0) -> str:
    """``crit`` at or above the threshold, ``warn`` within ``margin`` below it, else ``ok``."""
    if value is None:
        return "none"
    if value >= threshold:
        return "crit"
    if value >= threshold - margin:
        return "warn"
    return "ok"


def rate_pair(down: float | None, up: float | None) -> str:
    """Two rates around a slash that stays in one column: `` 88K/91K  ``, ``1.2M/340K``."""
    return f"{units.size(down):>4}/{units.size(up):<4}"


def duration(seconds: float | None) -> str:
    """A short age or uptime: ``34s``, ``5m``, ``2h``, ``41d``; ``-`` when unknown.

    Hours up to two days (a host rebooted yesterday reads ``30h``, not ``1d``); else ``humanize``.
    """
    if seconds is not None and 86400 <= seconds < 2 * 86400:
        return f"{int(seconds // 3600)}h"
    return humanize(seconds)


def load(value: float | None) -> str:
    """A load average with two decimals, fewer when large (``units.load``)."""
    return units.load(value)


def sparkline(values: Sequence[float | None], width: int, top: float = 100.0) -> str:
    """The last ``width`` values as blocks scaled to ``top``, oldest first, padded right.

    Left-aligned so the line starts right after the number it belongs to, however few values a
    new host has so far.
    """
    if width <= 0:
        return ""
    tail = list(values)[-width:]
    out = []
    for v in tail:
        if v is None:
            out.append(" ")
            continue
        frac = min(max(v / top, 0.0), 1.0) if top > 0 else 0.0
        out.append(SPARK[min(int(frac * len(SPARK)), len(SPARK) - 1)])
    return "".join(out).ljust(width)


def host_marker(h: HostSummary) -> str:
    """The status marker of a host row: down, alert, stale or up (in that precedence)."""
    if h.status is HostStatus.down:
        return MARK_DOWN
    if h.alerts_active > 0:
        return MARK_ALERT
    if h.status is HostStatus.stale:
        return MARK_STALE
    return MARK_UP


def health_marker(status: HealthStatus | str) -> str:
    """The marker of a service health: healthy, unhealthy or unknown."""
    if status == HealthStatus.healthy:
        return MARK_HEALTHY
    if status == HealthStatus.unhealthy:
        return MARK_UNHEALTHY
    return MARK_UNKNOWN


def nice_ceiling(value: float) -> float:
    """The smallest 1-2-5 step at or above ``value`` (for chart axes); 1 for zero or less."""
    if value <= 0 or not math.isfinite(value):
        return 1.0
    exp = math.floor(math.log10(value))
    for step in (1.0, 2.0, 5.0, 10.0):
        candidate = step * 10.0**exp
        if candidate >= value * 0.999999:
            return candidate
    return 10.0 ** (exp + 1)  # pragma: no cover


def nice_ceiling_bytes(value: float) -> float:
    """A 1-2-5 step in the unit ``units.size`` would print (K, M, G are powers of 1024)."""
    unit = 1.0
    while value / unit >= 1000 and unit < units.BASE**5:
        unit *= units.BASE
    return nice_ceiling(value / unit) * unit


def resample(values: Sequence[float | None], width: int) -> list[float | None]:
    """``values`` squeezed or stretched to ``width`` columns (mean per column, gaps kept)."""
    n = len(values)
    if width <= 0 or n == 0:
        return [None] * max(width, 0)
    if n == width:
        return list(values)
    out: list[float | None] = []
    for col in range(width):
        lo = col * n // width
        hi = max(lo + 1, (col + 1) * n // width)
        chunk = [v for v in values[lo:hi] if v is not None]
        out.append(sum(chunk) / len(chunk) if chunk else None)
    return out


def host_up(status: HostStatus, uptime_s: float | None) -> str:
    """The UP cell: the uptime of a host that reports, ``down`` for one that stopped (its
    last uptime would read as if it were still running; SEEN says how long ago it spoke)."""
    return "down" if status is HostStatus.down else duration(uptime_s)


def since_text(seconds: float | None) -> str:
    """``3m ago`` (or ``-``): an age written as one."""
    return "-" if seconds is None else f"{duration(seconds)} ago"
