"""Fleet benchmark (issue 15 item 5): N agents against one real server, then its restart storm.

``python -m bench.fleet --agents 10000`` (``python -m bench --only fleet``) issues N agent
certificates with our own PKI, starts the real server (``statusdash server run``) on loopback and
runs the agents in this process on uvloop: each its own certificate and one kept-alive mTLS
connection, one report at once and then one every ``--interval`` seconds at its own phase. With
two or more CPUs the load generator is pinned to the last one and the server to the others, and
the generator's own event-loop lag is reported, so its limits are not read as the server's.

Phases and figures:
- **connect**: every agent connects (at most ``--handshakes`` of the generator's handshakes in
  flight); handshakes per second.
- **steady** (``--steady`` s once all are connected and one interval has passed): client p50/p99,
  every report acknowledged or not, server CPU (cores) and RSS (per agent: the growth over the
  server's RSS before the agents came, divided by N), the server's own commit latency from its
  ``/metrics`` histogram (read with a viewer certificate; bucket bounds, so "<= x ms").
- **restart** (unless ``--no-restart``): SIGTERM, the same server started again on the same file
  and port; agents see their connection cut and reconnect with full jitter (uniform in
  ``[0, min(cap, base * 2**attempt)]``, cap ``--backoff-max``, as the agent's connect backoff), then
  report at once. Time from the new server's start to the first agent's report, to half and to
  all of them, and p99 of the reports made while the rest were still coming back.

Bounded: at most 20,000 agents, every wait has a deadline, the whole run stops at
``--time-limit``. Figures as JSON; exit 1 if a report was refused or an agent never came back.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import signal
import ssl
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import conns
from bench.conns import _fd_limit, _free_port, _raise_nofile, _read_response, _rss_mib
from bench.loadgen import Client
from bench.payload import Template
from bench.serve import provision

MAX_AGENTS = 20_000
REPORT_PATH = "/api/metrics/report"
_CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclass
class Fleet:
    """What the agents saw, by phase."""

    n: int
    phase: str = "connect"
    connected: set[int] = field(default_factory=set)
    handshakes: int = 0
    connect_failed: Counter[str] = field(default_factory=Counter)
    ok: int = 0
    refused: Counter[str] = field(default_factory=Counter)
    cut: Counter[str] = field(default_factory=Counter)
    steady_lat: list[float] = field(default_factory=list)
    storm_lat: list[float] = field(default_factory=list)
    lag: dict[str, list[float]] = field(default_factory=lambda: {"steady": [], "restart": []})
    restart_t0: float | None = None
    back: dict[int, float] = field(default_factory=dict)  # agent -> seconds after restart_t0
    all_in: asyncio.Event = field(default_factory=asyncio.Event)
    all_back: asyncio.Event = field(default_factory=asyncio.Event)


def _q(values: list[float], q: float) -> float | None:
    if not values:
        return None
    s = sorted(values)
    return round(1000 * s[min(len(s) - 1, int(q * (len(s) - 1)))], 1)


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _CLK_TCK


def _agent_ctx(client: Client, ca: str) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=ca)
    assert client.cert and client.key
    ctx.load_cert_chain(client.cert, client.key)
    return ctx


async def _agent(
    i: int,
    client: Client,
    template: Template,
    ctx: ssl.SSLContext,
    port: int,
    gate: asyncio.Semaphore,
    fleet: Fleet,
    args: argparse.Namespace,
    stop_at: float,
) -> None:
    loop = asyncio.get_running_loop()
    attempt = 0
    while loop.time() < stop_at:
        if attempt:
            await asyncio.sleep(random.uniform(0, min(args.backoff_max, 0.5 * 2**attempt)))
        try:
            async with gate:
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection(
                        "127.0.0.1", port, ssl=ctx, server_hostname="127.0.0.1"
                    ),
                    30,
                )
        except (OSError, TimeoutError, ssl.SSLError) as exc:
            fleet.connect_failed[type(exc).__name__] += 1
            attempt += 1
            continue
        fleet.handshakes += 1
        attempt = 0
        if i not in fleet.connected:
            fleet.connected.add(i)
            if len(fleet.connected) == fleet.n:
                fleet.all_in.set()
        try:
            first = True
            while loop.time() < stop_at:
                body = template.render(uuid.uuid4(), datetime.now(UTC))
                request = (
                    f"POST {REPORT_PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                    f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
                ).encode() + body
                t0 = loop.time()
                writer.write(request)
                status = await asyncio.wait_for(_read_response(reader), 60)
                took = loop.time() - t0
                if status != 200:
                    fleet.refused[str(status)] += 1
                else:
                    fleet.ok += 1
                    if fleet.phase == "steady":
                        fleet.steady_lat.append(took)
                    elif fleet.phase == "restart" and fleet.restart_t0 is not None:
                        if i not in fleet.back:
                            fleet.back[i] = loop.time() - fleet.restart_t0
                            if len(fleet.back) == fleet.n:
                                fleet.all_back.set()
                        elif not fleet.all_back.is_set():
                            fleet.storm_lat.append(took)
                # the first report after a (re)connect goes at once; then the agent's own phase
                pause = random.uniform(0, args.interval) if first else args.interval
                first = False
                await asyncio.sleep(max(0.0, pause - (loop.time() - t0)))
        except (OSError, TimeoutError, asyncio.IncompleteReadError, ssl.SSLError) as exc:
            fleet.cut[type(exc).__name__] += 1
            attempt = 1
        finally:
            writer.close()


async def _ticker(fleet: Fleet, stop_at: float) -> None:
    """The generator's own event-loop lag, sampled every 100 ms."""
    loop = asyncio.get_running_loop()
    while loop.time() < stop_at:
        t = loop.time()
        await asyncio.sleep(0.1)
        if fleet.phase in fleet.lag:
            fleet.lag[fleet.phase].append(loop.time() - t - 0.1)


def _pin(cpus: set[int]) -> None:
    with contextlib.suppress(OSError, AttributeError):
        os.sched_setaffinity(0, cpus)


def _start_server(data: Path, port: int, cpus: set[int] | None) -> subprocess.Popen[bytes]:
    return conns._start_server(data, port, (lambda: _pin(cpus)) if cpus else None)


async def _wait_up(ctx: ssl.SSLContext, port: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
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
            await asyncio.sleep(0.1)
    raise RuntimeError("the server did not come up")


async def _commit_buckets(ctx: ssl.SSLContext, port: int) -> dict[float, float]:
    """The server's commit-latency histogram (cumulative counts by upper bound); empty if the
    scrape did not answer within its deadline (the figure is then missing, not the run)."""
    try:
        return await _scrape_commit_buckets(ctx, port)
    except (OSError, TimeoutError, ssl.SSLError, asyncio.IncompleteReadError):
        return {}


async def _scrape_commit_buckets(ctx: ssl.SSLContext, port: int) -> dict[float, float]:
    reader, writer = await asyncio.wait_for(
        asyncio.open_connection("127.0.0.1", port, ssl=ctx, server_hostname="127.0.0.1"), 30
    )
    try:
        writer.write(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        text = (await asyncio.wait_for(reader.read(), 30)).decode("latin-1")
    finally:
        writer.close()
    out: dict[float, float] = {}
    for line in text.splitlines():
        if line.startswith("statusdash_storage_commit_seconds_bucket{"):
            le = line.split('le="', 1)[1].split('"', 1)[0]
            out[float("inf") if le == "+Inf" else float(le)] = float(line.rsplit(" ", 1)[1])
    return out


def _bucket_q(before: dict[float, float], after: dict[float, float], q: float) -> str | None:
    delta = {le: after.get(le, 0.0) - before.get(le, 0.0) for le in sorted(after)}
    total = delta.get(float("inf"), 0.0)
    if total <= 0:
        return None
    for le, cum in delta.items():
        if cum >= q * total:
            return "> largest bucket" if le == float("inf") else f"<= {le * 1000:g} ms"
    return None


async def _measure(
    clients: list[Client], ca: str, viewer: ssl.SSLContext, data: Path, args: argparse.Namespace
) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    server_cpus = set(cpus[:-1]) if len(cpus) >= 2 else None
    if server_cpus:
        _pin({cpus[-1]})
    port = _free_port()
    proc = _start_server(data, port, server_cpus)
    figures: dict[str, Any] = {"agents": len(clients), "pinned": bool(server_cpus)}
    fleet = Fleet(n=len(clients))
    stop_at = loop.time() + args.time_limit
    tasks: list[asyncio.Task[None]] = []
    try:
        await _wait_up(viewer, port, proc)
        await asyncio.sleep(1)
        rss_idle = _rss_mib(proc.pid)
        templates = [Template(c.host) for c in clients]
        ctxs = [_agent_ctx(c, ca) for c in clients]
        gate = asyncio.Semaphore(args.handshakes)
        tasks.append(asyncio.create_task(_ticker(fleet, stop_at)))
        t0 = loop.time()
        tasks += [
            asyncio.create_task(
                _agent(i, c, templates[i], ctxs[i], port, gate, fleet, args, stop_at)
            )
            for i, c in enumerate(clients)
        ]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(fleet.all_in.wait(), max(1.0, stop_at - loop.time()))
        connect_s = loop.time() - t0
        figures["connect_s"] = round(connect_s, 1)
        figures["connected"] = len(fleet.connected)
        figures["handshakes_per_s"] = round(len(fleet.connected) / max(connect_s, 1e-9))
        await asyncio.sleep(min(args.interval, max(0.0, stop_at - loop.time())))
        fleet.phase = "steady"
        buckets0 = await _commit_buckets(viewer, port)
        cpu0, w0 = _cpu_s(proc.pid), loop.time()
        await asyncio.sleep(min(args.steady, max(0.0, stop_at - loop.time())))
        cpu1, w1 = _cpu_s(proc.pid), loop.time()
        buckets1 = await _commit_buckets(viewer, port)
        rss = _rss_mib(proc.pid)
        fleet.phase = "settle"
        figures.update(
            steady_reports=len(fleet.steady_lat),
            steady_p50_ms=_q(fleet.steady_lat, 0.5),
            steady_p99_ms=_q(fleet.steady_lat, 0.99),
            server_commit_p50=_bucket_q(buckets0, buckets1, 0.5),
            server_commit_p99=_bucket_q(buckets0, buckets1, 0.99),
            server_cpu_cores=round((cpu1 - cpu0) / (w1 - w0), 2),
            server_rss_idle_mib=round(rss_idle, 1),
            server_rss_mib=round(rss, 1),
            server_kib_per_agent=round((rss - rss_idle) * 1024 / max(1, len(fleet.connected)), 1),
            generator_lag_p99_ms=_q(fleet.lag["steady"], 0.99),
            server_fd_limit=_fd_limit(proc.pid),
        )
        if args.restart and loop.time() < stop_at:
            t_term = loop.time()
            proc.send_signal(signal.SIGTERM)
            await loop.run_in_executor(None, proc.wait, 60)
            figures["shutdown_s"] = round(loop.time() - t_term, 2)
            proc = _start_server(data, port, server_cpus)
            fleet.restart_t0 = loop.time()
            fleet.phase = "restart"
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(fleet.all_back.wait(), max(1.0, stop_at - loop.time()))
            back = sorted(fleet.back.values())
            figures.update(
                restart_back=len(back),
                restart_first_s=round(back[0], 1) if back else None,
                restart_half_s=round(back[len(back) // 2], 1) if back else None,
                restart_all_s=round(back[-1], 1) if len(back) == fleet.n else None,
                restart_storm_p50_ms=_q(fleet.storm_lat, 0.5),
                restart_storm_p99_ms=_q(fleet.storm_lat, 0.99),
                restart_storm_reports=len(fleet.storm_lat),
                generator_lag_restart_p99_ms=_q(fleet.lag["restart"], 0.99),
            )
        figures.update(
            reports_ok=fleet.ok,
            refused=dict(fleet.refused),
            connect_failed=dict(fleet.connect_failed),
            connections_cut=dict(fleet.cut),
        )
        return figures
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()


def run(
    agents: int = 10_000,
    interval: float = 10.0,
    steady: float = 30.0,
    handshakes: int = 256,
    backoff_max: float = 10.0,
    restart: bool = True,
    time_limit: float = 900.0,
) -> dict[str, Any]:
    """One run; figures as a dict (``python -m bench`` style)."""
    if not 1 <= agents <= MAX_AGENTS:
        raise ValueError(f"agents 1..{MAX_AGENTS}")
    args = argparse.Namespace(
        interval=interval,
        steady=steady,
        handshakes=handshakes,
        backoff_max=backoff_max,
        restart=restart,
        time_limit=time_limit,
    )
    _raise_nofile()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bench-fleet-") as tmp:
        data = Path(tmp)
        clients, ca = provision(data, [f"agent-{i:05d}" for i in range(agents)], tls=True)
        assert ca is not None
        from statusdash.pki.ca import issue_client_cert

        viewer_cert = issue_client_cert(data / "vault", "bench-viewer", "viewer")
        viewer = ssl.create_default_context(cafile=ca)
        viewer.load_cert_chain(str(viewer_cert.cert_path), str(viewer_cert.key_path))
        provision_s = time.monotonic() - started
        import uvloop

        figures = uvloop.run(_measure(clients, ca, viewer, data, args))
    figures["provision_s"] = round(provision_s, 1)
    figures["total_s"] = round(time.monotonic() - started, 1)
    figures["goals"] = {
        "steady_p99_ms<=100": (figures.get("steady_p99_ms") or 1e9) <= 100,
        "every_report_acked": not figures["refused"],
        "kib_per_agent<=40": figures.get("server_kib_per_agent", 1e9) <= 40,
        "all_back_within_60s": (figures.get("restart_all_s") or 1e9) <= 60 if restart else None,
    }
    return figures


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.fleet", description=__doc__)
    ap.add_argument("--agents", type=int, default=10_000)
    ap.add_argument("--interval", type=float, default=10.0, help="seconds between reports")
    ap.add_argument("--steady", type=float, default=30.0, help="seconds of steady measurement")
    ap.add_argument("--handshakes", type=int, default=256, help="generator handshakes in flight")
    ap.add_argument("--backoff-max", type=float, default=10.0, help="reconnect backoff cap, s")
    ap.add_argument("--no-restart", dest="restart", action="store_false")
    ap.add_argument("--time-limit", type=float, default=900.0)
    a = ap.parse_args(argv)
    figures = run(
        a.agents, a.interval, a.steady, a.handshakes, a.backoff_max, a.restart, a.time_limit
    )
    print(json.dumps(figures, indent=2))
    back = not a.restart or figures.get("restart_back") == a.agents
    return 0 if not figures["refused"] and back and figures["connected"] == a.agents else 1


if __name__ == "__main__":
    sys.exit(main())
