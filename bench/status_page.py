"""The public status page under load: requests/s from one core, and the latency p99.

The server is the real app (``runner.uvicorn_config``: uvloop, the guarded httptools protocol)
with STATUS_PAGE on, in its own process pinned to CPU 0; the load generator, a closed-loop
asyncio HTTP/1.1 keep-alive client, runs here pinned to CPU 1. Before measuring, 30 hosts
report through the API, 5 services send health events (one unhealthy: a public incident), and
90 days of 1-hour rows are written for the hosts so every bar is drawn; the page is served from
memory as it ships (STATUS_PAGE_STATE_MAX_AGE_S=5), while the bars job runs every 5 s (300 s by
default: a harder case). ``python -m bench --only status_page``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import uvloop

TARGET_RPS = 2_000
HOSTS = 30
SERVICES = ("nginx", "postgres", "redis", "billing-api", "queue")
CONNECTIONS = 16  # under CONN_MAX_UNAUTH_PER_ADDR (32): page readers are anonymous
ROOT = Path(__file__).resolve().parent.parent
CONFIG = """
title = "Bench status"
[[services]]
name = "nginx"
label = "Website"
[[services]]
name = "postgres"
label = "Database"
[[services]]
name = "redis"
[[services]]
name = "billing-api"
label = "Billing"
[[services]]
name = "queue"
[[groups]]
name = "Web"
hosts = ["web-*"]
[[groups]]
name = "Databases"
hosts = ["db-*"]
[[groups]]
name = "Workers"
hosts = ["worker-*"]
"""


def _pin(cpu: int) -> None:
    if hasattr(os, "sched_setaffinity") and cpu < (os.cpu_count() or 1):
        os.sched_setaffinity(0, {cpu})


# --- the server process --------------------------------------------------------------------------
def serve(data_dir: Path, ready_file: Path) -> int:
    import uvicorn

    from statusdash.server.runner import uvicorn_config
    from statusdash.settings import Settings

    _pin(0)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = int(sock.getsockname()[1])
    (data_dir / "page.toml").write_text(CONFIG)
    settings = Settings(
        _env_file=None,
        status_admin_password=secrets.token_urlsafe(18),
        status_jwt_secret=secrets.token_urlsafe(48),
        status_data_dir=data_dir,
        vault_path=data_dir / "vault",
        status_bind="127.0.0.1",
        status_port=port,
        mtls_enabled=False,
        db_synchronous="NORMAL",
        status_page=True,
        status_page_config=data_dir / "page.toml",
        status_page_bars_interval_s=5.0,
    )
    server = uvicorn.Server(uvicorn_config(settings, log_level="warning", loop="uvloop"))

    def announce() -> None:
        while not server.started:
            time.sleep(0.02)
        ready_file.write_text(json.dumps({"port": port, "pid": os.getpid()}))

    threading.Thread(target=announce, daemon=True).start()
    server.run(sockets=[sock])
    return 0


# --- the load ------------------------------------------------------------------------------------
REQUEST = b"GET /status HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept-Encoding: gzip, br\r\n\r\n"


async def _conn(
    port: int, until: float, start: float, lat: list[float], errors: list[str], expect: int
) -> int:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    done = 0
    try:
        while True:
            t0 = time.perf_counter()
            if t0 >= until:
                return done
            writer.write(REQUEST)
            head = await reader.readuntil(b"\r\n\r\n")
            if not head.startswith(b"HTTP/1.1 200"):
                errors.append(head.split(b"\r\n", 1)[0].decode(errors="replace"))
                return done
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            body = await reader.readexactly(length)
            t1 = time.perf_counter()
            if body[:2] != b"\x1f\x8b" or abs(len(body) - expect) > expect // 4:
                errors.append(f"not the gzipped page: {len(body)} bytes, {body[:20]!r}")
                return done
            if t0 >= start:
                lat.append(t1 - t0)
                done += 1
    finally:
        writer.close()


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _round(
    port: int, pid: int, warmup_s: float, seconds: float, expect: int
) -> dict[str, Any]:
    lat: list[float] = []
    errors: list[str] = []
    start = time.perf_counter() + warmup_s
    until = start + seconds
    tasks = [_conn(port, until, start, lat, errors, expect) for _ in range(CONNECTIONS)]
    await asyncio.sleep(0)
    cpu0 = None
    waiter = asyncio.gather(*tasks)
    await asyncio.sleep(warmup_s)
    cpu0 = _cpu_s(pid)
    counts = await asyncio.wait_for(waiter, warmup_s + seconds + 30)
    cpu = _cpu_s(pid) - cpu0
    if errors:
        raise RuntimeError(f"status page answered badly: {errors[:3]}")
    lat.sort()
    n = sum(counts)
    return {
        "req_s": n / seconds,
        "p50_ms": 1000 * lat[len(lat) // 2],
        "p99_ms": 1000 * lat[min(len(lat) - 1, int(len(lat) * 0.99))],
        "server_cores": cpu / seconds,
    }


def _seed(url: str, data: Path) -> None:
    from statusdash.server import keys

    names = [
        f"{kind}-{i}"
        for kind, count in (("web", 12), ("db", 6), ("worker", 12))
        for i in range(count)
    ]
    assert len(names) == HOSTS
    sys.path.insert(0, str(ROOT))
    from tests.conftest import make_report

    with httpx.Client(base_url=url, timeout=10) as c:
        for i, name in enumerate(names):
            key = keys.issue(data / "statusdash.db", name).key
            h = {"X-API-Key": key}
            assert (
                c.post("/api/metrics/report", json=make_report(name), headers=h).status_code == 200
            )
            if i < len(SERVICES):
                kind = (
                    "SYSTEM_SERVICE_UNHEALTHY"
                    if SERVICES[i] == "redis"
                    else "SYSTEM_SERVICE_HEALTHY"
                )
                payload = {"serviceName": SERVICES[i], "errorMessage": "down"}
                r = c.post("/api/events", json={"type": kind, "payload": payload}, headers=h)
                assert r.status_code == 200, r.text
    conn = sqlite3.connect(data / "statusdash.db", timeout=30)
    now = int(time.time()) // 3600 * 3600
    ids = [int(i) for (i,) in conn.execute("SELECT id FROM hosts")]
    rows = [(i, now - h * 3600) for i in ids for h in range(1, 90 * 24) if (i + h) % 97]
    with conn:
        conn.executemany("INSERT OR IGNORE INTO rollup_1h (host_id, t, n) VALUES (?, ?, 360)", rows)
    conn.close()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        groups = httpx.get(f"{url}/status.json").json()["groups"]
        if groups and groups[0]["availability"]["percent"] is not None:
            return
        time.sleep(0.5)
    raise RuntimeError("the bars were not computed within 30 s")


def run(rounds: int = 3, seconds: float = 6.0, warmup: float = 1.5) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-status-") as tmp:
        work = Path(tmp)
        data, ready, log = work / "data", work / "ready.json", work / "server.log"
        data.mkdir()
        cmd = [sys.executable, "-m", "bench.status_page", "--serve", str(data), str(ready)]
        with log.open("wb") as out:
            proc = subprocess.Popen(cmd, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 60
            while not ready.exists():
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"status page server did not start: {log.read_text()[-800:]}"
                    )
                time.sleep(0.05)
            info = json.loads(ready.read_text())
            url = f"http://127.0.0.1:{info['port']}"
            _seed(url, data)
            page = httpx.get(f"{url}/status", headers={"Accept-Encoding": "identity"}).content
            gz = httpx.get(f"{url}/status", headers={"Accept-Encoding": "gzip"})
            wire = int(gz.headers["content-length"])
            _pin(1)
            results = []
            for _ in range(rounds):
                with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
                    results.append(
                        runner.run(_round(info["port"], info["pid"], warmup, seconds, wire))
                    )
        finally:
            proc.terminate()
            proc.wait(30)
    rps = [r["req_s"] for r in results]
    per_core = [r["req_s"] / r["server_cores"] for r in results if r["server_cores"] > 0]
    p99 = [r["p99_ms"] for r in results]
    figures = {
        "page_bytes": len(page),
        "gzip_bytes": wire,
        "connections": CONNECTIONS,
        "req_s_median": statistics.median(rps),
        "req_s_range": [min(rps), max(rps)],
        "p50_ms_median": statistics.median(r["p50_ms"] for r in results),
        "p99_ms_median": statistics.median(p99),
        "p99_ms_range": [min(p99), max(p99)],
        "server_cores_median": statistics.median(r["server_cores"] for r in results),
        # What one core of server CPU serves: the load generator shares the machine, so the
        # measured rate is often the client's limit, not the server's.
        "req_per_core_s_median": statistics.median(per_core),
        "req_per_core_s_range": [min(per_core), max(per_core)],
        "req_per_core_ok": statistics.median(per_core) >= TARGET_RPS,
    }
    print(json.dumps(figures, indent=2), flush=True)
    return figures


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.status_page", description=__doc__)
    ap.add_argument("--serve", nargs=2, metavar=("DATA_DIR", "READY_FILE"), help=argparse.SUPPRESS)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=6.0)
    args = ap.parse_args(argv)
    if args.serve:
        return serve(Path(args.serve[0]), Path(args.serve[1]))
    run(args.rounds, args.seconds)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
