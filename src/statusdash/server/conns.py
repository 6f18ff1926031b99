"""Per-connection limits under uvicorn: header deadlines and caps on anonymous connections.

uvicorn bounds neither how long a client may take to send its request headers nor how many
connections one address may hold, so a peer with no credentials could keep every file
descriptor busy. :class:`GuardedHttpToolsProtocol` (the ``http=`` class in both TLS and plain
mode) closes a connection whose headers are not complete within ``CONN_HEADER_TIMEOUT_S`` of
its start (the deadline is not reset per byte, so slowloris loses) and caps connections that
have not authenticated (no verified client certificate, and no request that passed a guard yet)
per address and in total. :func:`loop_factory` gives the TLS handshake its own deadline and
paces TLS accepts by the loop's lag (server/accept.py).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar, cast

from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from statusdash.settings import Settings

log = logging.getLogger("statusdash.conns")

P = TypeVar("P", bound="GuardedHttpToolsProtocol")
_SLOT_KEY = "statusdash.conn"  # the connection's Slot in each request's scope extensions
_CLOSE_AFTER = frozenset({401, 403})
_LOG_EVERY_S = 10.0


@dataclass(eq=False, slots=True)
class Slot:
    """One open connection; ``anonymous`` until a certificate or a guarded request vouches."""

    guard: ConnGuard
    addr: str
    anonymous: bool

    def authenticated(self) -> None:
        """The peer proved who it is: the connection no longer counts against the caps."""
        if self.anonymous:
            self.anonymous = False
            self.guard.release(self.addr)


@dataclass
class ConnGuard:
    """The caps and counters shared by every connection of one server."""

    header_timeout_s: float
    max_unauth_per_addr: int
    max_unauth: int
    refused: int = 0
    timed_out: int = 0
    _per_addr: dict[str, int] = field(default_factory=dict)
    _total: int = 0
    _logged_at: float = 0.0

    @classmethod
    def from_settings(cls, settings: Settings) -> ConnGuard:
        return cls(
            settings.conn_header_timeout_s,
            settings.conn_max_unauth_per_addr,
            settings.conn_max_unauth,
        )

    @property
    def anonymous_open(self) -> int:
        return self._total

    def open(self, addr: str, *, authenticated: bool) -> Slot | None:
        """A slot for a new connection, or None (close it) if the anonymous caps are full."""
        if authenticated:
            return Slot(self, addr, anonymous=False)
        held = self._per_addr.get(addr, 0)
        if held >= self.max_unauth_per_addr or self._total >= self.max_unauth:
            self.refused += 1
            self._log_refusal(addr, held)
            return None
        self._per_addr[addr] = held + 1
        self._total += 1
        return Slot(self, addr, anonymous=True)

    def release(self, addr: str) -> None:
        held = self._per_addr.get(addr, 0) - 1
        if held > 0:
            self._per_addr[addr] = held
        else:
            self._per_addr.pop(addr, None)
        self._total = max(0, self._total - 1)

    def _log_refusal(self, addr: str, held: int) -> None:
        now = time.monotonic()
        if now - self._logged_at >= _LOG_EVERY_S:  # a flood must not flood the log too
            self._logged_at = now
            log.warning(
                "closed a connection from %s: %d unauthenticated open from it, %d in all"
                " (caps %d and %d; %d refused so far)",
                addr,
                held,
                self._total,
                self.max_unauth_per_addr,
                self.max_unauth,
                self.refused,
            )


def _has_client_cert(transport: asyncio.BaseTransport) -> bool:
    """True if the peer presented a certificate (CERT_OPTIONAL: presented means verified)."""
    ssl_object = transport.get_extra_info("ssl_object")
    return ssl_object is not None and bool(ssl_object.getpeercert(binary_form=True))


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a header deadline and the anonymous-connection caps.

    Subclass it with :func:`guarded` to bind a :class:`ConnGuard` (uvicorn builds the protocol
    itself, so the guard travels as a class attribute); without one it is uvicorn's own.
    """

    guard: ClassVar[ConnGuard | None] = None
    _slot: Slot | None = None
    _deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if self.guard is None:
            return
        addr = self.client[0] if self.client else "unknown"
        self._slot = self.guard.open(addr, authenticated=_has_client_cert(transport))
        if self._slot is None:
            transport.close()
        elif self._slot.anonymous:
            self._arm()  # a verified certificate may idle before its first request

    def connection_lost(self, exc: Exception | None) -> None:
        self._release()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm()  # no-op if armed: an anonymous connection's clock runs from its start
        if self._slot is not None:
            cast(dict[str, Any], self.scope).setdefault("extensions", {})[_SLOT_KEY] = self._slot

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self._slot is not None and self._slot.anonymous and not self.transport.is_closing():
            self._arm()  # anonymous and idle: the next request's headers are due as well

    def handle_websocket_upgrade(self) -> None:
        self._release()  # the WebSocket protocol owns the transport from here
        super().handle_websocket_upgrade()

    def _arm(self) -> None:
        if self._deadline is None and self._slot is not None:
            timeout = self._slot.guard.header_timeout_s
            self._deadline = self.loop.call_later(timeout, self._expired)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expired(self) -> None:
        self._deadline = None
        if self._slot is not None and not self.transport.is_closing():
            self._slot.guard.timed_out += 1
            self.transport.close()

    def _release(self) -> None:
        self._disarm()
        slot, self._slot = self._slot, None
        if slot is not None:
            slot.authenticated()  # gone, and so no longer held against the caps


def guarded(base: type[P], guard: ConnGuard) -> type[P]:
    """``base`` with ``guard`` bound: the class to pass to uvicorn as ``http=``."""
    return type(base.__name__, (base,), {"guard": guard})


def mark_authenticated(scope: Mapping[str, Any]) -> None:
    """A request on this connection passed a guard: lift the connection out of the caps."""
    extensions = scope.get("extensions")
    slot = extensions.get(_SLOT_KEY) if extensions else None
    if slot is not None:
        slot.authenticated()


def guard_of(scope: Mapping[str, Any]) -> ConnGuard | None:
    """The guard of the connection that carried this request (None outside our protocol)."""
    extensions = scope.get("extensions")
    slot = extensions.get(_SLOT_KEY) if extensions else None
    return slot.guard if slot is not None else None


class CloseRefused:
    """ASGI middleware: an answer of 401 or 403 closes its connection (``Connection: close``)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_closing(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] in _CLOSE_AFTER:
                headers = [*message.get("headers", ()), (b"connection", b"close")]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_closing)


# --- the TLS handshake deadline and paced accepts ---------------------------------------------
def loop_factory(settings: Settings) -> Callable[[], asyncio.AbstractEventLoop]:
    """A uvicorn ``loop=`` (a loop class) whose TLS servers pace their accepts and give up on
    a handshake in time.

    uvicorn passes no ``ssl_handshake_timeout`` to ``create_server`` (asyncio's default is
    60 s), so the loop supplies it; a TLS server is a :class:`~statusdash.server.accept.
    PacedServer`, so a reconnect storm waits in the listen backlog instead of being cut at the
    deadline. uvloop when installed, as uvicorn's ``auto`` would pick.
    """
    from statusdash.server.accept import PacedServer, listening_socket

    try:
        import uvloop

        base: type[asyncio.AbstractEventLoop] = uvloop.Loop
    except ImportError:  # pragma: no cover - uvloop is in uvicorn[standard]
        base = asyncio.SelectorEventLoop

    class _Loop(base):  # type: ignore[valid-type,misc]
        async def create_server(
            self,
            protocol_factory: Callable[[], asyncio.BaseProtocol],
            host: Any = None,
            port: int | None = None,
            *,
            sock: Any = None,
            ssl: Any = None,
            backlog: int = 100,
            **kwargs: Any,
        ) -> asyncio.AbstractServer:
            if ssl is None or kwargs:  # plain HTTP (or options we do not handle): the loop's own
                server: asyncio.AbstractServer = await super().create_server(
                    protocol_factory, host, port, sock=sock, ssl=ssl, backlog=backlog, **kwargs
                )
                return server
            listening = sock if sock is not None else listening_socket(host, port or 0, backlog)
            paced = PacedServer(
                self,
                protocol_factory,
                listening,
                ssl,
                handshake_timeout_s=settings.conn_handshake_timeout_s,
                max_lag_s=settings.conn_accept_lag_s,
                max_handshakes=settings.conn_max_handshakes,
            )
            self.__dict__.setdefault("paced_servers", []).append(paced)  # read by GET /metrics
            return paced

    return _Loop
