"""Issue 10 item 12: an open ``WS /api/stream`` ends (1008) when its credentials end."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from statusdash.pki.ca import revoke
from statusdash.server.stream import Broadcaster, Grant
from statusdash.tlsclient import client_context
from tests.conftest import Live, RunningServer, TlsLive, make_settings

TTL_S = 5


def ws_url(live: Live) -> str:
    return "ws" + live.url.removeprefix("http") + "/api/stream"


def close_code(ws: ClientConnection, within_s: float) -> int | None:
    """Read until the server closes the stream; its close code (None if it stayed open)."""
    deadline = time.monotonic() + within_s
    try:
        while time.monotonic() < deadline:
            try:
                ws.recv(timeout=0.5)
            except TimeoutError:
                continue
    except ConnectionClosed as closed:
        return closed.rcvd.code if closed.rcvd is not None else None
    return None


@pytest.fixture
def short_ttl_server(tmp_path: Path) -> Iterator[Live]:
    """A plain-HTTP server whose reader tokens live ``TTL_S`` seconds."""
    server = RunningServer(make_settings(tmp_path / "data", token_ttl_s=TTL_S)).start()
    try:
        yield Live(server)
    finally:
        server.stop()


def test_a_viewer_stream_is_closed_when_its_certificate_is_revoked(tls_server: TlsLive) -> None:
    clients = tls_server.vault / "clients"
    ctx = client_context(
        tls_server.vault / "ca" / "ca.crt", clients / "viewer.crt", clients / "viewer.key"
    )
    with connect(ws_url(tls_server), ssl=ctx, open_timeout=10) as ws:
        assert json.loads(ws.recv(timeout=10))["type"] == "hello"
        assert close_code(ws, within_s=1.5) is None  # it stays open while the cert is good
        revoke(tls_server.vault, "viewer")  # what `statusdash certs revoke viewer` does
        # The watcher polls the CRL every 2 s and the hub sweeps every second: well within 30.
        assert close_code(ws, within_s=30) == 1008


def test_a_token_stream_is_closed_when_its_token_expires(short_ttl_server: Live) -> None:
    headers = {"Authorization": f"Bearer {short_ttl_server.token()}"}
    started = time.monotonic()
    with connect(ws_url(short_ttl_server), additional_headers=headers, open_timeout=10) as ws:
        assert json.loads(ws.recv(timeout=10))["type"] == "hello"
        assert close_code(ws, within_s=TTL_S + 30) == 1008
    assert time.monotonic() - started >= TTL_S - 1.5  # not before the token ended


def test_a_renewed_token_keeps_the_stream_open(short_ttl_server: Live) -> None:
    live = short_ttl_server
    token = live.token()
    headers = {"Authorization": f"Bearer {token}"}
    with connect(ws_url(live), additional_headers=headers, open_timeout=10) as ws:
        assert json.loads(ws.recv(timeout=10))["type"] == "hello"
        for _ in range(3):  # three lifetimes, each token renewed before it ends
            assert close_code(ws, within_s=TTL_S / 2) is None
            r = httpx.post(
                f"{live.url}/api/auth/renew", headers={"Authorization": f"Bearer {token}"}
            )
            assert r.status_code == 200, r.text
            token = r.json()["access_token"]
            ws.send(json.dumps({"type": "auth", "token": token}))
        ws.send(json.dumps({"type": "auth", "token": "forged"}))  # a bad one ends it at once
        assert close_code(ws, within_s=10) == 1008


async def test_one_sweep_closes_only_the_ended_grants() -> None:
    hub = Broadcaster(queue_size=8)
    now = 1_000.0
    live = hub.subscribe(Grant(expires_at=now + 60))
    expired = hub.subscribe(Grant(expires_at=now - 1))
    revoked = hub.subscribe(Grant(serial=42))
    forever = hub.subscribe()
    assert hub.sweep(lambda serial: serial == 42, now=now) == 2
    assert hub.subscribers == {live, forever}
    for sub, reason in ((expired, "token expired"), (revoked, "certificate revoked")):
        assert await sub.next() is None  # the close sentinel, and why:
        assert sub.closing.code == 1008 and sub.closing.reason.startswith(reason)
    assert hub.stats()["ended"] == 2
