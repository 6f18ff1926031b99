"""The storage service: every write goes through one writer thread that group-commits.

Concurrent requests put their reports on a queue and await a future; the writer takes everything
queued, de-duplicates on the key of ``samples`` (host, ``collected_at``, ``report_id``: a replay
has all three), inserts in one transaction and only then resolves the futures, so an
acknowledgement always means "committed". After each commit the in-memory cache of
each host's latest report is updated on the event loop and the commit listeners are called.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

from statusdash import catalog, wire
from statusdash.schema import IngestAck
from statusdash.server.admission import (
    IngestLimit,
    Key,
    RateLimited,
    RefillGate,
    Stored,
    Window,
    over_limit,
    remember,
)
from statusdash.server.cache import HostState, LatestCache
from statusdash.server.db import connect, ensure_schema
from statusdash.server.jobs import remove_host_rows
from statusdash.server.raw import insert_rows, next_id
from statusdash.server.tsdb import head
from statusdash.wire import MetricsReport

log = logging.getLogger(__name__)

SMALL_JOB = 16  # reports; a request this small commits ahead of the batches queued with it
MAX_GROUP_REPORTS = 5000
# The host row (last seen, newest report as JSON, for the cache rebuild at start) is rewritten at
# most this often per host, and at shutdown. Rewriting a ~1.5 KB row for every report made the
# WAL ~40x larger than the samples themselves and was the largest cost of a commit. The samples
# are committed before every acknowledgement; only this snapshot can lag after a crash.
PERSIST_S = 10.0
CommitListener = Callable[[list[HostState]], None]


class StorageClosed(RuntimeError):
    """The storage service is shutting down and takes no more writes."""


class WriteFailed(RuntimeError):
    """One request's reports could not be stored; the other requests of its group were.

    ``transient``: the database refused for a reason of its own (locked, full, I/O): retry
    later; otherwise something in these reports is unstorable and a retry fails the same way.
    """

    def __init__(self, exc: BaseException) -> None:
        self.transient = isinstance(exc, sqlite3.OperationalError)
        what = "the database is unavailable" if self.transient else "the reports cannot be stored"
        super().__init__(f"{what} ({type(exc).__name__}: {exc})")


@dataclass
class _Job:
    reports: Sequence[MetricsReport]
    received: float
    future: asyncio.Future[IngestAck]
    limit: IngestLimit | None = None
    keys: list[Key] = field(default_factory=list)
    values: list[list[float | None]] = field(default_factory=list)
    labelled: list[list[tuple[head.Key, int]]] = field(default_factory=list)


@dataclass
class _Call:  # work for the writer thread between two commits: ``fn(conn)``
    fn: Callable[[sqlite3.Connection], object]
    future: asyncio.Future[object]


@dataclass
class _Group:
    jobs: list[_Job]
    acks: list[IngestAck] = field(default_factory=list)
    hosts: dict[str, HostState] = field(default_factory=dict)


class Storage:
    """Owns the writer connection and thread; ``ingest`` is the only write path for reports."""

    def __init__(
        self, db_path: Path, synchronous: str = "FULL", max_series_per_host: int = 2000
    ) -> None:
        self.db_path = db_path
        self.series = head.Registry(max_series_per_host)  # labelled series ids (tsdb/head.py)
        self._seen_written = 0.0
        self.synchronous = synchronous
        self.cache = LatestCache()
        self.listeners: list[CommitListener] = []
        self._queue: queue.SimpleQueue[_Job | _Call | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._conn: sqlite3.Connection | None = None
        self._host_ids: dict[str, int] = {}
        # Newest collected_at stored per host id: a key newer than it cannot be a duplicate.
        self._max_ts: dict[int, float] = {}
        self._recent: dict[str, tuple[Window, int]] = {}  # admission: newest window per host
        self._persisted: dict[str, float] = {}  # host -> monotonic time its row was written
        self._dirty: dict[str, tuple[MetricsReport, float]] = {}  # newer than its row
        self._dirty_scan = 0.0
        self.persist_s = PERSIST_S
        self._closed = False
        self.commits = 0
        self.refused: dict[str, int] = {}  # host -> reports refused by the ingest limit
        self.refill_gate = RefillGate()  # refills after a restore (routes/ingest.py)
        self.accepted = self.duplicates = 0  # reports stored / found stored already, so far
        self.commit_observer: Callable[[float], None] | None = None  # seconds per commit

    # --- lifecycle -------------------------------------------------------------------------------
    def open(self) -> None:
        """Create the schema, rebuild the cache from the database and start the writer."""
        ensure_schema(self.db_path)
        self._conn = connect(self.db_path, self.synchronous)
        self.series.load(self._conn)
        rows = self._conn.execute(
            "SELECT id, name, last_seen, interval_s, latest, removed_at FROM hosts"
        ).fetchall()
        for host_id, name, last_seen, interval_s, latest, removed_at in rows:
            self._host_ids[name] = host_id
            (top,) = self._conn.execute(
                "SELECT max(ts) FROM samples WHERE host_id = ?", (host_id,)
            ).fetchone()
            if top is not None:
                self._max_ts[host_id] = float(top)
            if removed_at is not None:  # out of the fleet until it reports again
                continue
            try:
                report = wire.decode_report(latest, now=datetime.now(UTC), max_age=None)
            except wire.WireError:
                log.warning("host %s: stored latest report no longer validates; skipped", name)
                continue
            self.cache.put(HostState(name, report, _dt(last_seen), interval_s))
        self._loop = asyncio.get_running_loop()
        self._thread = threading.Thread(target=self._run, name="storage-writer", daemon=True)
        self._thread.start()

    async def close(self) -> None:
        """Finish every queued write, then stop the writer."""
        if self._closed:
            return
        self._closed = True
        self._queue.put(None)
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join)
        if self._conn is not None:
            self._conn.close()

    def newest(self, name: str) -> float | None:
        """The newest ``collected_at`` stored for a host (epoch s; None if none): from memory,
        rebuilt from the samples at start, so it is right after a restore too."""
        host_id = self._host_ids.get(name)
        return None if host_id is None else self._max_ts.get(host_id)

    def queue_depth(self) -> int:
        """Requests waiting for the writer (not counting the group it is writing)."""
        return self._queue.qsize()

    def host_id(self, name: str) -> int:
        """The database id of a host that has reported (KeyError otherwise)."""
        return self._host_ids[name]

    # --- the write path --------------------------------------------------------------------------
    async def ingest(
        self, reports: Sequence[MetricsReport], limit: IngestLimit | None = None
    ) -> IngestAck:
        """Store reports (oldest first); resolves once they are committed."""
        if self._closed or self._loop is None:
            raise StorageClosed("the server is shutting down")
        fut: asyncio.Future[IngestAck] = self._loop.create_future()
        self._queue.put(_Job(reports, time.time(), fut, limit))
        # Shield: a client that goes away must not cancel a write that is already queued.
        return await asyncio.shield(fut)

    def _run(self) -> None:
        stop = False
        while not stop:
            try:
                job = self._queue.get(timeout=self.persist_s if self._dirty else None)
            except queue.Empty:
                self._flush_hosts()
                continue
            if job is None:
                break
            if isinstance(job, _Call):
                self._run_call(job)
                continue
            jobs, n, call = [job], len(job.reports), None
            while n < MAX_GROUP_REPORTS:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    stop = True
                    break
                if isinstance(nxt, _Call):  # after what was queued before it
                    call = nxt
                    break
                jobs.append(nxt)
                n += len(nxt.reports)
            ready = [j for j in jobs if self._prepare(j)]
            # Small requests (live reports) commit first, in their own transaction: they must
            # not wait for the fsync of a backlog batch of thousands of rows queued with them.
            small = [j for j in ready if len(j.reports) <= SMALL_JOB]
            self._write(_Group(small))
            self._write(_Group([j for j in ready if len(j.reports) > SMALL_JOB]))
            if call is not None:
                self._run_call(call)
        self._flush_hosts()

    def _prepare(self, job: _Job) -> bool:
        """Compute a job's keys and series values before the shared transaction.

        A job whose values do not convert fails alone (False), and never joins the group.
        """
        try:
            job.keys = [
                (r.host, r.collected_at.timestamp(), r.report_id.bytes) for r in job.reports
            ]
            job.values = [catalog.values(r) for r in job.reports]
            job.labelled = [head.readings(r) for r in job.reports]
        except Exception as exc:
            log.exception("reports from %s do not convert; refused", _hosts(job))
            self._call(self._fail, _Group([job]), WriteFailed(exc))
            return False
        return True

    def _write(self, group: _Group) -> None:
        """Commit a group; if it fails, commit each of its jobs alone, failing only the bad one."""
        if not group.jobs:
            return
        try:
            self._commit(group)
        except Exception as exc:  # resolve every waiter; never leave one hanging
            if len(group.jobs) == 1:
                log.exception("write of reports from %s failed", _hosts(group.jobs[0]))
                self._call(self._fail, group, WriteFailed(exc))
                return
            log.warning("group commit of %d requests failed (%s); each alone", len(group.jobs), exc)
            for job in group.jobs:
                self._write(_Group([job]))
        else:
            self._call(self._complete, group)

    def _call(self, fn: Callable[..., None], *args: object) -> None:
        assert self._loop is not None
        # A closed loop (shutdown) means nobody is waiting any more.
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(fn, *args)

    def _commit(self, group: _Group) -> None:
        conn = self._conn
        assert conn is not None
        stored = Stored(conn, self._host_ids, self._max_ts, self._recent)
        seen = stored.existing([k for job in group.jobs for k in job.keys])
        counts: dict[Window, int] = {}
        admitted = []
        for job in group.jobs:
            refusal = over_limit(job.limit, job.reports, job.keys, seen, counts, stored)
            if refusal is None:
                admitted.append(job)
            else:
                self._call(self._refuse, job, refusal)
        group.jobs = admitted
        rows: list[tuple[Any, ...]] = []
        head_rows: list[tuple[int, int, int, bytes]] = []
        new_series: list[tuple[int, head.Key]] = []
        seen_ts: dict[int, tuple[float, float]] = {}
        added: list[str] = []
        newest: dict[str, tuple[MetricsReport, float]] = {}
        started = time.perf_counter()
        conn.execute("BEGIN IMMEDIATE")
        try:
            first = next_id(conn)
            for job in group.jobs:
                accepted = dup = 0
                for r, key, values, labelled in zip(
                    job.reports, job.keys, job.values, job.labelled, strict=True
                ):
                    prev = newest.get(r.host)
                    if prev is None or r.collected_at >= prev[0].collected_at:
                        newest[r.host] = (r, job.received)
                    else:
                        newest[r.host] = (prev[0], job.received)
                    if key in seen:
                        dup += 1
                        continue
                    seen.add(key)
                    accepted += 1
                    host_id = self._host_id(conn, r, job.received, added)
                    rows.append((first + len(rows), host_id, *key[1:], *values))
                    blob = self.series.head_row(
                        conn, host_id, key[1], labelled, new_series, seen_ts
                    )
                    if blob is not None:
                        head_rows.append((host_id, round(key[1] * 1000), rows[-1][0], blob))
                group.acks.append(IngestAck(accepted=accepted, duplicates=dup))
            insert_rows(conn, rows)
            conn.executemany(
                "INSERT INTO series_head (host_id, ts, id, data) VALUES (?, ?, ?, ?)", head_rows
            )
            now = time.monotonic()
            if now - self._seen_written >= self.persist_s:
                self.series.write_seen(conn)  # what earlier commits saw; this one's next time
                self._seen_written = now
            dirty = dict(self._dirty)
            written: list[str] = []
            for name, (r, received) in newest.items():
                self._host_id(conn, r, received, added)
                group.hosts[name] = HostState(name, r, _dt(received), r.interval_s)
                dirty[name] = _newer(dirty.get(name), (r, received))
            for name in self._due(dirty, newest, now):
                _write_host(conn, name, *dirty.pop(name))
                written.append(name)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            for name in added:
                self._host_ids.pop(name, None)
            self.series.forget(new_series)
            raise
        self.commits += 1
        if self.commit_observer is not None:
            self.commit_observer(time.perf_counter() - started)
        remember(self._recent, counts)
        self.series.merge_seen(seen_ts)
        self._dirty = dirty
        for name in written:
            self._persisted[name] = now
        for row in rows:  # (id, host_id, ts, ...)
            if row[2] > self._max_ts.get(row[1], float("-inf")):
                self._max_ts[row[1]] = row[2]

    def _due(
        self, dirty: dict[str, tuple[MetricsReport, float]], touched: Iterable[str], now: float
    ) -> list[str]:
        """Hosts whose row is due: the ones in this group, and once a second any others."""
        names = [n for n in touched if now - self._persisted.get(n, -1e18) >= self.persist_s]
        if now - self._dirty_scan >= 1.0:
            self._dirty_scan = now
            names += [
                n
                for n in dirty
                if n not in touched and now - self._persisted.get(n, -1e18) >= self.persist_s
            ]
        return names

    def _flush_hosts(self) -> None:
        """Write every pending host row (when idle, and at shutdown)."""
        conn = self._conn
        if not (self._dirty or self.series.seen) or conn is None:
            return
        try:
            conn.execute("BEGIN IMMEDIATE")
            self.series.write_seen(conn)
            for name, (r, received) in self._dirty.items():
                _write_host(conn, name, r, received)
            conn.execute("COMMIT")
        except sqlite3.Error:
            log.exception("could not write the host rows; will try again")
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            return
        now = time.monotonic()
        for name in self._dirty:
            self._persisted[name] = now
        self._dirty = {}

    def _host_id(
        self, conn: sqlite3.Connection, r: MetricsReport, received: float, added: list[str]
    ) -> int:
        host_id = self._host_ids.get(r.host)
        if host_id is None:
            cur = conn.execute(
                "INSERT INTO hosts (name, first_seen, last_seen, last_collected, interval_s,"
                " latest) VALUES (?, ?, ?, ?, ?, ?)",
                (r.host, received, received, 0.0, r.interval_s, "{}"),
            )
            host_id = int(cur.lastrowid or 0)
            self._host_ids[r.host] = host_id
            added.append(r.host)
        return host_id

    # --- host removal (``hosts rm``), on the writer thread ---------------------------------------
    async def remove_host(self, name: str, purge: bool = False) -> bool:
        """Take ``name`` out of the fleet: its row is marked removed (history kept) or, with
        ``purge``, its samples, both tiers and its row are deleted in one transaction. Reports
        queued before this are committed first. False if no such host is stored."""
        if self._closed or self._loop is None:
            raise StorageClosed("the server is shutting down")
        fut: asyncio.Future[object] = self._loop.create_future()
        self._queue.put(_Call(partial(self._remove, name, purge, time.time()), fut))
        return bool(await asyncio.shield(fut))

    def _remove(self, name: str, purge: bool, now: float, conn: sqlite3.Connection) -> bool:
        host_id = self._host_ids.get(name)
        if host_id is None:
            return False
        self._dirty.pop(name, None)  # a later host-row write would undo the mark
        self._persisted.pop(name, None)  # so the next report writes the row (and clears it)
        remove_host_rows(conn, host_id, purge, now)
        if purge:
            del self._host_ids[name]
            self._max_ts.pop(host_id, None)
            self._recent.pop(name, None)  # its window counts went with its rows
            self.series.forget_host(host_id)
        self._call(self.cache.remove, name)  # before the caller resumes, after earlier commits
        return True

    def _run_call(self, call: _Call) -> None:
        assert self._conn is not None
        result: object = None
        error: BaseException | None = None
        try:
            result = call.fn(self._conn)
        except Exception as exc:
            log.exception("storage call failed")
            error = exc

        def settle(fut: asyncio.Future[object] = call.future) -> None:
            if not fut.done():
                fut.set_result(result) if error is None else fut.set_exception(error)

        self._call(settle)

    # --- back on the event loop -----------------------------------------------------------------
    def _complete(self, group: _Group) -> None:
        for state in group.hosts.values():
            self.cache.put(state)
        for job, ack in zip(group.jobs, group.acks, strict=True):
            self.accepted += ack.accepted
            self.duplicates += ack.duplicates
            if not job.future.done():
                job.future.set_result(ack)
        states = list(group.hosts.values())
        for listener in self.listeners:
            try:
                listener(states)
            except Exception:
                log.exception("commit listener failed")

    def _refuse(self, job: _Job, exc: RateLimited) -> None:
        host = job.reports[0].host if job.reports else ""
        self.refused[host] = self.refused.get(host, 0) + len(job.reports)
        if not job.future.done():
            job.future.set_exception(exc)

    @staticmethod
    def _fail(group: _Group, exc: BaseException) -> None:
        for job in group.jobs:
            if not job.future.done():
                job.future.set_exception(exc)


def _hosts(job: _Job) -> str:
    return ", ".join(sorted({r.host for r in job.reports})) or "nobody"


def _newer(
    a: tuple[MetricsReport, float] | None, b: tuple[MetricsReport, float]
) -> tuple[MetricsReport, float]:
    """The newer report of the two, with the later time we heard from the host."""
    if a is None:
        return b
    report = b[0] if b[0].collected_at >= a[0].collected_at else a[0]
    return report, max(a[1], b[1])


def _write_host(conn: sqlite3.Connection, name: str, r: MetricsReport, received: float) -> None:
    ts = r.collected_at.timestamp()
    conn.execute(
        "UPDATE hosts SET last_seen = max(last_seen, ?), interval_s = ?, removed_at = NULL,"
        " latest = CASE WHEN ? >= last_collected THEN ? ELSE latest END,"
        " last_collected = max(last_collected, ?) WHERE name = ?",
        (received, r.interval_s, ts, wire.encode(r).decode(), ts, name),
    )


def _dt(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)
