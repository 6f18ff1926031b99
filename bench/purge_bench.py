"""How long ``hosts rm --purge`` holds the storage writer: one host's raw rows and both tiers.

``python -m bench.purge_bench``: a fresh database gets ``ROWS`` reports (10 s apart) from the host
to purge and as many from another, through ``Storage.ingest``; the rollup job folds them into the
1-minute and 1-hour tiers (a few are left pending), then ``Storage.remove_host(purge=True)`` runs
on the writer thread in one transaction. Reported: that call's time, the median and range over
``ROUNDS`` fresh databases. Reports queued behind it wait this long.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.payload import report_dict
from statusdash import wire
from statusdash.server import rollups
from statusdash.server.db import connect
from statusdash.server.storage import Storage

ROWS = 86_400  # 10 days at one report per 10 s
ROUNDS = 3
BATCH = 500


async def _fill(storage: Storage, host: str, rows: int, start: datetime) -> None:
    for i in range(0, rows, BATCH):
        batch = [
            wire.convert(
                report_dict(
                    host, str(uuid.uuid4()), (start + timedelta(seconds=10 * j)).isoformat()
                )
            )
            for j in range(i, min(rows, i + BATCH))
        ]
        await storage.ingest(batch)


async def _one(rows: int, data: Path) -> float:
    db = data / "statusdash.db"
    storage = Storage(db, "NORMAL")
    storage.open()
    try:
        start = datetime.now(UTC) - timedelta(seconds=10 * rows + 600)
        for host in ("gone-1", "kept-1"):
            await _fill(storage, host, rows, start)
        conn = connect(db, "NORMAL")
        try:
            rollups.roll_up(conn)
        finally:
            conn.close()
        await _fill(storage, "gone-1", 50, datetime.now(UTC) - timedelta(seconds=550))
        t0 = time.perf_counter()
        assert await storage.remove_host("gone-1", purge=True)
        return time.perf_counter() - t0
    finally:
        await storage.close()


def run(rows: int = ROWS, rounds: int = ROUNDS) -> dict[str, Any]:
    times = []
    for _ in range(rounds):
        with tempfile.TemporaryDirectory() as d:
            times.append(asyncio.run(_one(rows, Path(d))) * 1000)
    return {
        "rows": rows,
        "purge_ms_median": round(statistics.median(times), 1),
        "purge_ms_min": round(min(times), 1),
        "purge_ms_max": round(max(times), 1),
    }


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
