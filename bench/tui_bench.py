"""TUI benchmark: CPU of the headless TUI while it follows N hosts updated every second.

A small stand-in for the read API runs in a child process (so its CPU is not counted): it
serves ``GET /api/hosts`` and ``WS /api/stream`` with every host's numbers changing each second.
Like the real server, each host carries its last 20 CPU values (``cpu_recent``). The TUI
follows it through the real ``ApiSource`` (the stream, or with ``--poll`` a full poll
every second), sorted by CPU so rows move, at 200x60. We count this process's CPU time (all
threads: workers, parsing, drawing) over the measured window.

Run alone: ``python bench/tui_bench.py --hosts 500 --seconds 60 [--poll]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import resource
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

TARGET_PCT = 15.0
SIZE = (200, 60)
WARMUP_S = 2.0


# --- the stand-in server (child process) ------------------------------------------------------


def _cpu(i: int, t: int) -> float:
    return round(max(0.0, min(100.0, 50 + 45 * math.sin(t / 7 + i))), 1)


def _hosts(n: int, t: int) -> list[dict[str, Any]]:
    """Every host as ``GET /api/hosts`` has it at second ``t``, its last 20 CPU values included."""
    at = datetime.fromtimestamp(t, UTC).isoformat()
    hosts = []
    for i in range(n):
        cpu = _cpu(i, t)
        hosts.append(
            {
                "host": f"host-{i:04d}",
                "status": "up" if i % 97 else "stale",
                "last_seen": at,
                "seen_ago_s": 0.4,
                "collected_at": at,
                "interval_s": 1.0,
                "os": "Debian 12",
                "cpu_count": 8,
                "cpu_percent": cpu,
                "memory_percent": round(40 + 30 * math.sin(t / 30 + i * 0.7), 1),
                "swap_percent": 1.0,
                "disk_percent": round(50 + 45 * math.sin(i), 1),
                "disk_mount": "/",
                "load_1m": round(abs(4 * math.sin(t / 11 + i)), 2),
                "net_rx_bytes_s": abs(2e6 * math.sin(t / 5 + i)),
                "net_tx_bytes_s": abs(4e5 * math.cos(t / 5 + i)),
                "uptime_s": 86400.0 * (i % 60 + 1) + t % 86400,
                "alerts_active": 1 if cpu > 93 else 0,
                "cpu_recent": [_cpu(i, k) for k in range(t - 19, t + 1)],
            }
        )
    return hosts


def serve(port: int, n: int) -> None:
    """Serve the read API's shapes and ``WS /api/stream`` for ``n`` hosts until killed."""
    from websockets.datastructures import Headers
    from websockets.http11 import Request, Response
    from websockets.sync.server import ServerConnection
    from websockets.sync.server import serve as ws_serve

    cache: dict[int, bytes] = {}
    fixed = {
        "/api/hosts/sentiment/overall": json.dumps(
            {"status": "degraded", "services": [], "hosts": {"total": n, "up": n}}
        ).encode(),
        "/api/alerts": b"[]",
        "/api/services": b"[]",
    }

    def answer(conn: ServerConnection, request: Request) -> Response | None:
        path = request.path.split("?", 1)[0]
        if path == "/api/stream":
            return None  # go on with the WebSocket handshake
        if path == "/api/hosts":
            t = int(time.time())
            if t not in cache:
                cache.clear()
                cache[t] = json.dumps(_hosts(n, t)).encode()
            body, status, reason = cache[t], 200, "OK"
        elif path in fixed:
            body, status, reason = fixed[path], 200, "OK"
        else:
            body, status, reason = b'{"error": "not_found", "detail": ""}', 404, "Not Found"
        headers = Headers(
            [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
        )
        return Response(status, reason, headers, body)

    def stream(conn: ServerConnection) -> None:
        """Every host updated once a second, as the real server publishes them."""
        conn.send(json.dumps({"type": "hello", "data": {}}))
        while True:
            t = time.time()
            for h in _hosts(n, int(t)):
                conn.send(json.dumps({"type": "host.updated", "data": h}))
            time.sleep(max(0.0, 1.0 - (time.time() - t)))

    with ws_serve(stream, "127.0.0.1", port, process_request=answer) as server:
        server.serve_forever()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("the stand-in server exited")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("the stand-in server did not start")


# --- the measurement --------------------------------------------------------------------------


def run(hosts: int = 500, seconds: float = 60, stream: bool = True) -> dict[str, Any]:
    """Measure the TUI's CPU (percent of one core) over ``seconds`` following ``hosts`` hosts.

    ``stream``: follow ``WS /api/stream`` (every host pushed each second, a full poll every 5 s)
    as against a server with the stream; False: poll the whole fleet every second instead.
    """
    from textual.pilot import Pilot

    from statusdash.tui.app import StatusdashApp
    from statusdash.tui.model import SortKey
    from statusdash.tui.source import ApiSource

    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve()), "--serve", str(port), str(hosts)],
        stdout=subprocess.DEVNULL,
    )
    mode = "stream" if stream else "poll"
    result: dict[str, Any] = {"name": f"tui-{mode}", "hosts": hosts, "seconds": seconds}
    source = ApiSource(f"http://127.0.0.1:{port}", timeout=5.0)
    try:
        _wait_port(port, server)
        app = StatusdashApp(source, poll_interval=1.0, stream=stream)
        app.model.set_sort(SortKey.cpu)
        started = time.monotonic()

        async def pilot(p: Pilot[Any]) -> None:
            deadline = time.monotonic() + 15
            while len(app.model.rows) < hosts and time.monotonic() < deadline:
                await p.pause(0.01)
            result["first_data_s"] = round(time.monotonic() - started, 3)
            await asyncio.sleep(WARMUP_S)
            polls0, batches0 = app.polls, app.stream_batches
            cpu0, wall0 = time.process_time(), time.monotonic()
            await asyncio.sleep(seconds)
            cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
            result["polls"] = app.polls - polls0
            result["stream_batches"] = app.stream_batches - batches0
            result["cpu_s"] = round(cpu, 3)
            result["wall_s"] = round(wall, 3)
            result["cpu_pct_one_core"] = round(100 * cpu / wall, 2)
            result["rows"] = len(app.model.rows)
            result["link"] = app.model.link.state(app.now()).value
            app.exit()

        app.run(headless=True, size=SIZE, auto_pilot=pilot)
    finally:
        source.close()
        server.terminate()
        server.wait(timeout=10)
    result["max_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    result["cpu_target_pct"] = TARGET_PCT
    result["cpu_ok"] = result.get("cpu_pct_one_core", 100.0) <= TARGET_PCT
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--hosts", type=int, default=500)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--poll", action="store_true", help="poll instead of the stream")
    parser.add_argument("--serve", nargs=2, metavar=("PORT", "HOSTS"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve(int(args.serve[0]), int(args.serve[1]))
        return
    print(json.dumps(run(args.hosts, args.seconds, stream=not args.poll), indent=2))


if __name__ == "__main__":
    main()
