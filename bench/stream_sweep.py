"""What re-checking open streams' credentials costs: one sweep over N subscribers.

``python -m bench.stream_sweep``: the hub's sweep (``Broadcaster.sweep``, run every
STREAM_RECHECK_S) over 10,000 subscribers, half token streams and half certificate streams,
against a denylist of 1,000 serials; none has ended, so every one is checked and kept.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from typing import Any

from statusdash.server.stream import Broadcaster, Grant

SUBSCRIBERS = 10_000
ROUNDS = 50


async def _measure(subscribers: int, rounds: int) -> list[float]:
    hub = Broadcaster(queue_size=8)
    later = time.time() + 3600
    for i in range(subscribers):
        hub.subscribe(Grant(expires_at=later) if i % 2 else Grant(serial=10_000 + i))
    denied = frozenset(range(1_000))
    times: list[float] = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        closed = hub.sweep(denied.__contains__)
        times.append(time.perf_counter() - t0)
        assert closed == 0
    return times


def run(subscribers: int = SUBSCRIBERS, rounds: int = ROUNDS) -> dict[str, Any]:
    times = asyncio.run(_measure(subscribers, rounds))
    ms = sorted(t * 1000 for t in times)
    return {
        "subscribers": subscribers,
        "sweep_ms_median": round(statistics.median(ms), 3),
        "sweep_ms_max": round(ms[-1], 3),
        "us_per_stream": round(statistics.median(ms) * 1000 / subscribers, 3),
    }


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
