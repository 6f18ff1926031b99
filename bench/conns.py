"""Connections benchmark: N kept-alive mTLS agents are all served while M anonymous idlers are cut.

``python -m bench.conns --agents 2000 --anonymous 200`` issues N agent certificates with our own
PKI (``bench.serve.provision``), starts the real server (``statusdash server run``, which raises
its open-file limit) on loopback, connects every agent (each its own certificate and one
kept-alive connection; a report at once, then one per ``--interval`` seconds), then opens M
TLS connections without a certificate that send nothing. It reports how many agents were served,
their latency, when the anonymous connections were closed (at once past the per-address cap, at
CONN_HEADER_TIMEOUT_S otherwise), the server's RSS and how long each phase took. Bounded: at
most 20,000 agents and 5,000 anonymous connections, every wait has a deadline, and the whole run
stops at ``--time-limit``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import secrets
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.loadgen import Client
from bench.payload import Template
from bench.serve import provision

MAX_AGENTS = 20_000
MAX_ANONYMOUS = 5_000
SPLIT_S = 5.0  # an anonymous connection cut sooner was refused by a cap, later by the deadline
REPORT_PATH = "/api/metrics/report"
SRC = Path(__file__).resolve().parent.parent / "src"


@dataclass
class Tally:
    """What the agents and the anonymous connections saw."""

    connected: int = 0
    connect_failed: int = 0
    ok: int = 0
    refused: dict[str, int] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)
    anon_closed_at: list[float] = field(default_factory=list)
    anon_open_at_end: int = 0
    anon_connect_failed: int = 0
    expected: int = 0
    all_in: asyncio.Event = field(default_factory=asyncio.Event)

    def settled(self) -> None:
        """One more agent connected or failed to: set ``all_in`` when all have."""
        if self.connected + self.connect_failed >= self.expected:
            self.all_in.set()


def _raise_nofile() -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value)
    await reader.readexactly(length)
    return int(lines[0].split()[1])


async def _agent(
    client: Client,
    ca: str,
    port: int,
    gate: asyncio.Semaphore,
    stop_at: float,
    interval_s: float,
    tally: Tally,
) -> None:
    ctx = ssl.create_default_context(cafile=ca)
    assert client.cert and client.key
    ctx.load_cert_chain(client.cert, client.key)
    template = Template(client.host)
    try:
        async with gate:  # bound the handshakes in flight (the listen backlog is finite)
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection("127.0.0.1", port, ssl=ctx, server_hostname="127.0.0.1"),
                60,
            )
    except (OSError, TimeoutError, ssl.SSLError):
        tally.connect_failed += 1
        tally.settled()
        return
    tally.connected += 1
    tally.settled()
    loop = asyncio.get_running_loop()
    try:
        while True:
            body = template.render(uuid.uuid4(), datetime.now(UTC))
            request = (
                f"POST {REPORT_PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
            ).encode() + body
            t0 = loop.time()
            writer.write(request)
            status = await asyncio.wait_for(_read_response(reader), 60)
            if tally.all_in.is_set():  # steady state: every agent is connected
                tally.latencies.append(loop.time() - t0)
            if status == 200:
                tally.ok += 1
            else:
                tally.refused[str(status)] = tally.refused.get(str(status), 0) + 1
            if loop.time() + interval_s > stop_at:
                return
            await asyncio.sleep(interval_s)
    except (OSError, TimeoutError, asyncio.IncompleteReadError, ssl.SSLError) as exc:
        name = type(exc).__name__
        tally.refused[name] = tally.refused.get(name, 0) + 1
    finally:
        writer.close()


async def _anonymous(ca: str, port: int, wait_s: float, tally: Tally) -> None:
    """An anonymous TLS connection that sends nothing: how long after its handshake it is cut."""
    ctx = ssl.create_default_context(cafile=ca)
    loop = asyncio.get_running_loop()
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection("127.0.0.1", port, ssl=ctx, server_hostname="127.0.0.1"), 60
        )
    except (OSError, TimeoutError, ssl.SSLError):
        tally.anon_connect_failed += 1
        return
    connected = loop.time()
    try:
        await asyncio.wait_for(reader.read(), wait_s)  # b"" when the server closes
        tally.anon_closed_at.append(loop.time() - connected)
    except TimeoutError:
        tally.anon_open_at_end += 1
    except (OSError, ssl.SSLError):
        tally.anon_closed_at.append(loop.time() - connected)
    finally:
        writer.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _fd_limit(pid: int) -> str:
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max open files"):
            return line.split()[3]
    return "?"


def _start_server(
    data: Path, port: int, preexec: Callable[[], None] | None = None
) -> subprocess.Popen[bytes]:
    """The real server on ``port`` (its log appended to ``data/server.log``); ``preexec`` runs in
    the child before it starts (bench.fleet pins it to its CPUs there)."""
    env = {
        **os.environ,
        "PYTHONPATH": str(SRC),
        "STATUS_ADMIN_PASSWORD": secrets.token_urlsafe(18),
        "STATUS_JWT_SECRET": secrets.token_urlsafe(48),
        "DB_SYNCHRONOUS": "NORMAL",
    }
    cmd = [sys.executable, "-m", "statusdash.cli", "server", "run", "--bind", "127.0.0.1"]
    cmd += ["--port", str(port), "--data-dir", str(data), "--certs-dir", str(data / "vault")]
    cmd += ["--log-level", "warning"]
    log = (data / "server.log").open("ab")
    return subprocess.Popen(
        cmd, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=data, preexec_fn=preexec
    )


async def _wait_up(ca: str, port: int, proc: subprocess.Popen[bytes], limit_s: float) -> None:
    ctx = ssl.create_default_context(cafile=ca)
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("the server exited; see server.log")
        try:
            _, w = await asyncio.open_connection(
                "127.0.0.1", port, ssl=ctx, server_hostname="127.0.0.1"
            )
            w.close()
            return
        except OSError:
            await asyncio.sleep(0.2)
    raise RuntimeError("the server did not come up")


async def _measure(
    clients: list[Client],
    ca: str,
    port: int,
    proc: subprocess.Popen[bytes],
    args: argparse.Namespace,
) -> dict[str, Any]:
    await _wait_up(ca, port, proc, 60)
    tally = Tally(expected=len(clients))
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    gate = asyncio.Semaphore(args.handshakes)
    stop_at = t0 + args.time_limit
    agents = [
        asyncio.create_task(_agent(c, ca, port, gate, stop_at, args.interval, tally))
        for c in clients
    ]
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(tally.all_in.wait(), args.time_limit)
    connect_s = loop.time() - t0
    steady_until = min(stop_at, loop.time() + args.steady)
    wait_s = max(1.0, steady_until - loop.time())
    anon = [asyncio.create_task(_anonymous(ca, port, wait_s, tally)) for _ in range(args.anonymous)]
    await asyncio.sleep(max(0.0, steady_until - loop.time() - 1))
    rss = _rss_mib(proc.pid)
    if anon:
        await asyncio.wait(anon, timeout=wait_s + 30)
    for task in agents:  # the steady phase is over: stop the agents between reports
        task.cancel()
    await asyncio.gather(*agents, return_exceptions=True)
    lat = sorted(tally.latencies)
    closed = sorted(tally.anon_closed_at)
    return {
        "agents": len(clients),
        "connected": tally.connected,
        "connect_failed": tally.connect_failed,
        "connect_s": round(connect_s, 1),
        "reports_ok": tally.ok,
        "refused": tally.refused,
        "p50_ms": round(1000 * statistics.median(lat), 1) if lat else None,
        "p99_ms": round(1000 * lat[int(0.99 * (len(lat) - 1))], 1) if lat else None,
        "anonymous": args.anonymous,
        "anon_cut_at_once": sum(1 for c in closed if c < SPLIT_S),
        "anon_cut_at_deadline": sum(1 for c in closed if c >= SPLIT_S),
        "anon_latest_close_s": round(closed[-1], 1) if closed else None,
        "anon_open_at_end": tally.anon_open_at_end,
        "anon_connect_failed": tally.anon_connect_failed,
        "server_rss_mib": round(rss, 1),
        "server_rss_kib_per_agent": round(rss * 1024 / max(1, tally.connected), 1),
        "server_fd_limit": _fd_limit(proc.pid),
    }


def run(
    agents: int = 2000,
    anonymous: int = 200,
    interval: float = 10.0,
    steady: float = 25.0,
    handshakes: int = 64,
    time_limit: float = 600.0,
) -> dict[str, Any]:
    """One run; figures as a dict (``python -m bench`` style)."""
    if not 1 <= agents <= MAX_AGENTS or not 0 <= anonymous <= MAX_ANONYMOUS:
        raise ValueError(f"agents 1..{MAX_AGENTS}, anonymous 0..{MAX_ANONYMOUS}")
    args = argparse.Namespace(
        anonymous=anonymous,
        interval=interval,
        steady=steady,
        handshakes=handshakes,
        time_limit=time_limit,
    )
    _raise_nofile()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bench-conns-") as tmp:
        data = Path(tmp)
        clients, ca = provision(data, [f"agent-{i:05d}" for i in range(agents)], tls=True)
        assert ca is not None
        provision_s = time.monotonic() - started
        port = _free_port()
        proc = _start_server(data, port)
        try:
            import uvloop

            figures = uvloop.run(_measure(clients, ca, port, proc, args))
        finally:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
    figures["provision_s"] = round(provision_s, 1)
    figures["total_s"] = round(time.monotonic() - started, 1)
    return figures


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.conns", description=__doc__)
    ap.add_argument("--agents", type=int, default=2000)
    ap.add_argument("--anonymous", type=int, default=200)
    ap.add_argument(
        "--interval", type=float, default=10.0, help="seconds between an agent's reports"
    )
    ap.add_argument("--steady", type=float, default=25.0, help="seconds after all agents connected")
    ap.add_argument("--handshakes", type=int, default=64, help="agent handshakes in flight at once")
    ap.add_argument("--time-limit", type=float, default=600.0)
    a = ap.parse_args(argv)
    figures = run(a.agents, a.anonymous, a.interval, a.steady, a.handshakes, a.time_limit)
    print(json.dumps(figures, indent=2))
    served = figures["connected"] == a.agents and not figures["refused"]
    cut = figures["anon_open_at_end"] == 0
    return 0 if served and cut else 1


if __name__ == "__main__":
    sys.exit(main())
