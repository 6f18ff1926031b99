"""Issue 10 item 4 (a reconnect storm is served, not cut): TLS accepts paced by the loop's lag.

A real ``PacedServer`` on a loopback socket with our own PKI's server certificate, on the
product's loop class (uvloop), and real TLS clients. The storm itself is measured by
``python -m bench.conns --agents 2000 --anonymous 0 --handshakes 2000``; here, the gate's
rules: no accepts while the loop runs late (a trickle only), all of them once it keeps up
again, and handshakes in flight never past the cap.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from pathlib import Path

from statusdash.server.accept import TRICKLE, PacedServer, listening_socket
from statusdash.server.conns import loop_factory
from statusdash.tlsclient import client_context
from tests.conftest import make_settings


class _Echo(asyncio.Protocol):
    """Answers ``ok`` to whoever completed the handshake, then closes."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport.write(b"ok")  # type: ignore[attr-defined]
        transport.close()


def _server_ctx(vault: Path) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(vault / "server" / "status.crt", vault / "server" / "status.key")
    return ctx


async def _client(port: int, vault: Path) -> bytes:
    ctx = client_context(vault / "ca" / "ca.crt", None, None)
    reader, writer = await asyncio.wait_for(
        asyncio.open_connection("127.0.0.1", port, ssl=ctx, server_hostname="localhost"), 30
    )
    try:
        return await asyncio.wait_for(reader.read(), 30)
    finally:
        writer.close()


def _run(coro_fn: object, tmp_path: Path) -> None:
    loop_cls = loop_factory(make_settings(tmp_path / "data"))
    loop = loop_cls()
    try:
        loop.run_until_complete(coro_fn)  # type: ignore[arg-type]
    finally:
        loop.close()


def test_no_accepts_while_the_loop_runs_late_then_all_of_them(
    tmp_path: Path, vault_template: Path
) -> None:
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        server = PacedServer(
            loop,
            _Echo,
            listening_socket("127.0.0.1", 0, 128),
            _server_ctx(vault_template),
            handshake_timeout_s=30,
            max_lag_s=0.05,
            max_handshakes=1000,
        )
        port = server.sockets[0].getsockname()[1]
        assert await _client(port, vault_template) == b"ok"  # a loop on time accepts at once
        busy = True

        async def hog() -> None:  # a loop that runs late: 0.2 s of blocking every 0.21 s
            while busy:
                time.sleep(0.2)
                await asyncio.sleep(0.01)

        hogging = loop.create_task(hog())
        await asyncio.sleep(0.5)
        before = server.accepted
        clients = [loop.create_task(_client(port, vault_template)) for _ in range(40)]
        await asyncio.sleep(2.0)
        during = server.accepted - before
        assert server.paused_s > 0.5, "the gate never closed while the loop ran late"
        # Paused, the server takes only a trickle per probe (a probe per blocked stretch here).
        assert during <= TRICKLE * 20, f"{during} of 40 accepted while the loop ran late"
        busy = False
        await hogging
        answers = await asyncio.gather(*clients)
        assert answers == [b"ok"] * 40, "a connection that waited in the backlog was lost"
        server.close()
        await server.wait_closed()
        assert not server.is_serving() and server.sockets == ()

    _run(scenario(), tmp_path)


def test_handshakes_in_flight_never_pass_the_cap(tmp_path: Path, vault_template: Path) -> None:
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        server = PacedServer(
            loop,
            _Echo,
            listening_socket("127.0.0.1", 0, 128),
            _server_ctx(vault_template),
            handshake_timeout_s=30,
            max_lag_s=10.0,
            max_handshakes=3,
        )
        port = server.sockets[0].getsockname()[1]
        peak = 0

        async def watch() -> None:
            nonlocal peak
            while True:
                peak = max(peak, server.in_handshake)
                await asyncio.sleep(0)

        watcher = loop.create_task(watch())
        answers = await asyncio.gather(*(_client(port, vault_template) for _ in range(30)))
        watcher.cancel()
        assert answers == [b"ok"] * 30
        assert 1 <= peak <= 3
        server.close()
        await server.wait_closed()

    _run(scenario(), tmp_path)
