"""A hostile HTTP server on loopback (TLS optional, from our own pki): it reads each request
whole, then answers as a scripted behaviour says: never, a byte at a time, endlessly, or with
a canned answer that is not the acknowledgement the agent expects."""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
import time
from collections.abc import Callable
from pathlib import Path

CHUNK = b"\0" * 65536


class Hostile:
    """Serves each connection in a thread with ``behave(conn, self)`` after its first request."""

    def __init__(self, behave: Callable[[socket.socket, Hostile], None], vault: Path | None = None):
        self.behave = behave
        self.requests = 0
        self.sent = 0  # body bytes written by the endless behaviours
        self.got_request = threading.Event()
        self.stopping = threading.Event()
        self._ctx: ssl.SSLContext | None = None
        if vault is not None:
            self._ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self._ctx.load_cert_chain(vault / "server/status.crt", vault / "server/status.key")
        self._sock = socket.create_server(("127.0.0.1", 0))
        self._sock.settimeout(0.1)
        self._threads: list[threading.Thread] = []
        self._conns: list[socket.socket] = []

    @property
    def url(self) -> str:
        scheme = "https" if self._ctx is not None else "http"
        return f"{scheme}://127.0.0.1:{self._sock.getsockname()[1]}"

    def __enter__(self) -> Hostile:
        t = threading.Thread(target=self._accept, daemon=True)
        t.start()
        self._threads.append(t)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        for c in self._conns:
            with contextlib.suppress(OSError):
                c.shutdown(socket.SHUT_RDWR)
        for t in self._threads:
            t.join(10)
        self._sock.close()

    def _accept(self) -> None:
        while not self.stopping.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            self._conns.append(conn)
            t = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            t.start()
            self._threads.append(t)

    def _serve(self, raw: socket.socket) -> None:
        try:
            conn = raw
            if self._ctx is not None:
                raw.settimeout(10)
                conn = self._ctx.wrap_socket(raw, server_side=True)
                self._conns.append(conn)
            conn.settimeout(None)
            if self.read_request(conn):
                self.behave(conn, self)
        except OSError:
            pass  # the agent gave up on us: what these tests want
        finally:
            with contextlib.suppress(OSError):
                raw.close()

    def read_request(self, conn: socket.socket) -> bool:
        """Read one request, headers and ``Content-Length`` body; ``False`` at end of stream."""
        data = b""
        while b"\r\n\r\n" not in data:
            more = conn.recv(65536)
            if not more:
                return False
            data += more
        head, _, body = data.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        while len(body) < length:
            more = conn.recv(65536)
            if not more:
                return False
            body += more
        self.requests += 1
        self.got_request.set()
        return True


def silent(conn: socket.socket, server: Hostile) -> None:
    """Never answer; hold the connection until the test ends."""
    server.stopping.wait(60)


def dribble(conn: socket.socket, server: Hostile) -> None:
    """Start an answer, then one more header byte every 0.25 s, for at most 25 s."""
    conn.sendall(b"HTTP/1.1 200 OK\r\nX-Slow: ")
    end = time.monotonic() + 25
    while time.monotonic() < end and not server.stopping.wait(0.25):
        conn.sendall(b"a")


def endless(announce: bool) -> Callable[[socket.socket, Hostile], None]:
    """A 200 whose body goes on (at most 128 MiB): announced as 1 GiB, or read to the close."""

    def behave(conn: socket.socket, server: Hostile) -> None:
        head = "Content-Length: 1073741824" if announce else "Connection: close"
        conn.sendall(f"HTTP/1.1 200 OK\r\n{head}\r\n\r\n".encode())
        while server.sent < 128 * 1024 * 1024 and not server.stopping.is_set():
            conn.sendall(CHUNK)
            server.sent += len(CHUNK)

    return behave


def canned(status: int, body: bytes, ctype: str = "application/json") -> Callable[..., None]:
    """The same full answer to every request, on a kept-alive connection."""

    def behave(conn: socket.socket, server: Hostile) -> None:
        while True:
            head = (
                f"HTTP/1.1 {status} X\r\nContent-Type: {ctype}\r\n"
                f"Content-Length: {len(body)}\r\n\r\n"
            )
            conn.sendall(head.encode() + body)
            if not server.read_request(conn):
                return

    return behave


def cut(conn: socket.socket, server: Hostile) -> None:
    """Close the connection once the request is in, answering nothing."""
    conn.close()
