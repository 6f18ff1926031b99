"""The WebSocket stream client against a real WebSocket server on loopback."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from websockets.http11 import Request, Response
from websockets.sync.server import Server, ServerConnection, serve

from statusdash.client import Credentials, ServerUnreachable
from statusdash.tui.source import ApiSource, StreamUnavailable


@dataclass
class WsServer:
    server: Server
    headers: list[str] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)
    refuse: bool = False

    @property
    def url(self) -> str:
        host, port = self.server.socket.getsockname()[:2]
        return f"http://{host}:{port}"


@pytest.fixture
def ws_server() -> Iterator[WsServer]:
    state: dict[str, Any] = {}

    def check(conn: ServerConnection, request: Request) -> Response | None:
        srv: WsServer = state["srv"]
        srv.headers.append(request.headers.get("Authorization", ""))
        srv.paths.append(request.path)
        return conn.respond(403, "no") if srv.refuse else None

    def handler(conn: ServerConnection) -> None:
        conn.send(json.dumps({"type": "hello", "data": {}}))
        conn.send(json.dumps({"type": "host.updated", "data": {"host": "a", "cpu": 1}}))
        conn.send("garbage")
        conn.recv()  # the client never sends: returns when it goes away or we close

    server = serve(handler, "127.0.0.1", 0, process_request=check)
    state["srv"] = srv = WsServer(server)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield srv
    finally:
        server.shutdown()
        thread.join(timeout=5)


def test_stream_sends_the_token_and_yields_events(ws_server: WsServer) -> None:
    source = ApiSource(ws_server.url, credentials=Credentials(token="tok"), timeout=2)
    stream = source.open_stream()
    assert stream is not None
    try:
        first = stream.recv(timeout=2)
        second = stream.recv(timeout=2)
        assert first is not None and first.type == "hello"
        assert second is not None and second.type == "host.updated"
        assert second.data == {"host": "a", "cpu": 1}
        assert stream.recv(timeout=2) is None  # not JSON: skipped
        assert stream.recv(timeout=0.1) is None  # nothing more: a timeout, not an error
    finally:
        stream.close()
    assert ws_server.headers == ["Bearer tok"] and ws_server.paths == ["/api/stream"]


def test_refused_stream_means_poll_instead(ws_server: WsServer) -> None:
    ws_server.refuse = True
    with pytest.raises(StreamUnavailable, match="HTTP 403"):
        ApiSource(ws_server.url, timeout=2).open_stream()


def test_closed_connection_is_unreachable(ws_server: WsServer) -> None:
    stream = ApiSource(ws_server.url, timeout=2).open_stream()
    assert stream is not None
    ws_server.server.shutdown()
    with pytest.raises(ServerUnreachable):
        for _ in range(10):
            stream.recv(timeout=1)


def test_nothing_listening_is_unreachable() -> None:
    with pytest.raises(ServerUnreachable):
        ApiSource("http://127.0.0.1:9", timeout=1).open_stream()
