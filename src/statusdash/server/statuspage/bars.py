"""The 90-day availability bars, from stored data only (docs/status-page.md: how a day counts).

A host group's day: the host-hours in which its hosts reported (a row in the 1-hour rollup
tier) over the host-hours they were expected to, each host counted from its first stored hour.
A service's day: of the hours in which a host running it reported, the time no ``service``
alert for it was firing. Only complete hours count; a day with no counted hour is no data.
Runs in the jobs' thread on a read connection, never per request.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from statusdash.server.statuspage.config import PageConfig

DAY_S = 86_400
HOUR_S = 3_600
DAYS = 90
UP_AT = 99.9  # a day at or above this percentage is drawn as up
DEGRADED_AT = 95.0  # ... at or above this as degraded, below it as down


@dataclass(frozen=True, slots=True)
class Day:
    """One UTC day of a bar: seconds with data and, of those, seconds up."""

    start: int  # epoch seconds, 00:00 UTC
    covered_s: float = 0.0
    up_s: float = 0.0

    @property
    def date(self) -> str:
        return datetime.fromtimestamp(self.start, UTC).date().isoformat()

    @property
    def percent(self) -> float | None:
        return None if self.covered_s <= 0 else 100.0 * self.up_s / self.covered_s

    @property
    def state(self) -> str:
        """``up``, ``degraded``, ``down`` or ``nodata``: how the day is drawn."""
        p = self.percent
        if p is None:
            return "nodata"
        return "up" if p >= UP_AT else "degraded" if p >= DEGRADED_AT else "down"


@dataclass(frozen=True, slots=True)
class Bar:
    days: tuple[Day, ...]

    @property
    def percent(self) -> float | None:
        """Availability over every counted second of the period; None if none was."""
        covered = sum(d.covered_s for d in self.days)
        return None if covered <= 0 else 100.0 * sum(d.up_s for d in self.days) / covered


@dataclass(frozen=True, slots=True)
class Bars:
    computed_at: float
    services: dict[str, Bar]  # by reported service name
    groups: dict[str, Bar]  # by group name


def day_starts(now: float) -> list[int]:
    """The starts of the 90 UTC days ending with today, oldest first."""
    today = int(now // DAY_S) * DAY_S
    return [today - (DAYS - 1 - i) * DAY_S for i in range(DAYS)]


def empty_bar(now: float) -> Bar:
    return Bar(tuple(Day(d) for d in day_starts(now)))


def _bar(starts: list[int], covered: dict[int, float], up: dict[int, float]) -> Bar:
    return Bar(tuple(Day(d, covered.get(d, 0.0), up.get(d, 0.0)) for d in starts))


def _hosts(conn: sqlite3.Connection) -> dict[str, int]:
    return {str(name): int(i) for i, name in conn.execute("SELECT id, name FROM hosts")}


def group_bars(conn: sqlite3.Connection, config: PageConfig, now: float) -> dict[str, Bar]:
    starts = day_starts(now)
    end = int(now // HOUR_S) * HOUR_S  # complete hours only: the current one may still fill
    hosts = _hosts(conn)
    first = {
        int(h): int(t) for h, t in conn.execute("SELECT host_id, min(t) FROM rollup_1h GROUP BY 1")
    }
    present: dict[tuple[int, int], int] = {}
    rows = conn.execute(
        "SELECT host_id, (t / ?) * ?, count(*) FROM rollup_1h WHERE t >= ? AND t < ? GROUP BY 1, 2",
        (DAY_S, DAY_S, starts[0], end),
    )
    for host_id, day, hours in rows:
        present[(int(host_id), int(day))] = int(hours)
    out: dict[str, Bar] = {}
    for group in config.groups:
        ids = [i for name, i in hosts.items() if group.matches(name) and i in first]
        covered: dict[int, float] = {}
        up: dict[int, float] = {}
        for d in starts:
            for i in ids:
                expected = min(d + DAY_S, end) - max(d, first[i])
                if expected > 0:
                    covered[d] = covered.get(d, 0.0) + expected
                    up[d] = up.get(d, 0.0) + present.get((i, d), 0) * HOUR_S
        out[group.name] = _bar(starts, covered, up)
    return out


def _merge(intervals: Iterable[tuple[float, float]]) -> list[tuple[float, float]]:
    merged: list[tuple[float, float]] = []
    for a, b in sorted(intervals):
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], b))
        elif b > a:
            merged.append((a, b))
    return merged


def _overlap(a: float, b: float, intervals: list[tuple[float, float]]) -> float:
    return sum(max(0.0, min(b, y) - max(a, x)) for x, y in intervals if x < b and y > a)


def service_names(conn: sqlite3.Connection, config: PageConfig) -> list[str]:
    if config.services is not None:
        return [s.name for s in config.services]
    return [str(n) for (n,) in conn.execute("SELECT DISTINCT name FROM service_health ORDER BY 1")]


def service_bar(
    conn: sqlite3.Connection, name: str, now: float, alerts_kept_s: float, hosts: dict[str, int]
) -> Bar:
    starts = day_starts(now)
    end = int(now // HOUR_S) * HOUR_S
    since = max(starts[0], int((now - alerts_kept_s) // HOUR_S + 1) * HOUR_S)  # alerts pruned
    ran_on = [
        str(h)
        for (h,) in conn.execute("SELECT DISTINCT host FROM service_health WHERE name = ?", (name,))
    ]
    ids = [hosts[h] for h in ran_on if h in hosts]
    covered: dict[int, float] = {}
    up: dict[int, float] = {}
    if not ids:
        return _bar(starts, covered, up)
    marks = ",".join("?" * len(ids))
    hours = [
        int(t)
        for (t,) in conn.execute(
            f"SELECT DISTINCT t FROM rollup_1h WHERE host_id IN ({marks}) AND t >= ? AND t < ?",  # noqa: S608
            (*ids, since, end),
        )
    ]
    down = _merge(
        (float(a), float(b) if b is not None else now)
        for a, b in conn.execute(
            "SELECT fired_at, resolved_at FROM alerts WHERE rule = 'service' AND subject = ?"
            " AND fired_at IS NOT NULL AND (resolved_at IS NULL OR resolved_at >= ?)",
            (name, since),
        )
    )
    for t in hours:
        d = t // DAY_S * DAY_S
        covered[d] = covered.get(d, 0.0) + HOUR_S
        up[d] = up.get(d, 0.0) + HOUR_S - _overlap(t, t + HOUR_S, down)
    return _bar(starts, covered, up)


def compute(conn: sqlite3.Connection, config: PageConfig, now: float, alerts_kept_s: float) -> Bars:
    """Every bar the page shows, as of ``now`` (epoch seconds)."""
    hosts = _hosts(conn)
    services = {
        name: service_bar(conn, name, now, alerts_kept_s, hosts)
        for name in service_names(conn, config)
    }
    return Bars(computed_at=now, services=services, groups=group_bars(conn, config, now))
