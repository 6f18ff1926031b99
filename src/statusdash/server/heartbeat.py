"""The dead-man's switch: a GET to ``HEARTBEAT_URL`` every ``HEARTBEAT_INTERVAL_S`` while healthy.

An external monitor (healthchecks.io, Uptime Kuma's push monitor, Cronitor, ...) expects the
ping and raises its own alarm when pings stop, so someone hears of it when statusdash itself is
down, hung or cannot write. Before each ping the server checks itself: the storage writer
thread is alive and the database takes a write lock (``BEGIN IMMEDIATE``, rolled back) within
the timeout; an unhealthy server sends nothing. Each ping has ``HEARTBEAT_TIMEOUT_S`` (at most
the interval); pings run on their own task and client, on a fixed schedule, so a slow or dead
URL delays nothing else. Failures are logged with the URL masked (``notify.mask_url``; any
secret part of it cut out of error text). docs/alerts.md, "Heartbeat".
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

from statusdash import __version__
from statusdash.server.notify import MaskUrls, mask_url, scrub_url

if TYPE_CHECKING:
    from statusdash.server.context import ServerContext
    from statusdash.server.storage import Storage

log = logging.getLogger(__name__)


def writer_alive(storage: Storage) -> bool:
    """True while the storage writer thread runs and storage is not closing.

    (Storage has no public flag for it; ``storage.py`` is not this module's to change.)
    """
    thread = storage._thread
    return thread is not None and thread.is_alive() and not storage._closed


def database_writable(db_path: Path, timeout_s: float) -> str:
    """``""`` if the database takes a write lock within ``timeout_s``, else what went wrong."""
    try:
        conn = sqlite3.connect(f"file:{db_path}?mode=rw", uri=True, timeout=timeout_s)
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("ROLLBACK")
        finally:
            conn.close()
    except sqlite3.Error as exc:
        return f"database not writable: {exc}"
    return ""


class Heartbeat:
    """Pings ``url`` every ``interval_s`` seconds from a task, while ``check`` finds no problem."""

    def __init__(
        self,
        url: str,
        interval_s: float,
        timeout_s: float,
        check: Callable[[float], Awaitable[str]],
    ) -> None:
        self.url = url
        self.masked = mask_url(url)
        self.interval_s = interval_s
        self.timeout_s = min(timeout_s, interval_s)
        self.check = check
        self.sent = 0
        self.failed = 0
        self.skipped = 0
        self._task: asyncio.Task[None] | None = None
        self._http: httpx.AsyncClient | None = None
        self._mask = MaskUrls()

    def start(self) -> None:
        headers = {"User-Agent": f"statusdash/{__version__}"}
        self._http = httpx.AsyncClient(timeout=self.timeout_s, headers=headers)
        logging.getLogger("httpx").addFilter(self._mask)
        self._task = asyncio.create_task(self._run(), name="heartbeat")
        log.info("heartbeat: GET %s every %g s", self.masked, self.interval_s)

    async def stop(self) -> None:
        """Stop pinging now (a ping in flight is cut)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._http is not None:
            await self._http.aclose()
        logging.getLogger("httpx").removeFilter(self._mask)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        due = loop.time()
        while True:
            try:
                await self.beat()
            except Exception:  # a bug here must not end the heartbeat silently
                log.exception("heartbeat to %s failed", self.masked)
            due = max(due + self.interval_s, loop.time())
            await asyncio.sleep(due - loop.time())

    async def beat(self) -> bool:
        """One health check and, if healthy, one ping; True if the ping was answered 2xx."""
        try:
            async with asyncio.timeout(self.timeout_s):
                problem = await self.check(self.timeout_s / 2)  # a lock wait ends inside
        except TimeoutError:
            problem = f"health check took over {self.timeout_s:g} s"
        if problem:
            self.skipped += 1
            log.warning("heartbeat to %s not sent: %s", self.masked, problem)
            return False
        assert self._http is not None, "heartbeat not started"
        try:
            async with asyncio.timeout(self.timeout_s):
                resp = await self._http.get(self.url)
            error = "" if resp.is_success else f"HTTP {resp.status_code}"
        except TimeoutError:
            error = f"no answer within {self.timeout_s:g} s"
        except Exception as exc:
            error = scrub_url(self.url, f"{type(exc).__name__}: {exc}")
        if error:
            self.failed += 1
            log.warning("heartbeat to %s failed: %s", self.masked, error)
            return False
        self.sent += 1
        return True


def start(ctx: ServerContext) -> Callable[[], Awaitable[None]]:
    """Start the heartbeat the settings ask for (none without HEARTBEAT_URL); returns its stop."""
    settings = ctx.settings
    if settings.heartbeat_url is None or not settings.heartbeat_url.get_secret_value():
        return _nothing
    storage = ctx.storage

    async def healthy(timeout_s: float) -> str:
        if not writer_alive(storage):
            return "the storage writer is not running"
        return await asyncio.to_thread(database_writable, storage.db_path, timeout_s)

    beat = Heartbeat(
        settings.heartbeat_url.get_secret_value(),
        settings.heartbeat_interval_s,
        settings.heartbeat_timeout_s,
        healthy,
    )
    beat.start()
    return beat.stop


async def _nothing() -> None:
    return None
