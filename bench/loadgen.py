"""A lean asyncio HTTP/1.1 keep-alive load generator for the ingest benchmark (its own process).

httpx costs more CPU per request than the server it would measure on two shared cores, so this
client prebuilds each request's bytes (only ``report_id`` and ``collected_at`` vary), writes it in
one call and parses nothing but the status line, Content-Length and the small JSON acknowledgement.
Each connection is closed-loop (one request in flight). Spec on stdin, results as JSON on stdout.
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

RID_MARK = "00000000-0000-4000-8000-00000000beef"
TS_MARK = "1999-01-01T00:00:00.000000+00:00"
REPORT_INTERVAL_S = 10.0
DISKS = [
    ("/", "/dev/sda1", 100 << 30, 55 << 30, 55.0),
    ("/boot", "/dev/sda2", 1 << 30, 200 << 20, 19.5),
]
_CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def report_dict(host: str, report_id: str, collected_at: str) -> dict[str, Any]:
    """A realistic report (~1.5 KB as compact JSON), shaped like tests/conftest.make_report."""
    proc = [
        ("postgres", "postgres", 23.5, 6.1, 512 << 20),
        ("python3", "app", 11.2, 3.4, 260 << 20),
        ("nginx", "www-data", 2.1, 0.4, 24 << 20),
    ]
    io = {"read_bytes_s": 1000.0, "write_bytes_s": 2000.0}
    net = {"rx_bytes_s": 12000.0, "tx_bytes_s": 3400.0}
    top = [
        {"pid": 1000 + i, "name": n, "user": u, "cpu_percent": c, "memory_percent": m, "rss": rss}
        for i, (n, u, c, m, rss) in enumerate(proc)
    ]
    return {
        "schema_version": 1,
        "report_id": report_id,
        "host": host,
        "collected_at": collected_at,
        "interval_s": REPORT_INTERVAL_S,
        "system": {
            "hostname": host,
            "os": "Debian GNU/Linux 12 (bookworm)",
            "kernel": "6.1.0-28-amd64",
            "arch": "x86_64",
            "boot_time": "2026-11-20T06:12:44+00:00",
            "cpu_count": 4,
        },
        "cpu": {"percent": 37.5, "per_core": [41.2, 35.0, 38.9, 34.9], "iowait": 0.5, "steal": 0.0},
        "load": {"1m": 1.42, "5m": 1.3, "15m": 1.2},
        "memory": {"percent": 40.0, "total": 8 << 30, "used": 3 << 30, "available": 5 << 30},
        "swap": {"percent": 0.0, "total": 2 << 30, "used": 0},
        "disks": [
            {"mount": m, "fstype": "ext4", "device": d, "total": t, "used": u, "percent": pc}
            for m, d, t, u, pc in DISKS
        ],
        "disk_io": {"read_bytes_s": 1e3, "write_bytes_s": 2e3, "devices": {"sda": io}},
        "net": {"rx_bytes_s": 12e3, "tx_bytes_s": 3.4e3, "interfaces": {"eth0": net}},
        "temps": [],
        "processes": {"count": 182, "top_cpu": top, "top_memory": top[:2]},
        "services": [],
    }


class Template:
    """One host's report as bytes around the two fields that change per request."""

    def __init__(self, host: str) -> None:
        text = json.dumps(report_dict(host, RID_MARK, TS_MARK), separators=(",", ":"))
        head, rest = text.split(RID_MARK)
        mid, tail = rest.split(TS_MARK)
        self.parts = (head.encode(), mid.encode(), tail.encode())
        self.size = len(text)

    def render(self, rid: uuid.UUID, ts: datetime) -> bytes:
        a, b, c = self.parts
        return a + str(rid).encode() + b + ts.isoformat(timespec="microseconds").encode() + c


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
        self.ok_body = b'{"accepted":%d,"duplicates":0}' % self.expect
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
        elif body != self.ok_body:
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
