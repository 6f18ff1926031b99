"""What one ``GET /metrics`` costs the server: the exposition rendered over N cached hosts.

``python -m bench.metrics_scrape``: an app built by ``create_app`` with N hosts (default 10,000)
in its latest-report cache, each with a realistic report (bench/payload.py); the scrape as the
route builds it (``prom.Scrape`` on the loop, ``prom.render`` in a thread) timed with and
without METRICS_FLEET. The render runs off the event loop, but it holds the GIL.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.payload import report_dict
from statusdash import wire
from statusdash.server import prom
from statusdash.server.app import create_app
from statusdash.server.cache import HostState
from statusdash.server.context import ServerContext, context_of
from statusdash.settings import Settings

HOSTS = 10_000
ROUNDS = 5


def _ctx(data: Path, hosts: int, fleet: bool) -> ServerContext:
    settings = Settings(
        _env_file=None,
        status_admin_password="bench-admin-password-123",
        status_jwt_secret="bench-jwt-secret-0123456789abcdef0123456789",
        status_data_dir=data,
        mtls_enabled=False,
        metrics_fleet=fleet,
    )
    ctx = context_of(create_app(settings))
    now = datetime.now(UTC)
    for i in range(hosts):
        body = report_dict(f"host-{i:05d}", str(uuid.uuid4()), now.isoformat())
        report = wire.decode_report(json.dumps(body).encode(), now=now, max_age=None)
        ctx.storage.cache.put(HostState(report.host, report, now, report.interval_s))
    return ctx


def _time(ctx: ServerContext, rounds: int) -> tuple[list[float], int]:
    times: list[float] = []
    size = 0
    for _ in range(rounds):
        t0 = time.perf_counter()
        scrape = prom.Scrape(ctx, prom.Net(None, ()), 0, datetime.now(UTC))
        size = len(prom.render(scrape))
        times.append(time.perf_counter() - t0)
    return times, size


def run(hosts: int = HOSTS, rounds: int = ROUNDS) -> dict[str, Any]:
    out: dict[str, Any] = {"hosts": hosts}
    with tempfile.TemporaryDirectory() as tmp:
        for fleet in (False, True):
            ctx = _ctx(Path(tmp) / f"fleet-{fleet}", hosts, fleet)
            times, size = asyncio.run(asyncio.to_thread(_time, ctx, rounds))
            ms = sorted(t * 1000 for t in times)
            key = "fleet" if fleet else "server_only"
            out[key] = {
                "render_ms_median": round(statistics.median(ms), 1),
                "render_ms_max": round(ms[-1], 1),
                "kb": round(size / 1024, 1),
            }
    return out


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
