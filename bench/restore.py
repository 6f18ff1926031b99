"""A restore with N agents: how long until every gap is filled, and live ingest meanwhile.

``python -m bench.restore --agents 1000 --gap-min 30`` (or ``python -m bench --only restore``):
provisions N agent certificates with our own PKI (``bench.serve.provision``), starts the real
server (``bench.serve``, mTLS), stores a few reports per agent, takes an online backup, gives
each agent a ``--gap-min`` gap of reports at 10 s that it holds as acknowledged (they are not
sent first: the restore would take them away again, and sending them costs minutes here),
stops the server, restores the backup and starts it again. Then N simulated agents, each its own
certificate and kept-alive connection, report live every 10 s from a random phase and follow
the agent's own re-send rule (``statusdash.agent.keep.after_mark`` / ``parse_mark`` on each
acknowledgement's ``high_water``; ``Retry-After`` read by ``statusdash.agent.push``): a live
report always goes first, then the kept reports after the mark in batches of ``--batch``,
marked as refills (``X-Statusdash-Refill``); a refill the server refuses (503, the
``RESTORE_REFILL_MAX_REQUESTS`` gate) waits for its ``Retry-After`` and the next live report.

Figures: ``fill_s`` (from the restarted server serving until the last gap is acknowledged),
``live_p50_ms`` / ``live_p99_ms`` (live reports sent until then), and a check of the database
afterwards: every report of every agent present exactly once. Bounded: at most
``--time-limit`` seconds for the refill, MAX_AGENTS agents.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import random
import sqlite3
import ssl
import statistics
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import uvloop

from bench import serve
from bench.loadgen import Client
from bench.payload import REPORT_INTERVAL_S, Template
from statusdash.agent.keep import Absent, after_mark, parse_mark
from statusdash.agent.push import REFILL, retry_pause
from statusdash.agent.spool import Entry
from statusdash.server.backup import backup_database, restore, server_running

MAX_AGENTS = 5000
BEFORE = 6  # reports per agent in the backup
SEED_CONCURRENCY = 16
HANDSHAKES = 64  # TLS handshakes in flight at once (the listen backlog is finite)
REQUEST_TIMEOUT_S = 60.0


@dataclass
class Agent:
    """One simulated agent: its reports (kept, to send again) as Entry(seq, ts_ms)."""

    index: int
    client: Client
    template: Template
    seq: int = 0
    kept: list[Entry] = field(default_factory=list)
    resend: list[Entry] = field(default_factory=list)
    top_ms: int | None = None
    filled_at: float | None = None
    gap: int = 0
    resend_after: float = 0.0

    def rid(self, seq: int) -> uuid.UUID:
        return uuid.UUID(int=(self.index << 40) | seq, version=4)

    def new(self, at: datetime) -> Entry:
        """A report collected at ``at`` (whole seconds: its body says exactly its ts_ms)."""
        self.seq += 1
        at = at.replace(microsecond=0)
        return Entry(self.seq, int(at.timestamp() * 1000), self.template.size)

    def body(self, e: Entry) -> bytes:
        at = datetime.fromtimestamp(e.ts_ms / 1000, UTC)
        return self.template.render(self.rid(e.seq), at)

    def batch(self, entries: list[Entry]) -> bytes:
        return b'{"reports":[' + b",".join(self.body(e) for e in entries) + b"]}"

    def acked(self, entries: list[Entry], ack: Any) -> None:
        """The agent's rule: compare the mark with what was kept, queue the gap; then keep."""
        mark = parse_mark(ack)
        if not isinstance(mark, Absent):
            gap = after_mark(self.kept, mark, self.top_ms)
            if gap:
                chosen = {e.seq for e in gap}
                self.kept = [e for e in self.kept if e.seq not in chosen]
                self.resend = sorted(self.resend + gap, key=lambda e: e.seq)
                self.gap += len(gap)
        self.kept += entries
        self.top_ms = max([e.ts_ms for e in entries] + [self.top_ms or 0])


class Conn:
    """One agent's kept-alive mTLS connection: a bare HTTP/1.1 client (httpx costs more CPU
    than the server here, and the load generator shares the server's two cores)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, client: Client, ca: str, port: int, gate: asyncio.Semaphore) -> Conn:
        ctx = ssl.create_default_context(cafile=ca)
        ctx.load_cert_chain(client.cert or "", client.key)
        async with gate:  # bound the handshakes in flight
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection("127.0.0.1", port, ssl=ctx, server_hostname="localhost"),
                REQUEST_TIMEOUT_S,
            )
        return cls(reader, writer)

    async def post(
        self, path: str, body: bytes, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], Any]:
        extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        head = (
            f"POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n{extra}\r\n"
        )
        self.writer.write(head.encode() + body)
        raw = await asyncio.wait_for(self.reader.readuntil(b"\r\n\r\n"), REQUEST_TIMEOUT_S)
        lines = raw.decode("latin-1").split("\r\n")
        fields = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            if name:
                fields[name.strip().lower()] = value.strip()
        data = await self.reader.readexactly(int(fields.get("content-length", "0")))
        return int(lines[0].split()[1]), fields, json.loads(data) if data else None

    def close(self) -> None:
        self.writer.close()


async def _seed(agents: list[Agent], ca: str, port: int, entries: dict[int, list[Entry]]) -> None:
    """One batch per agent (its own connection), acknowledged and kept."""
    sem = asyncio.Semaphore(SEED_CONCURRENCY)

    async def one(agent: Agent) -> None:
        async with sem:
            conn = await Conn.open(agent.client, ca, port, sem_handshake)
            try:
                batch = entries[agent.index]
                status, _, ack = await conn.post("/api/metrics/batch", agent.batch(batch))
            finally:
                conn.close()
            if status != 200 or ack.get("accepted") != len(batch):
                raise RuntimeError(f"seeding {agent.client.host}: {status} {ack}")
            agent.acked(batch, ack)

    sem_handshake = asyncio.Semaphore(HANDSHAKES)
    await asyncio.gather(*(one(a) for a in agents))


@dataclass
class Refill:
    started: float
    agents: int
    batch: int
    handshakes: asyncio.Semaphore
    filled: int = 0
    live_ms: list[float] = field(default_factory=list)
    resend_requests: int = 0
    paused: int = 0
    errors: list[str] = field(default_factory=list)


async def _agent_loop(
    agent: Agent, ca: str, port: int, st: Refill, stop_at: float, rng: random.Random
) -> None:
    interval = REPORT_INTERVAL_S
    next_live = st.started + rng.uniform(0, interval)
    await asyncio.sleep(max(0.0, next_live - time.monotonic()))
    conn = await Conn.open(agent.client, ca, port, st.handshakes)
    try:
        while time.monotonic() < stop_at and st.filled < st.agents:  # live until all filled
            now = time.monotonic()
            if now >= next_live:  # a live report always goes first
                e = agent.new(datetime.now(UTC))
                t0 = time.perf_counter()
                status, _, ack = await conn.post("/api/metrics/report", agent.body(e))
                if status != 200:
                    st.errors.append(f"live {status}: {ack}")
                    return
                st.live_ms.append((time.perf_counter() - t0) * 1000)
                agent.acked([e], ack)
                next_live += interval
                continue
            if agent.resend and now >= agent.resend_after:
                batch = agent.resend[: st.batch]
                path = "/api/metrics/batch" if len(batch) > 1 else "/api/metrics/report"
                body = agent.batch(batch) if len(batch) > 1 else agent.body(batch[0])
                status, fields, ack = await conn.post(path, body, REFILL)
                st.resend_requests += 1
                if status in (429, 503):
                    st.paused += 1
                    pause = retry_pause(httpx.Response(status, headers=fields))
                    # as the agent's push thread: the pause, then its next delivery pass
                    agent.resend_after = max(time.monotonic() + pause, next_live)
                    continue
                if status != 200:
                    st.errors.append(f"resend {status}: {ack}")
                    return
                agent.resend = agent.resend[len(batch) :]
                agent.acked(batch, ack)
                if not agent.resend:
                    agent.filled_at = time.monotonic()
                    st.filled += 1
                continue
            wake = next_live if not agent.resend else min(next_live, agent.resend_after)
            await asyncio.sleep(max(0.001, min(wake - now, 1.0)))
    finally:
        conn.close()


async def _refill(
    agents: list[Agent], ca: str, port: int, limit_s: float, batch: int, seed: int
) -> Refill:
    st = Refill(time.monotonic(), len(agents), batch, asyncio.Semaphore(HANDSHAKES))
    rng = random.Random(seed)
    stop_at = st.started + limit_s
    await asyncio.gather(*(_agent_loop(a, ca, port, st, stop_at, rng) for a in agents))
    return st


def _check(db: Path, agents: list[Agent]) -> tuple[int, int, int]:
    """Rows, distinct report ids, and the reports the agents sent (every seq of every agent)."""
    conn = sqlite3.connect(db)
    try:
        rows, distinct = conn.execute(
            "SELECT count(*), count(DISTINCT report_id) FROM samples"
        ).fetchone()
    finally:
        conn.close()
    return int(rows), int(distinct), sum(a.seq for a in agents)


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _pct(values: list[float], q: int) -> float:
    if len(values) < 2:
        return values[0] if values else float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def run(
    agents: int = 1000,
    gap_min: float = 30.0,
    batch: int = 200,
    time_limit: float = 90.0,
    seed: int = 1,
) -> dict[str, Any]:
    """One run; figures as a dict (``python -m bench`` style)."""
    if not 1 <= agents <= MAX_AGENTS or not 0 < gap_min <= 6 * 60 or not 1 <= batch <= 500:
        raise ValueError(f"agents 1..{MAX_AGENTS}, gap-min 0..360, batch 1..500")
    from bench.conns import _raise_nofile

    _raise_nofile()
    gap = int(gap_min * 60 / REPORT_INTERVAL_S)
    if gap > 500:
        raise ValueError("a gap of more than 500 reports needs several seeding batches")
    t_all = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bench-restore-") as tmp:
        work = Path(tmp)
        clients, ca = serve.provision(
            work / "data", [f"agent-{i:05d}" for i in range(agents)], True
        )
        assert ca is not None
        fleet = [Agent(i, c, Template(c.host)) for i, c in enumerate(clients)]
        provision_s = time.monotonic() - t_all
        db = work / "data" / "statusdash.db"
        start = datetime.now(UTC) - timedelta(seconds=(BEFORE + gap) * REPORT_INTERVAL_S + 60)
        at = [start + timedelta(seconds=REPORT_INTERVAL_S * k) for k in range(BEFORE + gap)]
        handle = serve.start(work, tls=True, synchronous="NORMAL")
        try:
            port = int(handle.info["port"])
            kept = {a.index: [a.new(t) for t in at[:BEFORE]] for a in fleet}
            uvloop.run(_seed(fleet, ca, port, kept))
            backup = work / "backup.db"
            backup_database(db, backup)
            for a in fleet:  # acknowledged after the backup: what the restore takes away
                a.acked([a.new(t) for t in at[BEFORE:]], {})
        finally:
            handle.stop()
        gc.collect()
        deadline = time.monotonic() + 30
        while server_running(db) and time.monotonic() < deadline:
            time.sleep(0.1)
        restore(backup, db, keep_previous=False)
        (work / "ready.json").unlink(missing_ok=True)
        t_restart = time.monotonic()
        handle = serve.start(work, tls=True, synchronous="NORMAL")
        restart_s = time.monotonic() - t_restart
        try:
            port = int(handle.info["port"])
            cpu0, client0 = _cpu_s(handle.proc.pid), time.process_time()
            st = uvloop.run(_refill(fleet, ca, port, time_limit, batch, seed))
            server_cpu = _cpu_s(handle.proc.pid) - cpu0
            client_cpu = time.process_time() - client0
        finally:
            handle.stop()
        rows, distinct, sent = _check(db, fleet)
    filled = [a.filled_at for a in fleet if a.filled_at is not None]
    every_gap = len(filled) == agents and all(a.gap == gap for a in fleet)
    return {
        "agents": agents,
        "gap_reports_per_agent": gap,
        "provision_s": round(provision_s, 1),
        "restart_s": round(restart_s, 1),
        "server_cpu_s": round(server_cpu, 1),
        "client_cpu_s": round(client_cpu, 1),
        "fill_s": round(max(filled) - st.started, 1) if filled else float("nan"),
        "filled_agents": len(filled),
        "live_reports": len(st.live_ms),
        "live_p50_ms": round(_pct(st.live_ms, 50), 1),
        "live_p99_ms": round(_pct(st.live_ms, 99), 1),
        "resend_requests": st.resend_requests,
        "retry_after_pauses": st.paused,
        "errors": len(st.errors),
        "first_error": st.errors[0] if st.errors else "",
        "every_gap_filled_ok": every_gap,
        "every_report_once_ok": rows == distinct == sent,
        "total_s": round(time.monotonic() - t_all, 1),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.restore", description=__doc__)
    ap.add_argument("--agents", type=int, default=1000)
    ap.add_argument("--gap-min", type=float, default=30.0, help="minutes of reports lost")
    ap.add_argument("--batch", type=int, default=200, help="reports per re-send request")
    ap.add_argument("--time-limit", type=float, default=90.0, help="longest refill, seconds")
    args = ap.parse_args(argv)
    figures = run(args.agents, args.gap_min, args.batch, args.time_limit)
    print(json.dumps(figures, indent=2))
    return 0 if figures["every_gap_filled_ok"] and figures["every_report_once_ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
