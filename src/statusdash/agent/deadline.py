"""A total deadline per request, enforced on every socket operation beneath httpx.

httpx's timeouts are per operation: a server that dribbles a byte every few seconds resets the
read timeout each time and can hold a push forever. httpx has no total timeout and no option
for httpcore's network backend, so the agent's transport puts its own pool, on this backend,
in place of the default one: each connect, TLS handshake, read and write waits at most what is
left of the current request's deadline, and fails as a timeout once it is spent.
"""

from __future__ import annotations

import ssl
import time
import typing

import httpcore
import httpx

SockOpts = typing.Iterable[
    tuple[int, int, int] | tuple[int, int, bytes | bytearray] | tuple[int, int, None, int]
]


class DeadlineBackend(httpcore.NetworkBackend):
    """httpcore's sync backend with one deadline (monotonic seconds) over all its streams."""

    def __init__(self) -> None:
        self._inner = httpcore.SyncBackend()
        self.deadline: float | None = None

    def remaining(self, timeout: float | None, fail: type[Exception]) -> float | None:
        """``timeout`` shortened to what is left of the deadline; ``fail`` once none is."""
        if self.deadline is None:
            return timeout
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise fail("the request's deadline passed")
        return left if timeout is None else min(timeout, left)

    def expired(self) -> bool:
        return self.deadline is not None and time.monotonic() >= self.deadline

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: SockOpts | None = None,
    ) -> httpcore.NetworkStream:
        stream = self._inner.connect_tcp(
            host,
            port,
            self.remaining(timeout, httpcore.ConnectTimeout),
            local_address,
            socket_options,
        )
        return _Stream(stream, self)

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: SockOpts | None = None
    ) -> httpcore.NetworkStream:
        raise httpcore.UnsupportedProtocol("the agent connects over TCP only")

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


class _Stream(httpcore.NetworkStream):
    def __init__(self, inner: httpcore.NetworkStream, backend: DeadlineBackend) -> None:
        self._inner = inner
        self._backend = backend

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, self._backend.remaining(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, self._backend.remaining(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        left = self._backend.remaining(timeout, httpcore.ConnectTimeout)
        return _Stream(self._inner.start_tls(ssl_context, server_hostname, left), self._backend)

    def get_extra_info(self, info: str) -> typing.Any:
        return self._inner.get_extra_info(info)


def transport(
    verify: ssl.SSLContext | bool, limits: httpx.Limits, backend: DeadlineBackend
) -> httpx.HTTPTransport:
    """httpx's transport, its connection pool rebuilt on ``backend`` (no proxy: the agent's
    push goes straight to its server, as ``trust_env=False`` says)."""
    out = httpx.HTTPTransport(verify=verify, limits=limits, trust_env=False)
    # httpx has no network_backend option: its pool is replaced by one on ours
    out._pool = httpcore.ConnectionPool(
        ssl_context=httpx.create_ssl_context(verify=verify, trust_env=False),
        max_connections=limits.max_connections,
        max_keepalive_connections=limits.max_keepalive_connections,
        keepalive_expiry=limits.keepalive_expiry,
        network_backend=backend,
    )
    return out
