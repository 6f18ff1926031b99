"""What the writer admits of a group: the duplicates it skips and the per-host ingest limit.

The limit: at most a few new reports per host per ``interval_s`` of ``collected_at``.

Windows are ``collected_at`` buckets of the report's ``interval_s`` (at least
``min_interval_s``, so a report cannot shrink its own window to nothing): a day of spool backlog
covers a day of buckets and passes, replays are duplicates and not counted, and a flood of new
report ids for the same moments is refused, so one agent cannot fill the disk. The writer thread
checks it against the rows already stored and the rows of its group. The count of each host's
newest window is kept in memory after every commit (``recent``: the writer thread is the only one
that inserts samples, so it stays exact), so a live report costs no query; an older window (spool
catch-up, replays) is counted with one primary-key range, outside the write transaction.
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from statusdash.wire import MetricsReport

# A window: host, its width in seconds, and the index of its collected_at bucket.
Window = tuple[str, float, int]
# A sample's key in ``samples``: host, collected_at (epoch s) and report_id, all as sent.
Key = tuple[str, float, bytes]
_LOOKUP_ROWS = 300  # keys per duplicate lookup: 900 bound parameters


@dataclass(frozen=True)
class IngestLimit:
    """At most ``per_interval`` new reports per host per window (``INGEST_*`` settings)."""

    per_interval: int
    min_interval_s: float


class RateLimited(RuntimeError):
    """A request that would store more reports in one window than its host's limit allows."""


@dataclass(frozen=True)
class Stored:
    """What the writer knows of stored rows: its connection, host ids, newest ts per host, and
    the stored count of each host's newest window (``recent``, kept by :func:`remember`)."""

    conn: sqlite3.Connection
    host_ids: dict[str, int]
    max_ts: dict[int, float]
    recent: dict[str, tuple[Window, int]]

    def existing(self, keys: list[Key]) -> set[Key]:
        """The keys already in ``samples``: one primary-key lookup each.

        Only keys that could be there are looked up: not those of hosts that have never
        reported, nor those newer than the host's newest stored sample (the usual case; a
        replay is never newer than what it replays).
        """
        ids, top = self.host_ids, self.max_ts
        names = {ids[h]: h for h, _, _ in keys if h in ids}
        params = [
            (ids[h], ts, rid)
            for h, ts, rid in keys
            if h in ids and ts <= top.get(ids[h], float("inf"))
        ]
        found: set[Key] = set()
        for i in range(0, len(params), _LOOKUP_ROWS):
            chunk = params[i : i + _LOOKUP_ROWS]
            marks = ",".join("(?, ?, ?)" for _ in chunk)
            # CROSS JOIN: the VALUES list drives; each key is one search of the primary key.
            q = (
                f"SELECT s.host_id, s.ts, s.report_id FROM (VALUES {marks}) AS v"  # noqa: S608
                " CROSS JOIN samples AS s ON s.host_id = v.column1 AND s.ts = v.column2"
                " AND s.report_id = v.column3"
            )
            flat = [x for key in chunk for x in key]
            found.update((names[h], ts, bytes(rid)) for h, ts, rid in self.conn.execute(q, flat))
        return found

    def count(self, window: Window) -> int:
        """Rows the host already has in ``window``."""
        host, width, index = window
        host_id = self.host_ids.get(host)
        start = index * width
        if host_id is None or start > self.max_ts.get(host_id, float("-inf")):
            return 0  # the usual case: a window newer than anything stored
        known = self.recent.get(host)
        if known is not None and known[0] == window:
            return known[1]  # the host's newest window: counted at the last commit
        (n,) = self.conn.execute(
            "SELECT count(*) FROM samples WHERE host_id = ? AND ts >= ? AND ts < ?",
            (host_id, start, start + width),
        ).fetchone()
        return int(n)

    def count_many(self, windows: Iterable[Window]) -> dict[Window, int]:
        """Rows already stored in each of ``windows``: one range query per host and width for
        the windows that need one (a catch-up batch spans hundreds of older windows), not one
        query each."""
        out: dict[Window, int] = {}
        need: dict[tuple[int, float], list[Window]] = {}
        for window in windows:
            host, width, index = window
            host_id = self.host_ids.get(host)
            known = self.recent.get(host)
            if host_id is None or index * width > self.max_ts.get(host_id, float("-inf")):
                out[window] = 0
            elif known is not None and known[0] == window:
                out[window] = known[1]
            else:
                need.setdefault((host_id, width), []).append(window)
        for (host_id, width), group in need.items():
            if len(group) == 1:
                out[group[0]] = self.count(group[0])
                continue
            for window in group:
                out[window] = 0
            lo = min(w[2] for w in group) * width
            hi = (max(w[2] for w in group) + 1) * width
            rows = self.conn.execute(
                "SELECT ts FROM samples WHERE host_id = ? AND ts >= ? AND ts < ?",
                (host_id, lo, hi),
            )
            host = group[0][0]
            for (ts,) in rows:
                window = (host, width, math.floor(ts / width))
                if window in out:
                    out[window] += 1
        return out


def over_limit(
    limit: IngestLimit | None,
    reports: Sequence[MetricsReport],
    keys: Sequence[Key],
    seen: set[Key],
    counts: dict[Window, int],
    stored: Stored,
) -> RateLimited | None:
    """The refusal if ``reports`` would pass the limit; else add their new ones to ``counts``.

    ``seen``: keys already stored (duplicates, not counted); ``counts``: the windows' rows so
    far, stored and admitted earlier in this group.
    """
    if limit is None:
        return None
    mine: dict[Window, int] = {}
    new: set[Key] = set()
    windows: list[Window] = []
    for r, key in zip(reports, keys, strict=True):
        if key in seen or key in new:
            continue
        new.add(key)
        width = max(r.interval_s, limit.min_interval_s)
        windows.append((r.host, width, math.floor(key[1] / width)))
    counts.update(stored.count_many(w for w in set(windows) if w not in counts))
    for window in windows:
        mine[window] = mine.get(window, 0) + 1
        if counts[window] + mine[window] > limit.per_interval:
            return RateLimited(
                f"host {window[0]} sent more than {limit.per_interval} new reports collected"
                f" within one interval of {window[1]:g} s (INGEST_MAX_REPORTS_PER_INTERVAL);"
                " replays are duplicates and not counted"
            )
    for window, n in mine.items():
        counts[window] += n
    return None


def remember(recent: dict[str, tuple[Window, int]], counts: dict[Window, int]) -> None:
    """After a commit: keep each host's newest window with its exact count.

    ``counts`` holds, for every window the group touched, its stored rows plus those just
    committed. Windows of one width never overlap; if a host's width changed, its windows can,
    and its entry is dropped (the next count is a query).
    """
    by_host: dict[str, list[Window]] = {}
    for window in counts:
        by_host.setdefault(window[0], []).append(window)
    for host, windows in by_host.items():
        known = recent.get(host)
        widths = {w[1] for w in windows} | ({known[0][1]} if known else set())
        if len(widths) > 1:
            recent.pop(host, None)
            continue
        newest = max(windows, key=lambda w: w[2])
        if known is None or newest[2] >= known[0][2]:
            recent[host] = (newest, counts[newest])


@dataclass
class RefillGate:
    """Refill batches in flight (``X-Statusdash-Refill: 1``: kept reports an agent sends again
    after a restore). Past ``RESTORE_REFILL_MAX_REQUESTS`` the route answers 503 with a
    Retry-After and the agent waits; live reports and spool catch-up never pass through it.
    Touched only from the event loop."""

    in_flight: int = 0
    refused: int = 0

    def enter(self, limit: int) -> bool:
        """Take a place (True) or count a refusal (False)."""
        if self.in_flight >= limit:
            self.refused += 1
            return False
        self.in_flight += 1
        return True

    def leave(self) -> None:
        self.in_flight -= 1
