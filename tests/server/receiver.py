"""The tiny webhook receivers the notification tests share (``http.server`` in a thread).

``Receiver`` (fixture ``receiver``): per path, fail the first N requests, answer a status, or
hang on the first one; it also records GETs (heartbeats). ``Hook`` (fixture ``hook``): records
every POST in arrival order and holds the answers at a gate. Import the fixture by name, e.g.
``from tests.server.receiver import Receiver, receiver``, and list it in ``__all__``.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest


@dataclass
class Receiver:
    """A tiny webhook receiver: per path, fail the first N requests, or hang on them."""

    port: int = 0
    fail_first: dict[str, int] = field(default_factory=dict)
    status: dict[str, int] = field(default_factory=dict)  # answer this instead of 200
    hang_first: set[str] = field(default_factory=set)  # hang on the first request only
    requests: list[tuple[str, dict[str, str], bytes, int]] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)
    gets: list[tuple[float, str]] = field(default_factory=list)  # (monotonic time, path)

    def url(self, path: str, fmt: str = "") -> str:
        return f"{fmt + '+' if fmt else ''}http://127.0.0.1:{self.port}{path}"

    def seen(self, path: str, ok_only: bool = True) -> list[bytes]:
        return [b for p, _, b, code in self.requests if p == path and (code == 200 or not ok_only)]

    def headers(self, path: str) -> dict[str, str]:
        return next(h for p, h, _, code in self.requests if p == path and code == 200)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    rec = Receiver()
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # a heartbeat: answered with the path's status, else 200
            with lock:
                rec.gets.append((time.monotonic(), self.path))
            self.send_response(rec.status.get(self.path, 200))
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            with lock:
                n = sum(1 for p, *_ in rec.requests if p == self.path)
                hang = self.path in rec.hang_first
                rec.hang_first.discard(self.path)
                code = 500 if n < rec.fail_first.get(self.path, 0) else 200
                code = rec.status.get(self.path, code)
                if not hang:
                    rec.requests.append((self.path, dict(self.headers), body, code))
            if hang:
                rec.release.wait(10)
                return
            self.send_response(code)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    rec.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield rec
    rec.release.set()
    server.shutdown()
    server.server_close()


@dataclass
class Hook:
    """A webhook receiver: records each request in arrival order; ``gate`` holds the answers."""

    port: int = 0
    gate: threading.Event = field(default_factory=threading.Event)
    dribble: bool = False  # answer a byte at a time, never finishing (within the test's bound)
    requests: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)
    waiting: int = 0  # requests held at the gate now

    def url(self, path: str, fmt: str = "") -> str:
        return f"{fmt + '+' if fmt else ''}http://127.0.0.1:{self.port}{path}"

    def bodies(self, path: str | None = None) -> list[Any]:
        return [json.loads(b) for p, _, b in list(self.requests) if path in (None, p)]


@pytest.fixture
def hook() -> Iterator[Hook]:
    rec = Hook()
    rec.gate.set()
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            with lock:
                rec.requests.append((self.path, dict(self.headers), body))
                rec.waiting += 1
            rec.gate.wait(30)
            with lock:
                rec.waiting -= 1
            if rec.dribble:
                self.send_response(200)
                self.send_header("Content-Length", "100000")
                self.end_headers()
                for _ in range(150):  # bounded: 30 s at most
                    self.wfile.write(b"x")
                    self.wfile.flush()
                    time.sleep(0.2)
                return
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    rec.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield rec
    rec.gate.set()
    server.shutdown()
    server.server_close()
