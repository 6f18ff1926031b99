"""The durable spool: every report is on disk before it is sent, and leaves only once acked.

One file per report, written to a temporary name and renamed into place (atomic: a crash or
``kill -9`` leaves the whole report or a ``.tmp`` that the next start removes). The page cache
survives a killed process; against power loss the file and the directory are fsynced, at once
with ``sync=True``, or (the agent's way) only for reports that stay after a delivery attempt:
an acknowledged report never costs an fsync, and a report whose host lost power mid-push could
not have been more useful anyway. That deferred fsync is why the spool keeps its own writer
instead of ``statusdash.fsutil.atomic_write``, which fsyncs every file at once: a different
durability, on purpose. A file left empty by a power loss is set aside at the next start. We
chose files over SQLite because a damaged file costs one report where a damaged database costs
the spool, operators can inspect and clear it with ``ls`` and ``rm``, and the daemon stays
smaller. File names carry a sequence number (delivery order, whatever the
clock does) and the collection time in milliseconds (age bound without opening the file).
"""

from __future__ import annotations

import collections
import fcntl
import json
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Concatenate, ParamSpec, TypeVar

from statusdash.agent.keep import ABSENT, Keep, Mark, first_batch

log = logging.getLogger("statusdash.agent.spool")
P = ParamSpec("P")
R = TypeVar("R")

_NAME = re.compile(r"^(\d{12})-(\d{13})\.json$")
KEEP_REJECTED = 100
MEMORY_ENTRIES = 360  # reports kept in memory while the disk refuses writes (1 h at 10 s)


def _locked(method: Callable[Concatenate[Spool, P], R]) -> Callable[Concatenate[Spool, P], R]:
    """Run ``method`` under the spool's lock."""

    def wrapper(self: Spool, /, *args: P.args, **kwargs: P.kwargs) -> R:
        with self._mutex:
            return method(self, *args, **kwargs)

    wrapper.__doc__ = method.__doc__
    return wrapper


class SpoolError(Exception):
    """The spool directory cannot be used."""


@dataclass(frozen=True)
class Entry:
    seq: int
    ts_ms: int  # collection time, ms since the epoch
    size: int
    data: bytes | None = field(default=None, compare=False, repr=False)  # not on disk

    @property
    def name(self) -> str:
        return f"{self.seq:012d}-{self.ts_ms:013d}.json"


class Spool:
    """Reports waiting for the server's acknowledgement, oldest first, bounded by size and age."""

    def __init__(
        self,
        directory: Path,
        *,
        max_bytes: int = 100 * 1024 * 1024,
        max_age_s: float = 7 * 86400,
        keep_max_bytes: int = 0,
        keep_max_age_s: float = 0.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.directory = Path(directory)
        # acknowledged reports kept for a restored server (agent/keep.py); 0: none kept
        self.keep = Keep(
            self.directory, max_bytes=keep_max_bytes, max_age_s=keep_max_age_s, clock=clock
        )
        self.max_bytes = max_bytes
        self.max_age_s = max_age_s
        self._clock = clock
        self._entries: collections.deque[Entry] = collections.deque()
        self._bytes = 0
        self._next_seq = 1
        self._dir_fd: int | None = None
        self._lock_fd: int | None = None
        self.dropped_total = 0
        self.rejected_total = 0
        self._write_error = False
        self._unsynced: set[int] = set()
        # the agent's loop appends while its push thread reads, acks and sets aside
        self._mutex = threading.RLock()

    # --- lifecycle -----------------------------------------------------------------------------
    def open(self) -> Spool:
        """Create or reopen the directory, take its lock, and index what is waiting."""
        try:
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            self._lock()
            self._dir_fd = os.open(self.directory, os.O_RDONLY | os.O_DIRECTORY)
            self._scan()
            self.keep.open()
        except OSError as exc:
            self.close()
            raise SpoolError(f"cannot use the spool directory {self.directory}: {exc}") from exc
        self.enforce_bounds()
        return self

    @_locked
    def close(self) -> None:
        self.sync()
        for fd in (self._dir_fd, self._lock_fd):
            if fd is not None:
                os.close(fd)  # closing the lock file releases the flock
        self._dir_fd = self._lock_fd = None

    def __enter__(self) -> Spool:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _lock(self) -> None:
        path = self.directory / ".lock"
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise SpoolError(
                f"the spool directory {self.directory} is in use by another agent (pid {holder});"
                " give each agent its own --spool-dir"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._lock_fd = fd

    def _scan(self) -> None:
        entries: list[Entry] = []
        torn = 0
        for name in os.listdir(self.directory):
            path = self.directory / name
            if name.endswith(".tmp"):  # a write cut short by a crash: never acknowledged
                path.unlink(missing_ok=True)
                torn += 1
                continue
            m = _NAME.match(name)
            if m is None:
                continue
            data = path.read_bytes()
            if not _looks_like_report(data):
                self._set_aside(name, "is not a complete report")
                continue
            entries.append(Entry(int(m.group(1)), int(m.group(2)), len(data)))
        if torn:
            log.warning("spool: removed %d partly written report file(s) left by a crash", torn)
        entries.sort(key=lambda e: e.seq)
        self._entries = collections.deque(entries)
        self._bytes = sum(e.size for e in entries)
        self._next_seq = entries[-1].seq + 1 if entries else 1
        if entries:
            log.info("spool: %d report(s) waiting from an earlier run", len(entries))

    # --- queue ---------------------------------------------------------------------------------
    @property
    def pending(self) -> int:
        return len(self._entries)  # one read of a deque: atomic

    @property
    def size_bytes(self) -> int:
        return self._bytes

    @_locked
    def entries(self) -> list[Entry]:
        return list(self._entries)

    @_locked
    def append(self, payload: bytes, collected_ts: float, *, sync: bool = True) -> Entry:
        """Write one report (temp file, fsync, rename, directory fsync; the fsyncs deferred to
        :meth:`sync` when ``sync`` is false)."""
        if self._dir_fd is None:
            raise SpoolError("the spool is not open")
        entry = Entry(self._next_seq, int(collected_ts * 1000), len(payload))
        try:
            self._write(entry, payload, self._dir_fd, sync)
            if not sync:
                self._unsynced.add(entry.seq)
            if self._write_error:
                log.warning("spool: writing to %s works again", self.directory)
                self._write_error = False
        except OSError as exc:
            # A full disk is when monitoring matters most: keep the report in memory instead.
            if not self._write_error:
                log.error(
                    "spool: cannot write to %s (%s); keeping reports in memory", self.directory, exc
                )
                self._write_error = True
            entry = Entry(entry.seq, entry.ts_ms, entry.size, payload)
            in_memory = [e for e in self._entries if e.data is not None]
            gone = in_memory[: max(0, len(in_memory) + 1 - MEMORY_ENTRIES)]
            for e in gone:
                self._remove(e)
            self._dropped(gone, f"bound of {MEMORY_ENTRIES} reports kept in memory")
        self._next_seq += 1
        self._entries.append(entry)
        self._bytes += entry.size
        self.enforce_bounds()
        return entry

    @staticmethod
    def _write(entry: Entry, payload: bytes, dir_fd: int, sync: bool) -> None:
        tmp = f".{entry.seq:012d}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600, dir_fd=dir_fd)
        try:
            view = memoryview(payload)
            while view:
                view = view[os.write(fd, view) :]
            if sync:
                os.fsync(fd)
        except OSError:
            os.close(fd)
            os.unlink(tmp, dir_fd=dir_fd)
            raise
        os.close(fd)
        os.rename(tmp, entry.name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        if sync:
            os.fsync(dir_fd)

    @_locked
    def sync(self) -> None:
        """Make the reports written with ``sync=False`` that still wait durable (fsync)."""
        if self._dir_fd is None or not self._unsynced:
            return
        waiting = {e.seq: e for e in self._entries if e.seq in self._unsynced and e.data is None}
        self._unsynced.clear()
        try:
            for e in waiting.values():
                fd = os.open(e.name, os.O_RDONLY, dir_fd=self._dir_fd)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
            os.fsync(self._dir_fd)
        except OSError as exc:
            log.warning("spool: cannot fsync %s: %s", self.directory, exc)

    @_locked
    def oldest(self, max_reports: int, max_bytes: int) -> list[Entry]:
        """The oldest entries that fit in one batch (always at least one, if any wait)."""
        return first_batch(self._entries, max_reports, max_bytes)

    def read(self, entry: Entry) -> bytes:
        if entry.data is not None:
            return entry.data
        return (self.directory / entry.name).read_bytes()

    @_locked
    def ack(self, entries: Iterable[Entry], mark: Mark = ABSENT) -> int:
        """Take acknowledged reports off the queue (into the keep window, if it is on); a crash
        before the move only means a duplicate. ``mark``: the answer's high-water mark; returns
        how many kept reports it queued to be sent again (agent/keep.py)."""
        done = {e.seq for e in entries}
        self._unsynced -= done
        gone: list[Entry] = []
        while self._entries and self._entries[0].seq in done:  # the usual case: the head
            gone.append(self._entries.popleft())
            self._bytes -= gone[-1].size
        for e in [e for e in self._entries if e.seq in done] if len(gone) < len(done) else []:
            self._remove(e)
            gone.append(e)
        queued = self.keep.observe(mark)  # against what was kept before these
        self.keep.add(self.directory, sorted(gone, key=lambda e: e.seq))
        return queued

    @_locked
    def drop_missing(self, entries: Iterable[Entry]) -> int:
        """Forget entries whose file someone removed; returns how many."""
        gone = [e for e in entries if e.data is None and not (self.directory / e.name).exists()]
        for e in gone:
            self._remove(e)
            self._unsynced.discard(e.seq)
        if gone:
            log.warning("spool: %d waiting report file(s) were removed by someone else", len(gone))
        return len(gone)

    @_locked
    def reject(self, entry: Entry, reason: str) -> None:
        """Set aside a report the server will never take, so it stops blocking the queue."""
        self._remove(entry)
        self.rejected_total += 1
        if entry.data is None:
            self._set_aside(entry.name, reason)
        else:
            log.warning("spool: report %s %s; dropped", entry.name, reason)

    def _remove(self, entry: Entry) -> None:
        try:
            self._entries.remove(entry)
            self._bytes -= entry.size
        except ValueError:
            pass

    def _set_aside(self, name: str, reason: str) -> None:
        rejected = self.directory / "rejected"
        rejected.mkdir(mode=0o700, exist_ok=True)
        try:
            os.replace(self.directory / name, rejected / name)
        except FileNotFoundError:
            return
        log.warning("spool: report %s %s; moved to %s", name, reason, rejected)
        kept = sorted(rejected.iterdir())
        for old in kept[:-KEEP_REJECTED]:
            old.unlink(missing_ok=True)

    @_locked
    def enforce_bounds(self) -> int:
        """Drop the oldest reports beyond the size or age bound; returns how many went."""
        horizon_ms = (self._clock() - self.max_age_s) * 1000
        aged: list[Entry] = []
        spaced: list[Entry] = []
        while self._entries and (
            self._entries[0].ts_ms < horizon_ms
            or (self._bytes > self.max_bytes and len(self._entries) > 1)
        ):
            e = self._entries.popleft()
            self._bytes -= e.size
            self._unsynced.discard(e.seq)
            if e.data is None:
                (self.directory / e.name).unlink(missing_ok=True)
            (aged if e.ts_ms < horizon_ms else spaced).append(e)
        self._dropped(aged, f"age bound ({self.max_age_s / 3600:g} h)")
        self._dropped(spaced, f"size bound ({self.max_bytes / (1024 * 1024):g} MB)")
        return len(aged) + len(spaced)

    def _dropped(self, gone: list[Entry], bound: str) -> None:
        """Count and log reports evicted for ``bound``: how many, and when they were taken."""
        if not gone:
            return
        self.dropped_total += len(gone)
        log.warning(
            "spool: dropped %d oldest report(s) over the %s, collected %s to %s;"
            " %d dropped since start",
            len(gone),
            bound,
            _iso(gone[0].ts_ms),
            _iso(gone[-1].ts_ms),
            self.dropped_total,
        )


def _iso(ts_ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts_ms / 1000))


def _looks_like_report(data: bytes) -> bool:
    try:
        obj = json.loads(data)
    except ValueError:
        return False
    return isinstance(obj, dict) and "report_id" in obj and "host" in obj
