"""``WS /api/stream`` with real WebSocket clients: auth, messages, and a slow subscriber."""

from __future__ import annotations

import base64
import json
import os
import socket
import struct
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import ClientConnection, connect

from statusdash.schema import AlertPublic, HostSummary, ServiceHealth
from statusdash.server.stream import RESYNC, STUCK_AFTER_S, Broadcaster
from tests.conftest import make_report
from tests.server.harness import Harness


def ws_url(h: Harness) -> str:
    return "ws" + h.live.url.removeprefix("http") + "/api/stream"


def recv_json(ws: ClientConnection, timeout: float = 5.0) -> dict[str, Any]:
    msg: dict[str, Any] = json.loads(ws.recv(timeout=timeout))
    return msg


def next_of(ws: ClientConnection, kind: str, timeout: float = 5.0) -> dict[str, Any]:
    """The data of the next message of type ``kind`` (others are skipped)."""
    deadline = time.monotonic() + timeout
    while True:
        msg = recv_json(ws, max(0.01, deadline - time.monotonic()))
        if msg["type"] == kind:
            data: dict[str, Any] = msg["data"]
            return data


# --- the broadcaster alone ------------------------------------------------------------------------


async def test_an_overflowing_subscriber_is_reset_and_a_stuck_one_dropped() -> None:
    now = [0.0]
    hub = Broadcaster(queue_size=4)
    slow, fast = hub.subscribe(), hub.subscribe()
    slow.clock = lambda: now[0]
    got: list[str] = []

    async def publish(*values: int) -> None:
        for i in values:
            hub.publish("host.updated", {"i": i})
            got.append(await fast.next() or "")  # fast keeps up

    await publish(0, 1, 2, 3, 4)
    assert len(got) == 5 and json.loads(got[-1])["data"] == {"i": 4}
    # slow has read nothing: the 5th message overflowed its queue of 4 -> reset to a resync
    assert slow.queue.qsize() == 1 and slow.resyncs == 1 and not slow.dropped
    await publish(5, 6, 7, 8)  # overflows again before reading the resync: back to it alone
    assert slow.queue.qsize() == 1 and slow.resyncs == 1
    assert await slow.next() == RESYNC  # it reads it: later messages queue up again
    await publish(9, 10)
    assert [json.loads(await slow.next() or "")["data"]["i"] for _ in range(2)] == [9, 10]
    await publish(11, 12, 13, 14, 15)  # a second episode
    assert slow.resyncs == 2 and slow in hub.subscribers
    now[0] += STUCK_AFTER_S  # a minute without reading its resync: stuck, dropped
    await publish(16, 17, 18, 19)
    assert slow.dropped and slow not in hub.subscribers
    assert [await slow.next(), await slow.next()] == [RESYNC, None]
    assert hub.stats()["dropped"] == 1 and fast in hub.subscribers and len(got) == 20


# --- over a real server ---------------------------------------------------------------------------


def test_anonymous_and_bad_tokens_are_refused_before_the_upgrade(
    alerting: Callable[..., Harness],
) -> None:
    h = alerting()
    with pytest.raises(InvalidStatus) as err:
        connect(ws_url(h), open_timeout=5)
    assert err.value.response.status_code == 401
    with pytest.raises(InvalidStatus) as err:
        connect(ws_url(h) + "?token=forged", open_timeout=5)
    assert err.value.response.status_code == 401
    with pytest.raises(InvalidStatus) as err:  # an agent may not read
        connect(ws_url(h), additional_headers={"X-API-Key": h.live.api_key("web-1")})
    assert err.value.response.status_code == 403


def test_stream_sends_host_alert_and_service_changes(alerting: Callable[..., Harness]) -> None:
    h = alerting()
    agent = h.live.agent("web-1")
    headers = {"Authorization": f"Bearer {h.live.token()}"}
    with (
        connect(ws_url(h), additional_headers=headers) as a,
        connect(ws_url(h), additional_headers={"Authorization": f"Bearer {h.live.token()}"}) as b,
    ):
        for ws in (a, b):
            assert recv_json(ws) == {"type": "hello", "data": {"reader": "admin", "queue": 1024}}
        agent.post("/api/metrics/report", json=make_report("web-1", cpu=97))
        for ws in (a, b):
            summary = HostSummary.model_validate(next_of(ws, "host.updated"))
            assert summary.host == "web-1" and summary.cpu_percent == 97
            fired = AlertPublic.model_validate(next_of(ws, "alert.triggered"))
            assert (fired.rule, fired.host, fired.state.value) == ("cpu", "web-1", "firing")
        agent.post("/api/metrics/report", json=make_report("web-1", cpu=3))
        summary = HostSummary.model_validate(next_of(a, "host.updated"))
        assert summary.cpu_percent == 3
        resolved = AlertPublic.model_validate(next_of(a, "alert.resolved"))
        assert resolved.id == fired.id and resolved.resolved_at is not None
        event = {"type": "SYSTEM_SERVICE_UNHEALTHY", "serviceName": "nginx", "errorMessage": "502"}
        agent.post("/api/events", json=event)
        raw = next_of(a, "service.changed")
        assert "lastCheck" in raw
        svc = ServiceHealth.model_validate(raw)
        assert (svc.name, svc.status.value, svc.host, svc.error) == (
            "nginx",
            "unhealthy",
            "web-1",
            "502",
        )


def test_server_stops_promptly_with_a_reader_connected(alerting: Callable[..., Harness]) -> None:
    h = alerting()
    with connect(ws_url(h), additional_headers={"Authorization": f"Bearer {h.live.token()}"}) as ws:
        recv_json(ws)
        t0 = time.monotonic()
        h.server.stop()
        assert time.monotonic() - t0 < 5
        with pytest.raises(Exception):  # noqa: B017  (closed by the server, any close code)
            ws.recv(timeout=5)


# --- a slow subscriber never slows ingest ---------------------------------------------------------


def raw_subscriber(h: Harness, token: str) -> socket.socket:
    """A WebSocket client on a tiny receive buffer that then stops reading."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", h.live.settings.status_port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            f"GET /api/stream HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
            "Upgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(1)
    assert head.startswith(b"HTTP/1.1 101"), head
    return sock


def read_until_resync(sock: socket.socket, timeout: float = 10.0) -> list[dict[str, Any]]:
    """Read text frames until a resync (or a close, or ``timeout``); returns them decoded."""
    sock.settimeout(timeout)
    buf = b""
    texts: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        chunk = sock.recv(1 << 20)
        if not chunk:
            break
        buf += chunk
        while len(buf) >= 10 or (len(buf) >= 2 and buf[1] & 0x7F < 126):
            opcode, n, at = buf[0] & 0x0F, buf[1] & 0x7F, 2
            if n == 126:
                (n,), at = struct.unpack(">H", buf[2:4]), 4
            elif n == 127:
                (n,), at = struct.unpack(">Q", buf[2:10]), 10
            if len(buf) < at + n:
                break
            payload, buf = buf[at : at + n], buf[at + n :]
            if opcode == 0x8:
                return texts
            if opcode == 0x1:
                texts.append(json.loads(payload))
                if texts[-1]["type"] == "resync":
                    return texts
    return texts


def send_buffer_max() -> int:
    """The most a kernel socket send buffer may grow to here (what a stuck reader can absorb)."""
    try:
        return int(Path("/proc/sys/net/ipv4/tcp_wmem").read_text().split()[2])
    except (OSError, IndexError, ValueError):
        return 4 << 20


def test_a_slow_subscriber_does_not_slow_ingest_and_is_told_to_resync(
    alerting: Callable[..., Harness],
) -> None:
    # Each round tracks 200 new services: this test is about a slow subscriber, not the caps.
    h = alerting(stream_queue=64, max_services_per_host=100_000)
    token = h.live.token()
    slow = raw_subscriber(h, token)
    fast_got: list[dict[str, Any]] = []
    ready = threading.Event()

    def fast_reader() -> None:
        bearer = {"Authorization": f"Bearer {token}"}
        with connect(ws_url(h), additional_headers=bearer, max_queue=None) as ws:
            ready.set()
            while True:
                msg = json.loads(ws.recv(timeout=10))
                fast_got.append(msg)
                if msg["type"] == "host.updated" and msg["data"]["cpu_percent"] == 99:
                    return

    reader = threading.Thread(target=fast_reader, daemon=True)
    reader.start()
    assert ready.wait(5)
    agent = h.live.agent("web-1")
    hub = h.server.ctx.alerting.hub
    # Batches of ~230 KB of service.changed messages fill what the kernel and the transport
    # will buffer for the stuck reader; the reports in between are the ingest we time.
    padding = {f"k{i}": "x" * 40 for i in range(20)}
    max_rounds = send_buffer_max() // (200 * 1100) + 10
    latencies: list[float] = []
    rounds = events = 0
    t0 = time.monotonic()
    while rounds < max_rounds and (hub.stats()["resyncs"] == 0 or rounds % 4):
        batch = [
            {"type": "SYSTEM_SERVICE_HEALTHY", "serviceName": f"s{rounds}-{i}", "metrics": padding}
            for i in range(200)
        ]
        events += agent.post("/api/events", json=batch).json()["changed"]
        for i in range(5):
            s = time.monotonic()
            r = agent.post("/api/metrics/report", json=make_report("web-1", cpu=10 + i))
            latencies.append(time.monotonic() - s)
            assert r.status_code == 200
        rounds += 1
    agent.post("/api/metrics/report", json=make_report("web-1", cpu=99))
    elapsed = time.monotonic() - t0
    reader.join(15)
    stats = hub.stats()
    kinds = [m["type"] for m in fast_got]
    assert stats["resyncs"] >= 1, stats  # the stuck reader overflowed ...
    assert max(latencies) < 1.0, max(latencies)  # ... and no report waited for it
    assert kinds.count("host.updated") == len(latencies) + 1  # the others missed nothing
    assert kinds.count("service.changed") == events == rounds * 200 and "resync" not in kinds
    texts = read_until_resync(slow)
    assert texts[-1] == {"type": "resync", "data": {}}
    assert len(texts) < len(fast_got)  # it missed messages, and was told so
    slow.close()
    mb = rounds * 200 * 1100 / 1e6
    print(
        f"\n{len(latencies)} reports beside a stuck reader ({mb:.1f} MB published),"
        f" max {max(latencies) * 1000:.0f} ms, {elapsed:.2f} s; {stats}"
    )
