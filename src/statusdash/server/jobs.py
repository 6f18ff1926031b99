"""A small scheduler inside the server: periodic maintenance jobs, each also runnable on demand.

Jobs run one at a time on one thread of their own (never on the event loop), so two of ours never
compete for SQLite's single write lock, and each keeps its transactions short so the storage
writer is never held up for long. ``build_jobs(settings)`` registers rollups, retention and
backups; other services add theirs with ``ctx.jobs.scheduler.register(name, interval_s, fn)``.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from statusdash.errors import NotFound
from statusdash.server import backup, rollups
from statusdash.server.db import connect, ensure_schema
from statusdash.server.tsdb import compact as tsdb_compact
from statusdash.settings import Settings

log = logging.getLogger(__name__)
JobFn = Callable[[], object]
# What ``hosts rm --purge`` deletes of a host (children first: they reference ``hosts.id``).
PURGED_TABLES = (
    "series_head",
    "series_chunks",
    "series",
    "samples_pending",
    "samples",
    "rollup_1m",
    "rollup_1h",
)


def remove_host_rows(conn: sqlite3.Connection, host_id: int, purge: bool, now: float) -> None:
    """``hosts rm`` in one transaction: mark the host's row removed (its history stays until
    retention) or, with ``purge``, delete its raw samples, both tiers and the row itself.

    Run by the storage writer (``Storage.remove_host``), so no group commit interleaves."""
    with rollups.write_txn(conn):
        if purge:
            for table in PURGED_TABLES:
                conn.execute(f"DELETE FROM {table} WHERE host_id = ?", (host_id,))  # noqa: S608
            conn.execute("DELETE FROM hosts WHERE id = ?", (host_id,))
        else:
            conn.execute("UPDATE hosts SET removed_at = ? WHERE id = ?", (now, host_id))


@dataclass
class Job:
    """A registered job and what it last did."""

    name: str
    interval_s: float  # <= 0: on demand only
    fn: JobFn
    next_run: float
    runs: int = 0
    failures: int = 0
    last_started: float | None = None  # wall clock
    last_duration_s: float | None = None
    last_error: str | None = None
    last_result: object = None

    def status(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "interval_s": self.interval_s,
            "runs": self.runs,
            "failures": self.failures,
            "last_started": self.last_started,
            "last_duration_s": self.last_duration_s,
            "last_error": self.last_error,
        }


class UnknownJobError(NotFound):
    """No job of that name is registered."""


@dataclass
class Scheduler:
    """Runs registered jobs every ``interval_s`` on one background thread, one job at a time."""

    clock: Callable[[], float] = time.monotonic
    jobs: dict[str, Job] = field(default_factory=dict)
    stopping: threading.Event = field(default_factory=threading.Event)
    _wake: threading.Event = field(default_factory=threading.Event)
    _run_lock: threading.Lock = field(default_factory=threading.Lock)
    _thread: threading.Thread | None = None

    def register(
        self, name: str, interval_s: float, fn: JobFn, *, first_delay_s: float | None = None
    ) -> None:
        """Add (or replace) a job; it first runs after ``first_delay_s`` (default: one interval)."""
        delay = interval_s if first_delay_s is None else first_delay_s
        self.jobs[name] = Job(name, interval_s, fn, self.clock() + max(0.0, delay))
        self._wake.set()

    def run_now(self, name: str) -> object:
        """Run a job in the calling thread (waits for a running job); re-raises its error."""
        job = self.jobs.get(name)
        if job is None:
            raise UnknownJobError(f"no job named {name!r}")
        with self._run_lock:
            return self._run(job, reraise=True)

    async def run(self, name: str) -> object:
        """``run_now`` from the event loop, in a worker thread."""
        return await asyncio.to_thread(self.run_now, name)

    def status(self) -> list[dict[str, Any]]:
        return [j.status() for j in self.jobs.values()]

    def _run(self, job: Job, reraise: bool) -> object:
        started = self.clock()
        job.last_started = time.time()
        job.runs += 1
        try:
            job.last_result = job.fn()
            job.last_error = None
            return job.last_result
        except Exception as exc:
            job.failures += 1
            job.last_error = f"{type(exc).__name__}: {exc}"
            if reraise:
                raise
            log.exception("job %s failed", job.name)
            return None
        finally:
            job.last_duration_s = self.clock() - started
            if job.interval_s > 0:
                job.next_run = self.clock() + job.interval_s

    # --- the thread ------------------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is not None:
            return
        self.stopping.clear()
        self._thread = threading.Thread(target=self._loop, name="statusdash-jobs", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> bool:
        """Ask the running job to wind down (``stopping``), join the thread; False if stuck."""
        self.stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.warning("jobs thread still busy after %.0f s; leaving it", timeout)
                return False
            self._thread = None
        return True

    def _loop(self) -> None:
        while not self.stopping.is_set():
            due = [j for j in list(self.jobs.values()) if j.interval_s > 0]
            if not due:
                self._wait(3600.0)
                continue
            job = min(due, key=lambda j: j.next_run)
            delay = job.next_run - self.clock()
            if delay > 0:
                self._wait(delay)
                continue
            with self._run_lock:
                if not self.stopping.is_set():
                    self._run(job, reraise=False)

    def _wait(self, seconds: float) -> None:
        self._wake.wait(seconds)
        self._wake.clear()


# --- the server's jobs ---------------------------------------------------------------------------
class _Conn:
    """The jobs' own write connection, opened lazily in the jobs' thread."""

    def __init__(self, db_path: Path, synchronous: str) -> None:
        self.db_path = db_path
        self.synchronous = synchronous
        self._conn: sqlite3.Connection | None = None

    def get(self) -> sqlite3.Connection:
        if self._conn is None:
            self._conn = connect(self.db_path, self.synchronous)
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


@dataclass
class ServerJobs:
    """The server's scheduler with its rollup, retention and backup jobs registered."""

    scheduler: Scheduler
    db_path: Path
    conn: _Conn

    async def start(self) -> None:
        """Start the jobs' thread (after storage opens: the tables exist)."""
        await asyncio.to_thread(ensure_schema, self.db_path)
        self.scheduler.start()

    async def stop(self) -> None:
        """Stop the thread (the running job winds down), then close the jobs' connection."""
        if await asyncio.to_thread(self.scheduler.stop):
            self.conn.close()


def build_jobs(settings: Settings) -> ServerJobs:
    """The scheduler with rollup, retention and backup registered at the settings' intervals."""
    db_path = settings.db_path
    retention = rollups.Retention.from_settings(settings)
    backup_dir = settings.backups_path
    backup_interval_s = settings.backup_interval_hours * 3600
    sched = Scheduler()
    conn = _Conn(db_path, settings.db_synchronous)

    def rollup() -> rollups.RollupResult:
        return rollups.roll_up(conn.get(), stop=sched.stopping.is_set)

    def compact() -> tsdb_compact.CompactResult:
        return tsdb_compact.compact(
            conn.get(),
            settings.tsdb_chunk_span_s,
            grace_s=settings.tsdb_compact_grace_s,
            stop=sched.stopping.is_set,
        )

    def retention_job() -> rollups.PruneResult:
        rollup()  # fold in everything first: prune never drops a row the tiers lack
        compact()
        res = rollups.prune(conn.get(), retention, stop=sched.stopping.is_set)
        if not sched.stopping.is_set():
            tsdb_compact.prune_chunks(conn.get(), res.cutoffs)
        return res

    def backup_job() -> backup.BackupResult:
        return backup.scheduled_backup(
            db_path, backup_dir, settings.backup_keep, stop=sched.stopping.is_set
        )

    sched.register("rollup", settings.rollup_interval_s, rollup, first_delay_s=1.0)
    sched.register("compact", settings.tsdb_compact_interval_s, compact, first_delay_s=5.0)
    sched.register("retention", settings.prune_interval_s, retention_job, first_delay_s=60.0)
    age = backup.newest_backup_age(backup_dir)
    first = 300.0 if age is None else max(300.0, backup_interval_s - age)
    sched.register("backup", backup_interval_s, backup_job, first_delay_s=first)
    return ServerJobs(sched, db_path, conn)
