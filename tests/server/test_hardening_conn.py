"""Issue 10 item 4: no one unauthenticated can hold the server's connections.

Real server on loopback, real TLS with certificates from our own PKI, raw sockets for the
misbehaving peers. Deadlines are shortened by settings; every wait is bounded and generous.
"""

from __future__ import annotations

import json
import select
import shutil
import socket
import ssl
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from statusdash.server.conns import ConnGuard
from statusdash.tlsclient import client_context
from tests.conftest import ADMIN_PASSWORD, RunningServer, TlsLive, make_report, make_settings

DEADLINE_S = 1.5
WAIT_S = 20.0  # far past the deadline: a loaded machine closes late, never early
CLOSED = (ConnectionError, ssl.SSLEOFError, ssl.SSLZeroReturnError)


def tls_live(tmp_path: Path, vault_template: Path, **over: Any) -> TlsLive:
    vault = tmp_path / "vault"
    shutil.copytree(vault_template, vault)
    settings = make_settings(
        tmp_path / "data",
        mtls_enabled=True,
        vault_path=vault,
        conn_header_timeout_s=DEADLINE_S,
        conn_handshake_timeout_s=DEADLINE_S,
        **over,
    )
    return TlsLive(RunningServer(settings).start(), vault=vault)


@pytest.fixture
def live(tmp_path: Path, vault_template: Path) -> Iterator[TlsLive]:
    server = tls_live(tmp_path, vault_template, conn_max_unauth_per_addr=3)
    try:
        yield server
    finally:
        server.server.stop()


def guard_of(live: TlsLive) -> ConnGuard:
    """The running server's connection guard (bound to its protocol class by the runner)."""
    assert live.server._server is not None
    guard = getattr(live.server._server.config.http_protocol_class, "guard", None)
    assert isinstance(guard, ConnGuard)
    return guard


def port_of(live: TlsLive) -> int:
    return live.settings.status_port


def tls_socket(live: TlsLive, name: str | None = None) -> ssl.SSLSocket:
    """A TLS connection with the handshake done, presenting ``clients/<name>`` if given."""
    clients = live.vault / "clients"
    ctx = client_context(
        live.vault / "ca" / "ca.crt",
        clients / f"{name}.crt" if name else None,
        clients / f"{name}.key" if name else None,
    )
    raw = socket.create_connection(("127.0.0.1", port_of(live)), timeout=WAIT_S)
    return ctx.wrap_socket(raw, server_hostname="127.0.0.1")


def closed_within(sock: socket.socket, seconds: float) -> bool:
    """True if the server closes ``sock`` within ``seconds`` (any bytes it sends are drained)."""
    end = time.monotonic() + seconds
    while (left := end - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            if not sock.recv(65536):
                return True
        except CLOSED:
            return True
        except TimeoutError:
            return False
    return False


def request(sock: socket.socket, path: str, extra: str = "") -> tuple[int, dict[str, str]]:
    """Send a GET on ``sock`` and read one response: (status, lower-cased headers)."""
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{extra}\r\n".encode())
    sock.settimeout(WAIT_S)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed before a response; got {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])}
    while len(body) < int(headers.get("content-length", "0")):
        body += sock.recv(65536)
    return int(lines[0].split()[1]), headers


def test_a_silent_tcp_connection_is_closed_at_the_handshake_deadline(live: TlsLive) -> None:
    with socket.create_connection(("127.0.0.1", port_of(live)), timeout=WAIT_S) as raw:
        started = time.monotonic()
        assert closed_within(raw, WAIT_S), "a peer that never says ClientHello was kept"
        assert time.monotonic() - started >= DEADLINE_S * 0.5


def test_a_silent_tls_connection_is_closed_at_the_header_deadline(live: TlsLive) -> None:
    with tls_socket(live) as sock:
        started = time.monotonic()
        assert closed_within(sock, WAIT_S), "a TLS peer that sends no request was kept"
        assert time.monotonic() - started >= DEADLINE_S * 0.5


def test_slowloris_is_closed_at_the_deadline_not_kept_alive_by_each_byte(live: TlsLive) -> None:
    header = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Pad: " + b"a" * 200 + b"\r\n\r\n"
    with tls_socket(live) as sock:
        sent = 0
        end = time.monotonic() + WAIT_S
        while sent < len(header) and time.monotonic() < end:
            try:
                sock.sendall(header[sent : sent + 1])
            except CLOSED:
                break
            sent += 1
            if select.select([sock], [], [], 0.25)[0] and closed_within(sock, 0.1):
                break
        assert sent < len(header), "a header dribbled a byte at a time was read to the end"
        assert closed_within(sock, WAIT_S)


def test_a_401_answer_closes_the_connection(live: TlsLive) -> None:
    with tls_socket(live) as sock:
        status, headers = request(sock, "/api/hosts")
        assert status == 401
        assert headers.get("connection") == "close"
        assert closed_within(sock, WAIT_S)


def test_a_403_answer_closes_the_connection(live: TlsLive) -> None:
    with tls_socket(live, "web-1") as sock:  # an agent may not read
        status, headers = request(sock, "/api/hosts")
        assert status == 403
        assert headers.get("connection") == "close"
        assert closed_within(sock, WAIT_S)


@pytest.mark.parametrize(("per_addr", "total"), [(3, 100), (100, 3)])
def test_anonymous_connections_past_the_cap_are_closed_and_agents_still_get_in(
    tmp_path: Path, vault_template: Path, per_addr: int, total: int
) -> None:
    live = tls_live(
        tmp_path, vault_template, conn_max_unauth_per_addr=per_addr, conn_max_unauth=total
    )
    held: list[ssl.SSLSocket] = []
    try:
        held = [tls_socket(live) for _ in range(3)]
        assert not any(closed_within(s, 0.3) for s in held), "connections under the cap are kept"
        with tls_socket(live) as extra:
            assert closed_within(extra, WAIT_S), "the 4th anonymous connection was kept"
        with live.client("web-1") as agent:
            r = agent.post("/api/metrics/report", json=make_report("web-1"))
            assert r.status_code == 200, r.text
        assert guard_of(live).refused >= 1
        for s in held:  # closing frees the slots: a new anonymous connection is served
            s.close()
        held = []
        deadline = time.monotonic() + WAIT_S
        while guard_of(live).anonymous_open and time.monotonic() < deadline:
            time.sleep(0.05)
        with tls_socket(live) as again:
            assert request(again, "/health")[0] == 200
    finally:
        for s in held:
            s.close()
        live.server.stop()


def test_an_authenticated_idle_connection_survives_past_the_header_deadline(
    live: TlsLive,
) -> None:
    with tls_socket(live, "web-1") as sock:
        assert not closed_within(sock, DEADLINE_S * 2.5), "an agent idle before its first request"
        assert request(sock, "/health")[0] == 200
        assert not closed_within(sock, DEADLINE_S * 2.5), "an agent idle between requests"
        assert request(sock, "/health")[0] == 200


def test_a_token_reader_is_lifted_out_of_the_anonymous_caps(live: TlsLive) -> None:
    with live.client(None) as anon:
        form = {"username": "admin", "password": ADMIN_PASSWORD}
        token = anon.post("/api/auth/token", data=form).json()["access_token"]
    with tls_socket(live) as sock:
        assert request(sock, "/api/hosts", f"Authorization: Bearer {token}\r\n")[0] == 200
        assert guard_of(live).anonymous_open == 0
        assert not closed_within(sock, DEADLINE_S * 2.5), "a reader idle between requests"
        assert request(sock, "/api/hosts", f"Authorization: Bearer {token}\r\n")[0] == 200


def test_plain_http_mode_runs_the_same_guard(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data", conn_header_timeout_s=DEADLINE_S)
    server = RunningServer(settings).start()
    try:
        with socket.create_connection(("127.0.0.1", settings.status_port), timeout=WAIT_S) as s:
            assert closed_within(s, WAIT_S), "a silent plain-HTTP connection was kept"
        with socket.create_connection(("127.0.0.1", settings.status_port), timeout=WAIT_S) as s:
            status, headers = request(s, "/api/hosts")
            assert (status, headers.get("connection")) == (401, "close")
    finally:
        server.stop()


def test_a_body_dribbled_after_its_headers_gets_408_and_the_connection_closed(
    tmp_path: Path, vault_template: Path
) -> None:
    live = tls_live(tmp_path, vault_template, conn_body_timeout_s=DEADLINE_S)
    try:
        body = json.dumps(make_report("web-1")).encode()
        head = (
            "POST /api/metrics/report HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        with tls_socket(live, "web-1") as sock:  # an agent: past the anonymous deadlines
            sock.sendall(head.encode() + body[:10])
            started = time.monotonic()
            sock.settimeout(WAIT_S)
            data = b""
            while b"\r\n\r\n" not in data and (chunk := sock.recv(65536)):
                data += chunk
            assert data.startswith(b"HTTP/1.1 408"), data[:200]
            assert b"CONN_BODY_TIMEOUT_S" in data or closed_within(sock, 1.0)
            assert time.monotonic() - started >= DEADLINE_S * 0.5
            assert closed_within(sock, WAIT_S), "the connection stayed open after the 408"
        # The same agent, sending its body at once, is stored.
        with live.client("web-1") as agent:
            r = agent.post("/api/metrics/report", json=make_report("web-1"))
            assert r.status_code == 200, r.text
    finally:
        live.server.stop()
