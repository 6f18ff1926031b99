"""Real mTLS handshakes against real uvicorn (uvloop + httptools) on a loopback port.

A tiny FastAPI app answers with what :func:`peer_identity` sees, checked against the denylist
as the server's auth dependency does. Refusals are told apart from HTTP answers: a refused
certificate gets no HTTP response at all, and the server records OpenSSL's reason.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import ssl
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI, Request, WebSocket
from fastapi.responses import JSONResponse
from websockets.sync.client import connect as ws_connect

from statusdash.pki.ca import init_ca, issue_client_cert, issue_server_cert, reissue_crl, revoke
from statusdash.pki.check import load_cert, utcnow
from statusdash.pki.vault import crl_needs_refresh, load_crl, paths
from statusdash.server.app import create_app
from statusdash.server.context import context_of
from statusdash.server.mtls import (
    MTLSHttpToolsProtocol,
    MTLSWebSocketsProtocol,
    ServerTLS,
    TlsSetupError,
    build_server_context,
    mtls_setup,
    peer_identity,
)
from statusdash.server.revocation import RevocationWatcher
from statusdash.settings import Settings
from statusdash.tlsclient import client_context
from tests.conftest import make_settings

pytestmark = pytest.mark.xdist_group("tls_handshake")


def make_app(tls: ServerTLS) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        async with tls.watcher.running():
            yield

    app = FastAPI(lifespan=lifespan)

    @app.get("/whoami")
    async def whoami(request: Request) -> Any:
        peer = peer_identity(request.scope)
        if peer is not None and tls.watcher.is_revoked(peer.serial):
            return JSONResponse({"error": "revoked", "detail": peer.cn}, status_code=401)
        client = request.scope["client"]
        ident = None if peer is None else {"cn": peer.cn, "role": peer.role, "serial": peer.serial}
        return {"peer": ident, "client_port": client[1]}

    @app.websocket("/stream")
    async def stream(websocket: WebSocket) -> None:
        await websocket.accept()
        peer = peer_identity(websocket.scope)
        await websocket.send_json({"cn": peer.cn if peer else None})
        await websocket.close()

    return app


@dataclass
class Live:
    tls: ServerTLS
    port: int
    server: uvicorn.Server
    thread: threading.Thread

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"


@pytest.fixture(scope="module")
def vault(tmp_path_factory: pytest.TempPathFactory) -> Path:
    v = tmp_path_factory.mktemp("tls") / "vault"
    now = utcnow()
    init_ca(v)
    issue_server_cert(v, ["localhost", "127.0.0.1"])
    issue_client_cert(v, "web01")
    issue_client_cert(v, "web02")
    issue_client_cert(v, "ops", "viewer")
    day = timedelta(days=1)
    issue_client_cert(v, "old", not_before=now - 9 * day, not_after=now - day)
    issue_client_cert(v, "future", not_before=now + day, not_after=now + 9 * day)
    issue_client_cert(v, "gone")
    revoke(v, "gone")
    other = v.parent / "other"
    init_ca(other)
    issue_client_cert(other, "web01")
    return v


def start(vault: Path, interval_s: float = 5.0, loop: str = "auto") -> Live:
    tls = ServerTLS(vault, watch_interval_s=interval_s)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(
        make_app(tls), loop=loop, log_level="warning", lifespan="on", **tls.uvicorn_kwargs()
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "server did not start"
        time.sleep(0.02)
    return Live(tls, sock.getsockname()[1], server, thread)


def stop(live: Live) -> None:
    live.server.should_exit = True
    live.thread.join(10)
    assert not live.thread.is_alive()


@pytest.fixture(scope="module")
def live(vault: Path) -> Iterator[Live]:
    srv = start(vault)
    yield srv
    stop(srv)


def ctx_for(
    vault: Path, name: str | None = None, *, ca_vault: Path | None = None
) -> ssl.SSLContext:
    """A client context trusting ``vault``'s CA with the client cert ``name`` of ``ca_vault``."""
    src = paths(ca_vault or vault)
    if name is None:
        return client_context(paths(vault).ca_cert)
    return client_context(paths(vault).ca_cert, src.client_cert(name), src.client_key(name))


def raw_request(port: int, ctx: ssl.SSLContext) -> str:
    """The HTTP status line, or 'refused: ...' if TLS ended the connection without an answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        try:
            with ctx.wrap_socket(sock, server_hostname="127.0.0.1") as tls:
                tls.sendall(b"GET /whoami HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
                data = tls.recv(65536)
        except (ssl.SSLError, ConnectionResetError, BrokenPipeError) as exc:
            return f"refused: {exc}"
    return data.split(b"\r\n", 1)[0].decode() if data else "refused: eof"


def test_good_agent_is_accepted_and_identified(vault: Path, live: Live) -> None:
    serial = load_cert(paths(vault).client_cert("web01")).serial_number
    with httpx.Client(base_url=live.url, verify=ctx_for(vault, "web01")) as client:
        answers = [client.get("/whoami").json() for _ in range(3)]
    assert answers[0]["peer"] == {"cn": "web01", "role": "agent", "serial": serial}
    assert len({a["client_port"] for a in answers}) == 1, "one kept-alive connection"
    assert all(a == answers[0] for a in answers)


def test_viewer_identity(vault: Path, live: Live) -> None:
    r = httpx.get(f"{live.url}/whoami", verify=ctx_for(vault, "ops"))
    assert r.status_code == 200
    assert r.json()["peer"]["cn"] == "ops"
    assert r.json()["peer"]["role"] == "viewer"


def test_no_certificate_passes_tls_but_has_no_identity(vault: Path, live: Live) -> None:
    r = httpx.get(f"{live.url}/whoami", verify=ctx_for(vault))
    assert r.status_code == 200
    assert r.json()["peer"] is None


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("old", "certificate has expired"),
        ("future", "certificate is not yet valid"),
        ("gone", "certificate revoked"),
        ("other-ca", "unable to get local issuer certificate"),
        ("server-cert", "unsuitable certificate purpose"),
    ],
)
def test_bad_certificates_are_refused_at_the_handshake(
    vault: Path, live: Live, name: str, reason: str
) -> None:
    p = paths(vault)
    if name == "other-ca":
        ctx = ctx_for(vault, "web01", ca_vault=vault.parent / "other")
    elif name == "server-cert":
        ctx = client_context(p.ca_cert, p.server_cert, p.server_key)
    else:
        ctx = ctx_for(vault, name)
    live.tls.refusals.clear()
    assert raw_request(live.port, ctx).startswith("refused")
    assert list(live.tls.refusals) == [reason]
    # What the agent sees: no TLS alert, no HTTP answer, just a disconnect.
    with pytest.raises(httpx.RemoteProtocolError, match="disconnected"):
        httpx.get(f"{live.url}/whoami", verify=ctx)
    assert raw_request(live.port, ctx_for(vault, "web01")) == "HTTP/1.1 200 OK"


def test_websocket_sees_the_identity(vault: Path, live: Live) -> None:
    with ws_connect(f"wss://127.0.0.1:{live.port}/stream", ssl=ctx_for(vault, "ops")) as ws:
        assert ws.recv(timeout=5) == '{"cn":"ops"}'


def test_revocation_reaches_open_connections_and_new_handshakes(
    vault: Path, tmp_path: Path
) -> None:
    v = tmp_path / "vault"
    shutil.copytree(vault, v)
    srv = start(v, interval_s=0.05)
    try:
        serial = load_cert(paths(v).client_cert("web01")).serial_number
        with httpx.Client(base_url=srv.url, verify=ctx_for(v, "web01")) as client:
            first = client.get("/whoami")
            assert first.status_code == 200
            revoke(v, "web01")  # as `statusdash certs revoke web01` would, on disk
            deadline = time.monotonic() + 5
            while not srv.tls.watcher.is_revoked(serial):
                assert time.monotonic() < deadline, "the watcher never picked up the new CRL"
                time.sleep(0.02)
            again = client.get("/whoami")  # same kept-alive connection: TLS does not re-check
            assert again.status_code == 401
            assert again.json() == {"error": "revoked", "detail": "web01"}
            assert client.get("/whoami").status_code == 401
        srv.tls.refusals.clear()
        assert raw_request(srv.port, ctx_for(v, "web01")).startswith("refused")
        assert list(srv.tls.refusals) == ["certificate revoked"]  # reloaded CRL, no restart
        assert raw_request(srv.port, ctx_for(v, "web02")) == "HTTP/1.1 200 OK"
    finally:
        stop(srv)


def test_plain_asyncio_loop_works_the_same(vault: Path) -> None:
    srv = start(vault, loop="asyncio")  # the SSL transport is asyncio's, not uvloop's
    try:
        r = httpx.get(f"{srv.url}/whoami", verify=ctx_for(vault, "web01"))
        assert r.json()["peer"]["cn"] == "web01"
        assert raw_request(srv.port, ctx_for(vault, "gone")).startswith("refused")
        assert list(srv.tls.refusals) == ["certificate revoked"]
    finally:
        stop(srv)


def test_watcher_reissues_a_crl_near_expiry(vault: Path, tmp_path: Path) -> None:
    v = tmp_path / "vault"
    shutil.copytree(vault, v)
    reissue_crl(v, timedelta(hours=12))
    ctx = build_server_context(v, refresh_crl=False)
    watcher = RevocationWatcher(v)
    watcher.attach(ctx)
    assert watcher.check_now()
    assert watcher.next_update is not None
    assert watcher.next_update - utcnow() > timedelta(days=6)
    assert load_crl(v).next_update_utc == watcher.next_update
    assert watcher.denylist == {load_cert(paths(v).client_cert("gone")).serial_number}
    assert not watcher.check_now(), "nothing changed, nothing reloaded"


async def test_watcher_keeps_its_denylist_through_a_bad_crl(
    vault: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    v = tmp_path / "vault"
    shutil.copytree(vault, v)
    watcher = RevocationWatcher(v, interval_s=0.01, reissue=False)
    watcher.check_now()
    gone = load_cert(paths(v).client_cert("gone")).serial_number
    assert watcher.denylist == {gone}
    paths(v).crl.write_text("garbage")
    async with watcher.running():
        await asyncio.sleep(0.1)
    assert watcher.denylist == {gone}, "a bad read never shrinks the denylist"
    assert "revocation check failed" in caplog.text
    # With the CA key and re-issuing allowed, the watcher repairs the CRL from revoked.json.
    repairing = RevocationWatcher(v)
    assert repairing.check_now()
    assert repairing.denylist == {gone}
    assert load_crl(v).get_revoked_certificate_by_serial_number(gone) is not None


def test_startup_refreshes_an_expired_crl_when_the_ca_key_is_here(
    vault: Path, tmp_path: Path
) -> None:
    v = tmp_path / "vault"
    shutil.copytree(vault, v)
    reissue_crl(v, timedelta(hours=1), now=utcnow() - timedelta(hours=2))
    build_server_context(v)
    assert not crl_needs_refresh(v)
    reissue_crl(v, timedelta(hours=1), now=utcnow() - timedelta(hours=2))
    paths(v).ca_key.unlink()  # a server host without the CA key cannot fix it
    with pytest.raises(TlsSetupError, match=r"expired.*every client certificate"):
        build_server_context(v)


@pytest.mark.parametrize(
    ("missing", "hint"),
    [("ca/crl.pem", "without a CRL"), ("server/status.crt", "statusdash certs server")],
)
def test_setup_errors_say_what_to_run(vault: Path, tmp_path: Path, missing: str, hint: str) -> None:
    v = tmp_path / "vault"
    shutil.copytree(vault, v)
    (v / "ca" / "ca.key").unlink()
    (v / missing).unlink()
    with pytest.raises(TlsSetupError, match=hint):
        ServerTLS(v)


async def test_mtls_setup_wires_auth_and_the_lifespan(vault: Path, tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data", vault_path=vault, mtls_enabled=True)
    app = create_app(settings)
    kwargs = mtls_setup(settings, app)
    ctx = context_of(app)
    assert ctx.tls is not None
    assert kwargs["http"] is MTLSHttpToolsProtocol
    assert kwargs["ws"] is MTLSWebSocketsProtocol
    assert kwargs["ssl_context_factory"](None, None) is ctx.tls.context
    assert ctx.auth.peer_identity is peer_identity
    gone = load_cert(paths(vault).client_cert("gone")).serial_number
    assert ctx.auth.is_revoked(gone)
    watcher = ctx.tls.watcher
    async with app.router.lifespan_context(app):
        assert watcher._task is not None and not watcher._task.done()
    assert watcher._task is None
    empty = tmp_path / "empty"
    with pytest.raises(ValueError, match="statusdash certs init"):  # what runner.py catches
        mtls_setup(Settings(vault_path=empty), app)


def test_peer_identity_without_tls_or_with_native_extension(vault: Path) -> None:
    assert peer_identity({"type": "http"}) is None
    assert peer_identity({"type": "http", "extensions": {"tls": {"client_cert_chain": []}}}) is None
    pem = paths(vault).client_cert("ops").read_text()
    tls: dict[str, Any] = {"client_cert_chain": (c for c in [pem])}  # spec: any iterable
    ident = peer_identity({"extensions": {"tls": tls}})
    assert ident is not None
    assert (ident.cn, ident.role) == ("ops", "viewer")
    assert peer_identity({"extensions": {"tls": tls}}) is ident  # cached per connection
