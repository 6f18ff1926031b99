"""Acknowledged reports kept for a bounded window, so a restored server can be refilled.

An acknowledged report leaves the spool's queue for ``acked/`` (a rename: no copy, no fsync)
and stays there while it is younger than the keep window's age and the kept files fit its byte
cap; the oldest go first, with a log line. Every acknowledgement carries the server's
high-water mark for this host: the newest ``collected_at`` it held before the request. A mark
older than the newest report we had acknowledged means the server lost what came after it (a
restore of an older backup): the kept reports after the mark move to ``resend/``, a durable
queue (a restart of the agent resumes it) that the sender drains after the live reports, paced
by the server's ``Retry-After``. Once acknowledged again they return to ``acked/``. Files keep
their spool names (sequence, collection time in ms) and their private mode. docs/agent.md,
"Keeping acknowledged reports".
"""

from __future__ import annotations

import collections
import logging
import os
import re
import time
from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from statusdash.agent.spool import Entry

log = logging.getLogger("statusdash.agent.spool")


def first_batch(entries: Iterable[Entry], max_reports: int, max_bytes: int) -> list[Entry]:
    """The first of ``entries`` that fit in one batch (always at least one, if any)."""
    out: list[Entry] = []
    total = 0
    for e in entries:
        if out and (len(out) >= max_reports or total + e.size > max_bytes):
            break
        out.append(e)
        total += e.size
    return out


_NAME = re.compile(r"^(\d{12})-(\d{13})\.json$")
EVICTION_LOG_S = 3600.0  # one eviction line per bound at most this often (the first at once)


class Absent:
    """An acknowledgement without a mark: a server that predates it. Changes nothing."""


ABSENT = Absent()
Mark = int | None | Absent  # ms since the epoch; None: the server holds nothing for the host


def parse_mark(ack: object) -> Mark:
    """The ``high_water`` of an acknowledgement, in ms; ``ABSENT`` if missing or unreadable."""
    if not isinstance(ack, dict) or "high_water" not in ack:
        return ABSENT
    value = ack["high_water"]
    if value is None:
        return None
    if not isinstance(value, str):
        return ABSENT
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        return ABSENT
    if when.tzinfo is None:
        return ABSENT
    return int(when.timestamp() * 1000)


def after_mark(kept: Iterable[Entry], mark: int | None, top: int | None) -> list[Entry]:
    """The kept reports to send again: those after ``mark``, when ``mark`` is older than
    ``top`` (the newest one acknowledged before this answer); none otherwise.

    The re-send rule in one place: the agent and ``bench/restore.py``'s simulated agents use it.
    """
    if top is None or (mark is not None and mark >= top):
        return []
    return [e for e in kept if mark is None or e.ts_ms > mark]


class Keep:
    """The ``acked/`` and ``resend/`` folders of one spool, with their bounds."""

    def __init__(
        self,
        directory: Path,
        *,
        max_bytes: int,
        max_age_s: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.acked_dir = Path(directory) / "acked"
        self.resend_dir = Path(directory) / "resend"
        self.max_bytes = max_bytes
        self.max_age_s = max_age_s
        self._clock = clock
        self._acked: collections.deque[Entry] = collections.deque()
        self._resend: list[Entry] = []  # seq order
        self._bytes = 0
        self.top_ms: int | None = None  # newest collection time ever kept (this run or before)
        self.evicted_total = 0
        self._evicted_since: dict[str, int] = {}
        self._logged_at: dict[str, float] = {}

    @property
    def enabled(self) -> bool:
        return self.max_bytes > 0 and self.max_age_s > 0

    @property
    def kept(self) -> int:
        return len(self._acked) + len(self._resend)

    @property
    def resend_waiting(self) -> int:
        return len(self._resend)

    @property
    def size_bytes(self) -> int:
        return self._bytes

    def open(self) -> None:
        """Create the folders (0700) and index what an earlier run kept."""
        from statusdash.agent.spool import Entry

        if self.enabled:
            for folder in (self.acked_dir, self.resend_dir):
                folder.mkdir(mode=0o700, exist_ok=True)
        found: dict[Path, list[Entry]] = {}
        for folder in (self.acked_dir, self.resend_dir):
            entries = []
            for name in os.listdir(folder) if folder.is_dir() else []:
                m = _NAME.match(name)
                if m is None:
                    continue
                size = (folder / name).stat().st_size
                entries.append(Entry(int(m.group(1)), int(m.group(2)), size))
            found[folder] = sorted(entries, key=lambda e: e.seq)
        self._acked = collections.deque(found[self.acked_dir])
        self._resend = found[self.resend_dir]
        self._bytes = sum(e.size for e in (*self._acked, *self._resend))
        self.top_ms = max((e.ts_ms for e in (*self._acked, *self._resend)), default=None)
        if not self.enabled:
            self._evict(list(self._acked) + self._resend, "as keeping is off")
            self._acked.clear()
            self._resend = []
            self._bytes = 0
        elif self._resend:
            log.info("spool: %d kept report(s) still to send again", len(self._resend))
        self.enforce_bounds()

    # --- the acknowledged ----------------------------------------------------------------------
    def add(self, spool_dir: Path, entries: Iterable[Entry]) -> None:
        """Keep acknowledged reports (moved from the spool's queue); others are removed."""
        for e in entries:
            src = spool_dir / e.name
            if e.data is not None:  # held in memory while the disk refused writes: not kept
                continue
            if not self.enabled:
                src.unlink(missing_ok=True)
                continue
            try:
                os.replace(src, self.acked_dir / e.name)
            except FileNotFoundError:
                continue
            except OSError as exc:
                log.warning("spool: cannot keep acknowledged report %s: %s", e.name, exc)
                src.unlink(missing_ok=True)
                continue
            self._acked.append(e)
            self._bytes += e.size
            self.top_ms = e.ts_ms if self.top_ms is None else max(self.top_ms, e.ts_ms)
        self.enforce_bounds()

    def observe(self, mark: Mark) -> int:
        """Compare the server's mark with what we kept; queue the gap again. Returns its size."""
        if isinstance(mark, Absent) or not self.enabled:
            return 0
        self.enforce_bounds()  # after a long outage: what aged out is not sent again
        gap = after_mark(self._acked, mark, self.top_ms)
        if not gap:
            return 0
        moved: list[Entry] = []
        for e in gap:
            try:
                os.replace(self.acked_dir / e.name, self.resend_dir / e.name)
            except OSError:
                continue
            moved.append(e)
        chosen = {e.seq for e in moved}
        self._acked = collections.deque(e for e in self._acked if e.seq not in chosen)
        self._resend = sorted([*self._resend, *moved], key=lambda e: e.seq)
        held = "nothing" if mark is None else f"reports up to {_iso(mark)}"
        log.warning(
            "spool: the server holds %s for this host, but we had reports acknowledged up to %s"
            " (a restore of an older backup?): sending %d kept report(s) again, after the live"
            " ones",
            held,
            _iso(self.top_ms or 0),
            len(moved),
        )
        return len(moved)

    # --- the queue to send again ---------------------------------------------------------------
    def oldest(self, max_reports: int, max_bytes: int) -> list[Entry]:
        """The oldest reports to send again that fit in one batch (at least one, if any)."""
        return first_batch(self._resend, max_reports, max_bytes)

    def read(self, entry: Entry) -> bytes:
        return (self.resend_dir / entry.name).read_bytes()

    def resent(self, entries: Iterable[Entry]) -> None:
        """Reports the server acknowledged again: kept, no longer queued."""
        done = {e.seq: e for e in entries}
        self._resend = [e for e in self._resend if e.seq not in done]
        back: list[Entry] = []
        for e in done.values():
            try:
                os.replace(self.resend_dir / e.name, self.acked_dir / e.name)
            except OSError:
                self._bytes -= e.size
                continue
            back.append(e)
        self._acked = collections.deque(sorted([*self._acked, *back], key=lambda e: e.seq))

    def drop(self, entries: Iterable[Entry], reason: str) -> None:
        """Forget reports to send again that cannot be sent (refused, or removed by someone)."""
        gone = {e.seq for e in entries}
        lost = [e for e in self._resend if e.seq in gone]
        self._resend = [e for e in self._resend if e.seq not in gone]
        for e in lost:
            self._bytes -= e.size
            (self.resend_dir / e.name).unlink(missing_ok=True)
        if lost:
            log.warning("spool: %d kept report(s) not sent again: %s", len(lost), reason)

    # --- bounds --------------------------------------------------------------------------------
    def enforce_bounds(self) -> int:
        """Evict the oldest kept reports past the age or byte cap; returns how many went."""
        horizon_ms = (self._clock() - self.max_age_s) * 1000
        aged = [e for e in self._resend if e.ts_ms < horizon_ms]
        queued = [e for e in self._resend if e.ts_ms >= horizon_ms]
        while self._acked and self._acked[0].ts_ms < horizon_ms:
            aged.append(self._acked.popleft())
        left = self._bytes - sum(e.size for e in aged)
        spaced: list[Entry] = []
        while left > self.max_bytes and (self._acked or queued):
            # a report that is only kept goes before one still to send
            e = self._acked.popleft() if self._acked else queued.pop(0)
            spaced.append(e)
            left -= e.size
        self._resend = queued
        self._evict(aged, f"over the age cap ({self.max_age_s / 3600:g} h)")
        self._evict(spaced, f"over the size cap ({self.max_bytes / (1024 * 1024):g} MB)")
        return len(aged) + len(spaced)

    def _evict(self, gone: list[Entry], bound: str) -> None:
        if not gone:
            return
        for e in gone:
            self._bytes -= e.size
            for folder in (self.acked_dir, self.resend_dir):
                (folder / e.name).unlink(missing_ok=True)
        self.evicted_total += len(gone)
        since = self._evicted_since.get(bound, 0) + len(gone)
        now = time.monotonic()
        last = self._logged_at.get(bound)
        if last is not None and now - last < EVICTION_LOG_S:
            self._evicted_since[bound] = since
            return
        self._evicted_since[bound] = 0
        self._logged_at[bound] = now
        log.info(
            "spool: evicted %d acknowledged report(s) %s, the oldest collected %s;"
            " %d kept (%d bytes), %d evicted since start",
            since,
            bound,
            _iso(min(e.ts_ms for e in gone)),
            self.kept,
            self._bytes,
            self.evicted_total,
        )


def _iso(ts_ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts_ms / 1000))
