"""TLS accepts paced by the event loop's lag, so a reconnect storm is served, not cut.

With the loop's own ``create_server``, every connection is accepted at once and its TLS
handshake deadline (``CONN_HANDSHAKE_TIMEOUT_S``) starts then. In a storm (a server restart:
thousands of agents reconnect within seconds) the single-threaded loop cannot run the
handshakes as fast as they arrive, and uvloop runs its timers before it reads sockets, so a
connection whose handshake reply has already arrived is aborted at its deadline: 1,889 of
2,000 agents were cut so on this machine (``python -m bench.conns --agents 2000 --anonymous 0
--handshakes 2000``). :class:`PacedServer` accepts by itself instead: it stops accepting while
the loop runs late (``CONN_ACCEPT_LAG_S``) or too many handshakes are in flight
(``CONN_MAX_HANDSHAKES``), so waiting connections stay in the kernel's listen backlog, where no
deadline runs and no descriptor of ours is held, and each accepted handshake finishes well
within its deadline. A trickle is still accepted while paused, so nobody waits forever. Silent
peers cost no CPU and so never make the loop late: they cannot close the gate on others.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
import time
from collections.abc import Callable, Iterable
from typing import Any

log = logging.getLogger("statusdash.conns")

PROBE_S = 0.02  # how often the loop's lateness is sampled
ACCEPT_BATCH = 32  # connections taken per readable event at most
TRICKLE = 2  # connections taken per probe while paused, so a saturated server starves no one
ERROR_PAUSE_S = 1.0  # after EMFILE and the like, as asyncio's own accept loop does


class LagProbe:
    """How late the loop runs its callbacks: a timer every ``PROBE_S`` measures its lateness."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self.lag = 0.0
        self._due = loop.time() + PROBE_S
        self._handle: asyncio.TimerHandle | None = loop.call_at(self._due, self._tick)

    def _tick(self) -> None:
        now = self._loop.time()
        self.lag = max(0.0, now - self._due)
        self._due = now + PROBE_S
        self._handle = self._loop.call_at(self._due, self._tick)

    def current(self) -> float:
        """The lateness now: the last sample, or more if the probe itself is overdue."""
        return max(self.lag, self._loop.time() - self._due)

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None


class PacedServer(asyncio.AbstractServer):
    """A TLS server that accepts only as fast as its loop can run the handshakes."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        protocol_factory: Callable[[], asyncio.BaseProtocol],
        sock: socket.socket,
        ssl_context: ssl.SSLContext,
        *,
        handshake_timeout_s: float,
        max_lag_s: float,
        max_handshakes: int,
    ) -> None:
        self._loop = loop
        self._factory = protocol_factory
        self._sock = sock
        self._ssl = ssl_context
        self._timeout = handshake_timeout_s
        self._max_lag = max_lag_s
        self._max_handshakes = max_handshakes
        self._probe = LagProbe(loop)
        self._handshakes: set[asyncio.Task[None]] = set()
        self._reading = False
        self._closed = False
        self._done = asyncio.Event()
        self._paused_at: float | None = None
        self._resume: asyncio.TimerHandle | None = None
        self._paused_total = 0.0
        self.accepted = 0
        sock.setblocking(False)
        self._start_reading()

    # --- the accept gate --------------------------------------------------------------------
    def _gate_open(self) -> bool:
        return (
            len(self._handshakes) < self._max_handshakes and self._probe.current() <= self._max_lag
        )

    def _start_reading(self) -> None:
        if not self._reading and not self._closed:
            self._loop.add_reader(self._sock.fileno(), self._on_readable)
            self._reading = True
            if self._paused_at is not None:
                self._paused_total += time.monotonic() - self._paused_at
                self._paused_at = None

    def _pause(self, for_s: float) -> None:
        if self._reading:
            self._loop.remove_reader(self._sock.fileno())
            self._reading = False
            self._paused_at = time.monotonic()
        if self._resume is None and not self._closed:
            self._resume = self._loop.call_later(for_s, self._on_resume)

    def _on_resume(self) -> None:
        self._resume = None
        if self._closed:
            return
        if self._gate_open():
            self._start_reading()
            self._on_readable()
        else:  # still late (a trickle, so no one starves) or full (none), then wait again
            room = self._max_handshakes - len(self._handshakes)
            self._take(min(TRICKLE, room))
            self._pause(PROBE_S)

    def _on_readable(self) -> None:
        for _ in range(ACCEPT_BATCH):
            if not self._gate_open():
                self._pause(PROBE_S)
                return
            if not self._take(1):
                return

    def _take(self, n: int) -> bool:
        """Accept up to ``n`` waiting connections; False when none is waiting (or on error)."""
        for _ in range(n):
            try:
                conn, _addr = self._sock.accept()
            except (BlockingIOError, InterruptedError):
                return False
            except OSError as exc:  # out of descriptors or buffers: wait, as asyncio does
                log.warning("accept failed (%s); pausing accepts for %.0f s", exc, ERROR_PAUSE_S)
                self._pause(ERROR_PAUSE_S)
                return False
            self.accepted += 1
            conn.setblocking(False)
            with contextlib.suppress(OSError):
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            task = self._loop.create_task(self._handshake(conn))
            self._handshakes.add(task)
            task.add_done_callback(self._handshakes.discard)
        return True

    async def _handshake(self, conn: socket.socket) -> None:
        try:
            await self._loop.connect_accepted_socket(
                self._factory, conn, ssl=self._ssl, ssl_handshake_timeout=self._timeout
            )
        except asyncio.CancelledError:
            conn.close()
            raise
        except (OSError, ssl.SSLError, TimeoutError, ConnectionError) as exc:
            # A refused certificate is logged by the TLS context (server/mtls.py); the rest
            # are peers that went away or were too slow.
            log.debug("TLS handshake ended: %s", exc)
            conn.close()

    # --- asyncio.AbstractServer -------------------------------------------------------------
    @property
    def sockets(self) -> tuple[socket.socket, ...]:
        return () if self._closed else (self._sock,)

    def close(self) -> None:
        """Stop listening and drop handshakes in progress; open connections stay (as asyncio)."""
        if self._closed:
            return
        self._closed = True
        self._done.set()
        if self._reading:
            self._loop.remove_reader(self._sock.fileno())
            self._reading = False
        if self._resume is not None:
            self._resume.cancel()
            self._resume = None
        self._probe.stop()
        self._sock.close()
        for task in self._handshakes:
            task.cancel()

    async def wait_closed(self) -> None:
        if self._handshakes:
            await asyncio.gather(*self._handshakes, return_exceptions=True)

    def is_serving(self) -> bool:
        return not self._closed

    def get_loop(self) -> asyncio.AbstractEventLoop:
        return self._loop

    async def start_serving(self) -> None:
        return None  # serving from construction

    async def serve_forever(self) -> None:
        await self._done.wait()

    @property
    def paused_s(self) -> float:
        """Time spent not accepting because the loop ran late or was full, so far."""
        now = time.monotonic()
        return self._paused_total + (now - self._paused_at if self._paused_at else 0.0)

    @property
    def in_handshake(self) -> int:
        return len(self._handshakes)


def listening_socket(host: Any, port: int, backlog: int) -> socket.socket:
    """A bound, listening TCP socket for ``host`` (one address, IPv4 or IPv6) and ``port``."""
    hosts: Iterable[Any] = [host] if not isinstance(host, list | tuple) else host
    names = [h for h in hosts if h] or ["0.0.0.0"]  # the loop's default, as asyncio's
    if len(names) != 1:
        raise ValueError(f"one bind address expected, got {names!r}")
    name = names[0]
    if name in ("::", "[::]"):
        return socket.create_server(
            ("::", port),
            family=socket.AF_INET6,
            backlog=backlog,
            dualstack_ipv6=socket.has_dualstack_ipv6(),
        )
    info = socket.getaddrinfo(name, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    family, _, _, _, addr = info[0]
    return socket.create_server(addr, family=family, backlog=backlog)
