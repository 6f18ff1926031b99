"""Run the app under uvicorn: HTTPS with client certificates unless mTLS is switched off.

Both modes serve through :class:`~statusdash.server.conns.GuardedHttpToolsProtocol` (header
deadline, caps on anonymous connections) on a loop whose TLS handshakes have a deadline, with
uvicorn's proxy headers off: ``X-Forwarded-For`` is believed only from TRUSTED_PROXIES, by the
routes that need an address (the login throttle).
"""

from __future__ import annotations

import asyncio
import logging
import os
import resource
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import uvicorn
from fastapi import FastAPI

from statusdash import units
from statusdash.errors import Invalid, StatusdashError
from statusdash.server.app import begin_shutdown, create_app
from statusdash.server.conns import ConnGuard, GuardedHttpToolsProtocol, guarded, loop_factory
from statusdash.settings import Settings

log = logging.getLogger("statusdash.server")


class ServerConfigError(StatusdashError):
    """The server cannot start as configured (missing certificates and the like)."""


def uvicorn_config(settings: Settings, log_level: str = "info", **extra: Any) -> uvicorn.Config:
    """The uvicorn config for an app built from ``settings`` (TLS wiring included)."""
    try:
        app = create_app(settings)
    except Invalid as exc:  # a bad rules file or webhook list: one line, no traceback
        raise ServerConfigError(str(exc)) from exc
    kwargs: dict[str, Any] = {
        "host": settings.status_bind,
        "port": settings.status_port,
        "log_level": log_level,
        "access_log": False,
        "lifespan": "on",
        "timeout_keep_alive": settings.conn_keep_alive_s,
        "server_header": False,
        "proxy_headers": False,
        "loop": loop_factory(settings),
        "http": GuardedHttpToolsProtocol,
        "timeout_graceful_shutdown": settings.shutdown_grace_s,  # then in-flight work is cut
    }
    if settings.mtls_enabled:
        from statusdash.pki.check import PkiError
        from statusdash.server.mtls import mtls_setup

        try:
            kwargs.update(mtls_setup(settings, app))
        except (PkiError, FileNotFoundError, ValueError) as exc:
            raise ServerConfigError(
                f"mTLS is on but the certificates are not usable: {exc}"
                " (--insecure-http serves plain HTTP for a local test)"
            ) from exc
    kwargs["http"] = guarded(kwargs["http"], ConnGuard.from_settings(settings))
    kwargs.update(extra)
    return uvicorn.Config(app, **kwargs)


def _not_a_cut_request(record: logging.LogRecord) -> bool:
    """Drop the traceback of a request cut at the end of the graceful shutdown: uvicorn has
    said so in one line already ("Cancel N running task(s), timeout graceful shutdown ...")."""
    exc = record.exc_info[1] if record.exc_info else None
    return not isinstance(exc, asyncio.CancelledError)


class Server(uvicorn.Server):
    """uvicorn's server with our first step of a shutdown (``app.begin_shutdown``): alerting
    stops judging and streams close (1001) before uvicorn closes the listener and drains."""

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        logging.getLogger("uvicorn.error").addFilter(_not_a_cut_request)
        try:
            if isinstance(self.config.app, FastAPI):
                await begin_shutdown(self.config.app)
        except Exception:  # the rest of the shutdown must run whatever happened here
            log.exception("shutdown: the first step failed")
        await super().shutdown(sockets)


def raise_nofile_limit() -> int:
    """Raise the soft RLIMIT_NOFILE to the hard limit (each connection holds a descriptor)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError) as exc:
            log.warning("cannot raise the open-file limit from %d to %d: %s", soft, hard, exc)
    return soft


# Descriptors the server holds besides its connections: the database, its WAL and shm, the log,
# the CA and revocation files, the listening socket, the writer's and the jobs' own.
FDS_RESERVED = 64
# Server memory per connected agent, measured with one kept-alive mTLS connection each pushing
# every 10 s (issue 15's table: 65 KB at 2,000 agents, 90 KB at 10,000): plan with the higher.
AGENT_MEMORY_BYTES = 96 * 1024


@dataclass(frozen=True)
class Capacity:
    """How many agents this process can hold, by open files and by memory; the smaller wins."""

    open_files: int
    by_files: int
    memory: int | None  # bytes available to the process (cgroup limit or MemAvailable)
    by_memory: int | None

    @property
    def agents(self) -> int:
        return min(self.by_files, self.by_memory if self.by_memory is not None else self.by_files)

    def line(self) -> str:
        files = (
            f"open-file limit {self.open_files:,} allows {units.count(self.by_files, 'connection')}"
        )
        if self.memory is None or self.by_memory is None:
            return f"capacity: about {units.count(self.agents, 'agent')} ({files})"
        return (
            f"capacity: about {units.count(self.agents, 'agent')} ({files};"
            f" {units.size(self.memory)} of memory allows about {self.by_memory:,}"
            f" at ~{units.size(AGENT_MEMORY_BYTES)} each)"
        )


def available_memory(cgroup: Path = Path("/sys/fs/cgroup")) -> int | None:
    """Memory this process may still use: the lower of MemAvailable and its cgroup's headroom."""
    try:
        free: int | None = int(psutil.virtual_memory().available)
    except (OSError, RuntimeError):
        free = None
    try:
        limit = (cgroup / "memory.max").read_text().strip()
        if limit != "max":
            used = int((cgroup / "memory.current").read_text().strip())
            room = max(int(limit) - used, 0)
            free = room if free is None else min(free, room)
    except (OSError, ValueError):
        pass
    return free


def capacity(open_files: int, memory: int | None) -> Capacity:
    by_files = max(open_files - FDS_RESERVED, 0)
    by_memory = None if memory is None else memory // AGENT_MEMORY_BYTES
    return Capacity(open_files, by_files, memory, by_memory)


def make_private(settings: Settings) -> None:
    """Files from now on 0600 in 0700 directories; a database an older version left open, too."""
    os.umask(0o077)
    db = settings.db_path
    for path in (db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")):
        if path.exists() and path.stat().st_mode & 0o077:
            path.chmod(0o600)
            log.warning("%s was readable by others: made it 0600", path)


def serve(settings: Settings, log_level: str = "info") -> None:
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(message)s")
    make_private(settings)
    log.info("%s", capacity(raise_nofile_limit(), available_memory()).line())
    config = uvicorn_config(settings, log_level)
    Server(config).run()
