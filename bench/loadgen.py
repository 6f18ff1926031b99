"""A lean asyncio HTTP/1.1 keep-alive load generator for the ingest benchmark (its own process).

httpx costs more CPU per request than the server it would measure on two shared cores, so this
client prebuilds each request's bytes (bench/payload.py: only ``report_id`` and ``collected_at``
vary), writes it in one call and parses nothing but the status line, Content-Length and the small
JSON acknowledgement. Each connection is closed-loop (one request in flight). Spec on stdin,
results as JSON on stdout.
"""

from __future__ import annotations

import asyncio
import json
import os
import ssl
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

from bench.payload import REPORT_INTERVAL_S, Template

_CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


@dataclass
class Client:
    """One connection's identity: the host it reports for and its credential."""

    host: str
    api_key: str | None = None
    cert: str | None = None
    key: str | None = None


@dataclass
class Spec:
    port: int
    path: str
    clients: list[Client]
    batch: int = 0  # 0: one report per request; N: {"reports": [N reports]}
    store: bool = True  # False for the bare endpoint (nothing is stored, no ids kept)
    warmup_s: float = 2.0
    measure_s: float = 8.0
    drain_s: float = 30.0
    connect_s: float = 20.0
    ca: str | None = None  # set: HTTPS with a client certificate per connection
    server_pid: int | None = None
    ids_out: str | None = None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Spec:
        data = dict(data)
        data["clients"] = [Client(**c) for c in data["clients"]]
        return cls(**data)


@dataclass
class Stats:
    """What one phase observed; counters only move on the event loop thread."""

    window: tuple[float, float] = (0.0, 0.0)
    requests: int = 0  # completed inside the measurement window
    reports: int = 0  # reports acknowledged as stored inside the window
    latencies: list[float] = field(default_factory=list)
    acked_total: int = 0  # reports acknowledged over the whole phase (warm-up included)
    requests_total: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    error_samples: list[str] = field(default_factory=list)
    cpu: dict[str, float] = field(default_factory=dict)

    def error(self, kind: str, sample: str) -> None:
        self.errors[kind] += 1
        if len(self.error_samples) < 5:
            self.error_samples.append(f"{kind}: {sample[:300]}")


def _ticks(path: str) -> int:
    """utime + stime of a process (all threads) from /proc, in clock ticks."""
    text = Path(path).read_text()
    fields = text[text.rfind(")") + 2 :].split()
    return int(fields[11]) + int(fields[12])


def _machine_busy() -> int:
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    vals = [int(v) for v in fields[:8]]
    return sum(vals) - vals[3] - vals[4]  # minus idle and iowait


def cpu_snapshot(server_pid: int | None) -> dict[str, int] | None:
    """CPU ticks of the server, of this process and of the whole machine (Linux only)."""
    try:
        snap = {"self": _ticks("/proc/self/stat"), "machine": _machine_busy()}
        if server_pid is not None:
            snap["server"] = _ticks(f"/proc/{server_pid}/stat")
            snap["server_main"] = _ticks(f"/proc/{server_pid}/task/{server_pid}/stat")
        return snap
    except (OSError, ValueError, IndexError):
        return None


class Conn(asyncio.Protocol):
    """One kept-alive connection: send, wait for the whole response, send again."""

    def __init__(self, gen: Generator, client: Client) -> None:
        self.gen = gen
        self.template = Template(client.host)
        self.transport: asyncio.Transport | None = None
        self.ready: asyncio.Future[None] = gen.loop.create_future()
        self.buf = bytearray()
        self.need = -1  # total bytes of the response being read (-1: headers not complete)
        self.body_at = 0
        self.status = 0
        self.busy = False
        self.sent_at = 0.0
        self.ids: list[bytes] = []
        auth = f"X-API-Key: {client.api_key}\r\n" if client.api_key else ""
        self.head_prefix = (
            f"POST {gen.spec.path} HTTP/1.1\r\nHost: 127.0.0.1:{gen.spec.port}\r\n"
            f"User-Agent: statusdash-bench\r\nContent-Type: application/json\r\n{auth}"
        ).encode()

    # --- asyncio callbacks -----------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        if not self.ready.done():
            self.ready.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.ready.done():
            self.ready.set_exception(exc or ConnectionError("closed during connect"))
        if self.busy:
            self.busy = False
            self.gen.stats.error("connection_lost", repr(exc))
            self.gen.unacked += len(self.ids)
            self.gen.idle()

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        if self.need < 0:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(buf[:end]).lower()
            self.status = int(head[9:12])
            at = head.find(b"\r\ncontent-length:")
            if at < 0:
                self.gen.stats.error("protocol", "response without Content-Length")
                self.fail()
                return
            stop = head.find(b"\r\n", at + 17)
            length = int(head[at + 17 : stop if stop >= 0 else len(head)])
            self.body_at = end + 4
            self.need = self.body_at + length
        if len(buf) < self.need:
            return
        body = bytes(buf[self.body_at : self.need])
        del buf[: self.need]
        self.need = -1
        self.busy = False
        self.gen.on_response(self, self.status, body)

    # --- requests --------------------------------------------------------------------------------
    def send(self) -> None:
        assert self.transport is not None
        spec = self.gen.spec
        now = datetime.now(UTC)
        if spec.batch:
            rids = [uuid.uuid4() for _ in range(spec.batch)]
            step = timedelta(seconds=REPORT_INTERVAL_S)
            first = now - step * (spec.batch - 1)  # a spool catch-up: oldest first
            body = (
                b'{"reports":['
                + b",".join(self.template.render(r, first + step * i) for i, r in enumerate(rids))
                + b"]}"
            )
        else:
            rids = [uuid.uuid4()]
            body = self.template.render(rids[0], now)
        self.ids = [r.bytes for r in rids] if spec.store else []
        self.busy = True
        self.sent_at = time.perf_counter()
        self.transport.write(self.head_prefix + b"Content-Length: %d\r\n\r\n" % len(body) + body)

    def fail(self) -> None:
        if self.transport is not None:
            self.transport.abort()


class Generator:
    """Drives one phase: connect every client, warm up, measure, then drain in-flight requests."""

    def __init__(self, spec: Spec, loop: asyncio.AbstractEventLoop) -> None:
        self.spec = spec
        self.loop = loop
        self.stats = Stats()
        self.running = False
        self.conns: list[Conn] = []
        self.acked: list[bytes] = []
        self.unacked = 0
        self.expect = spec.batch or 1
        # the counts open every acknowledgement; more fields (high_water) may follow them
        self.ok_body = b'{"accepted":%d,"duplicates":0' % self.expect
        self.drained: asyncio.Future[None] = loop.create_future()
        self._cpu0: dict[str, int] | None = None

    async def connect(self) -> None:
        spec = self.spec

        async def one(client: Client) -> Conn:
            ctx: ssl.SSLContext | None = None
            if spec.ca is not None:
                from statusdash.tlsclient import client_context

                ctx = client_context(
                    Path(spec.ca),
                    Path(client.cert) if client.cert else None,
                    Path(client.key) if client.key else None,
                )
            factory: Callable[[], Conn] = lambda: Conn(self, client)  # noqa: E731
            _, proto = await self.loop.create_connection(
                factory,
                "127.0.0.1",
                spec.port,
                ssl=ctx,
                server_hostname="localhost" if ctx else None,
            )
            await proto.ready
            return proto

        self.conns = list(
            await asyncio.wait_for(
                asyncio.gather(*(one(c) for c in spec.clients)), timeout=spec.connect_s
            )
        )

    def on_response(self, conn: Conn, status: int, body: bytes) -> None:
        now = time.perf_counter()
        st = self.stats
        st.requests_total += 1
        if status != 200:
            st.error(f"http_{status}", body.decode(errors="replace"))
            self.unacked += len(conn.ids)
        elif body[len(self.ok_body) : len(self.ok_body) + 1] not in (b"}", b",") or (
            not body.startswith(self.ok_body)
        ):
            try:
                ack = json.loads(body)
                accepted = int(ack["accepted"])
            except (ValueError, KeyError, TypeError):
                st.error("bad_ack", body.decode(errors="replace"))
                self.unacked += len(conn.ids)
            else:
                # Counted as stored, so the row check can still match; reported as an error.
                st.error("unexpected_ack", body.decode(errors="replace"))
                st.acked_total += accepted
                self.acked.extend(conn.ids)
        else:
            st.acked_total += self.expect
            self.acked.extend(conn.ids)
            w0, w1 = st.window
            if w0 <= now < w1:
                st.requests += 1
                st.reports += self.expect
                st.latencies.append(now - conn.sent_at)
        conn.ids = []
        if self.running:
            conn.send()
        else:
            self.idle()

    def idle(self) -> None:
        if not self.running and not any(c.busy for c in self.conns) and not self.drained.done():
            self.drained.set_result(None)

    def _window_start(self) -> None:
        self._cpu0 = cpu_snapshot(self.spec.server_pid)

    def _window_end(self) -> None:
        cpu1 = cpu_snapshot(self.spec.server_pid)
        self.running = False
        if self._cpu0 is not None and cpu1 is not None:
            span = self.stats.window[1] - self.stats.window[0]
            self.stats.cpu = {k: (cpu1[k] - self._cpu0[k]) / _CLK_TCK / span for k in cpu1}
        self.idle()

    async def run(self) -> dict[str, Any]:
        spec = self.spec
        await self.connect()
        t0 = time.perf_counter()
        w0, w1 = t0 + spec.warmup_s, t0 + spec.warmup_s + spec.measure_s
        self.stats.window = (w0, w1)
        lt0 = self.loop.time()
        self.loop.call_at(lt0 + spec.warmup_s, self._window_start)
        self.loop.call_at(lt0 + spec.warmup_s + spec.measure_s, self._window_end)
        self.running = True
        for c in self.conns:
            c.send()
        await asyncio.sleep(spec.warmup_s + spec.measure_s)
        try:
            await asyncio.wait_for(asyncio.shield(self.drained), timeout=spec.drain_s)
        except TimeoutError:
            stuck = [c for c in self.conns if c.busy]
            self.stats.error("drain_timeout", f"{len(stuck)} requests still in flight")
            self.unacked += sum(len(c.ids) for c in stuck)
        for c in self.conns:
            if c.transport is not None:
                c.transport.close()
        await asyncio.sleep(0)  # let the transports close before the loop goes
        return self.result()

    def result(self) -> dict[str, Any]:
        st = self.stats
        span = st.window[1] - st.window[0]
        lat = sorted(st.latencies)

        def pct(p: float) -> float:
            return lat[min(len(lat) - 1, int(p * len(lat)))] * 1000 if lat else 0.0

        if self.spec.ids_out is not None:
            Path(self.spec.ids_out).write_bytes(b"".join(self.acked))
        return {
            "path": self.spec.path,
            "clients": len(self.spec.clients),
            "batch": self.spec.batch,
            "body_bytes": Template(self.spec.clients[0].host).size,
            "seconds": span,
            "requests_per_s": st.requests / span,
            "reports_per_s": st.reports / span,
            "p50_ms": pct(0.50),
            "p99_ms": pct(0.99),
            "requests_total": st.requests_total,
            "acked_total": st.acked_total,
            "acked_ids": len(self.acked),
            "unacked_reports": self.unacked,
            "errors": dict(st.errors),
            "error_samples": st.error_samples,
            "cpu_cores": st.cpu,  # CPU used during the window, in cores (1.0 = one core busy)
        }


def _new_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def run(spec: Spec) -> dict[str, Any]:
    """Run one phase in this process and return its figures."""

    async def main() -> dict[str, Any]:
        return await Generator(spec, asyncio.get_running_loop()).run()

    with asyncio.Runner(loop_factory=_new_loop) as runner:
        return runner.run(main())


def main() -> int:
    spec = Spec.from_json(json.load(sys.stdin))
    try:
        result = run(spec)
    except (OSError, TimeoutError) as exc:
        result = {"fatal": f"{type(exc).__name__}: {exc}"}
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")
    return 1 if "fatal" in result else 0


if __name__ == "__main__":
    raise SystemExit(main())
