"""How long SIGTERM takes to end a busy server: 20 stream readers, 50 agents, slow clients.

``python -m bench --only shutdown`` (or ``python -m bench.shutdown``): the real
``statusdash server run`` in its own process, with mTLS and certificates from our own PKI, gets
20 WebSocket subscribers (viewer certificate), 50 agents posting reports over kept-alive
connections (each its own client certificate) and two slow clients (one dribbling its headers,
one its body); then SIGTERM, and the time until the process has exited. Three rounds on the same
data directory; the median and the range are printed. Every loop is bounded in count and time.

:class:`ServerProc` and :func:`shutdown_round` are what ``tests/server/test_ops_shutdown.py``
and ``tests/server/test_ops_restart.py`` use too.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from bench.payload import Template

ROOT = Path(__file__).resolve().parent.parent
EXIT_BOUND_S = 5.0  # the issue's bound: SIGTERM ends the server within this
SUBSCRIBERS = 20
AGENTS = 50
ROUNDS = 3
AGENT_PAUSE_S = 0.2  # between one agent's reports: ~250 reports/s from 50 agents
MAX_REPORTS = 2_000  # per agent and round, whatever happens
LOAD_S = 3.0  # load before SIGTERM


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def provision(vault: Path, hosts: list[str]) -> None:
    """CA, server certificate, an agent certificate per host and a viewer (our own PKI)."""
    from statusdash.pki.ca import init_ca, issue_client_cert, issue_server_cert

    init_ca(vault)
    issue_server_cert(vault, ["localhost", "127.0.0.1"])
    for h in hosts:
        issue_client_cert(vault, h, "agent")
    issue_client_cert(vault, "viewer", "viewer")


def client_ssl(vault: Path, name: str | None) -> ssl.SSLContext:
    from statusdash.tlsclient import client_context

    clients = vault / "clients"
    cert, key = (clients / f"{name}.crt", clients / f"{name}.key") if name else (None, None)
    return client_context(vault / "ca" / "ca.crt", cert, key)


@dataclass
class ServerProc:
    """``statusdash server run`` (mTLS) as a process: started, stopped by a signal, restarted
    on the same data directory and port. ``env`` adds settings (ALERT_START_GRACE_S, ...)."""

    work: Path
    vault: Path
    env: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def data(self) -> Path:
        return self.work / "data"

    @property
    def log(self) -> Path:
        return self.work / "server.log"

    def environ(self) -> dict[str, str]:
        drop = ("STATUSDASH_", "STATUS_", "API_KEY", "VAULT_PATH", "MTLS_", "ALERT_", "WEBHOOK_")
        env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
        env.update(
            STATUS_ADMIN_PASSWORD="bench-admin-password-123",
            STATUS_JWT_SECRET="bench-jwt-secret-" + "0123456789abcdef" * 3,
            DB_SYNCHRONOUS="NORMAL",
            INGEST_MAX_REPORTS_PER_INTERVAL="10000",
        )
        env.update(self.env)
        return env

    def start(self, timeout: float = 60.0) -> None:
        """Start it and wait (bounded) until ``/health`` answers."""
        cmd = [sys.executable, "-m", "statusdash.cli", "server", "run", "--port", str(self.port)]
        cmd += ["--data-dir", str(self.data), "--certs-dir", str(self.vault)]
        self.starts += 1
        with self.log.open("ab") as out:
            out.write(f"--- start {self.starts}\n".encode())
            out.flush()
            self.proc = subprocess.Popen(
                cmd, cwd=self.work, env=self.environ(), stdout=out, stderr=subprocess.STDOUT
            )
        ctx = client_ssl(self.vault, None)
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited at start:\n{self.log_tail()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/health", verify=ctx, timeout=2).status_code == 200:
                    return
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"the server did not start:\n{self.log_tail()}")
            time.sleep(0.1)

    def signal_exit(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> float:
        """Send ``sig``; the seconds until the process has exited (killed past ``timeout``)."""
        assert self.proc is not None
        t0 = time.monotonic()
        self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise RuntimeError(f"the server ignored signal {sig} for {timeout:.0f} s") from None
        return time.monotonic() - t0

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def log_tail(self, lines: int = 20) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        return ""


@dataclass
class RoundResult:
    """One SIGTERM under load: how long it took and what the clients saw."""

    exit_s: float
    close_codes: list[int | None]  # one per subscriber
    acked: dict[str, list[str]]  # host -> report ids the server acknowledged
    failed_after_term: int  # agents whose connection ended after SIGTERM (the server went)
    slow_cut: int  # slow clients whose connection the server ended


@dataclass
class Countdown:
    """Set once ``n`` parties have arrived."""

    n: int
    event: asyncio.Event = field(default_factory=asyncio.Event)

    def arrive(self) -> None:
        self.n -= 1
        if self.n <= 0:
            self.event.set()


async def _subscriber(url: str, ctx: ssl.SSLContext, ready: Countdown) -> int | None:
    """One stream reader; the close code the server sent (None: closed without one)."""
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed

    async with asyncio.timeout(120), connect(url, ssl=ctx, open_timeout=30, proxy=None) as ws:
        await ws.recv()  # hello
        ready.arrive()
        with contextlib.suppress(ConnectionClosed):
            async for _ in ws:
                pass
        return ws.close_code


async def _agent(
    url: str, ctx: ssl.SSLContext, host: str, term: asyncio.Event, acked: list[str], out: list[int]
) -> None:
    tpl = Template(host)
    start = datetime.now(UTC) - timedelta(hours=1)
    headers = {"Content-Type": "application/json"}
    async with httpx.AsyncClient(base_url=url, verify=ctx, timeout=30) as client:
        for i in range(MAX_REPORTS):
            rid = uuid.uuid4()
            body = tpl.render(rid, start + timedelta(seconds=i))
            try:
                resp = await client.post("/api/metrics/report", content=body, headers=headers)
            except httpx.HTTPError:
                if term.is_set():
                    out.append(1)
                    return
                raise
            if resp.status_code == 200:
                ack = resp.json()
                if ack.get("accepted", 0) + ack.get("duplicates", 0) == 1:
                    acked.append(str(rid))
            elif term.is_set():
                return
            else:
                raise RuntimeError(f"{host}: HTTP {resp.status_code} {resp.text[:200]}")
            await asyncio.sleep(AGENT_PAUSE_S)  # on after SIGTERM, until the server is gone


async def _slow(port: int, ctx: ssl.SSLContext, body: bool) -> bool:
    """A client that dribbles its headers (or, ``body``, a POST's body); True once cut."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=ctx)
    head = f"POST /api/metrics/report HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
    if body:
        head += "Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n{"
    else:
        head += "X-Slow: "
    writer.write(head.encode())
    async with asyncio.timeout(60):
        while True:
            try:
                writer.write(b" " if body else b"a")
                await writer.drain()
                if await asyncio.wait_for(reader.read(1024), 0.5) == b"":
                    return True
            except TimeoutError:
                continue
            except (ConnectionError, ssl.SSLError):
                return True


async def _deaf(port: int, ctx: ssl.SSLContext, term: asyncio.Event) -> bool:
    """A stream reader that upgrades, then never reads nor answers a close; True once cut."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=ctx)
    key = "dGhlIHNhbXBsZSBub25jZQ=="
    head = f"GET /api/stream HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
    head += f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
    writer.write(head.encode() + b"\r\n")
    async with asyncio.timeout(60):
        assert b" 101 " in await reader.readuntil(b"\r\n\r\n")
        await term.wait()  # read nothing until the SIGTERM, then only to see the end
        with contextlib.suppress(ConnectionError, ssl.SSLError):
            while await reader.read(65536):
                pass
    return True


async def shutdown_round(
    server: ServerProc, hosts: list[str], subscribers: int, slow: bool = True
) -> RoundResult:
    """Connect everyone to ``server`` (running), let it work ``LOAD_S``, SIGTERM, wait for exit."""
    loop = asyncio.get_running_loop()
    viewer = client_ssl(server.vault, "viewer")
    ready = Countdown(subscribers)
    ws_url = f"wss://127.0.0.1:{server.port}/api/stream"
    subs = [asyncio.create_task(_subscriber(ws_url, viewer, ready)) for _ in range(subscribers)]
    async with asyncio.timeout(60):
        await ready.event.wait()
    term = asyncio.Event()
    acked: dict[str, list[str]] = {h: [] for h in hosts}
    cut: list[int] = []
    agents = [
        asyncio.create_task(_agent(server.url, client_ssl(server.vault, h), h, term, acked[h], cut))
        for h in hosts
    ]
    slow_tasks = []
    if slow:
        anon, agent = client_ssl(server.vault, None), client_ssl(server.vault, hosts[0])
        slow_tasks = [  # headers: anonymous so far; a body: past the guard, the route waits
            asyncio.create_task(_slow(server.port, anon, False)),
            asyncio.create_task(_slow(server.port, agent, True)),
            asyncio.create_task(_deaf(server.port, viewer, term)),
        ]
    await asyncio.sleep(LOAD_S)
    for t in agents:
        if t.done():
            t.result()  # an agent that failed before SIGTERM: the round is not valid
    term.set()
    exit_s = await loop.run_in_executor(None, server.signal_exit)
    codes = await asyncio.gather(*subs, return_exceptions=True)
    await asyncio.gather(*agents)
    slow_cut = sum(
        1 for r in await asyncio.gather(*slow_tasks, return_exceptions=True) if r is True
    )
    return RoundResult(
        exit_s,
        [c if isinstance(c, int) else None for c in codes],
        acked,
        len(cut),
        slow_cut,
    )


def run(
    subscribers: int = SUBSCRIBERS, agents: int = AGENTS, rounds: int = ROUNDS
) -> dict[str, Any]:
    hosts = [f"agent-{i:03d}" for i in range(agents)]
    with tempfile.TemporaryDirectory(prefix="statusdash-shutdown-") as tmp:
        work = Path(tmp)
        provision(work / "vault", hosts)
        server = ServerProc(work, work / "vault")
        results: list[RoundResult] = []
        try:
            for i in range(rounds):
                server.start()
                r = asyncio.run(shutdown_round(server, hosts, subscribers))
                results.append(r)
                codes = sorted({c or 0 for c in r.close_codes})
                print(
                    f"    round {i + 1}: exit {r.exit_s:.2f} s after SIGTERM, subscriber close"
                    f" codes {codes}, {sum(map(len, r.acked.values()))} reports acked,"
                    f" {r.failed_after_term} agents disconnected, {r.slow_cut}/3 slow clients cut",
                    flush=True,
                )
        finally:
            server.kill()
    times = [r.exit_s for r in results]
    return {
        "subscribers": subscribers,
        "agents": agents,
        "exit_s_median": round(statistics.median(times), 2),
        "exit_s_min": round(min(times), 2),
        "exit_s_max": round(max(times), 2),
        "exit_within_5s_ok": max(times) <= EXIT_BOUND_S,
        "going_away_ok": all(c == 1001 for r in results for c in r.close_codes),
    }


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
