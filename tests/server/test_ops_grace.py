"""The start grace on a controllable clock, and the stream hub's going-away close.

A host known from before the restart is not judged offline until its grace ends (or it
reports); then its silence counts from its last report before the restart. Shutdown closes
every stream with 1001, even one whose queue is full.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from statusdash.server.stream import Broadcaster
from tests.conftest import make_report
from tests.server.harness import Harness, fetch_alerts, wait_for


def report(h: Harness, host: str) -> None:
    resp = h.live.agent(host).post("/api/metrics/report", json=make_report(host, interval_s=10))
    assert resp.status_code == 200, resp.text


def test_a_host_silent_since_before_the_restart_waits_for_the_grace(
    alerting: Callable[..., Harness],
) -> None:
    h = alerting(start_grace_s=60.0)
    report(h, "web-2")
    h.restart()  # the same data directory: web-2 is known, not heard from since the start
    h.clock.advance(55)  # 5.5 intervals of silence: offline, were it not for the grace
    time.sleep(0.3)  # a few checks
    assert fetch_alerts(h.live) == []
    h.clock.advance(10)  # the grace is over: its silence counts from before the restart
    [a] = wait_for(lambda: fetch_alerts(h.live), what="offline alert")
    assert (a["rule"], a["host"]) == ("offline", "web-2")
    assert a["message"].startswith("web-2: offline, no report for 1 min")


def test_a_host_heard_from_after_the_start_is_judged_as_usual(
    alerting: Callable[..., Harness],
) -> None:
    h = alerting(start_grace_s=3600.0)
    report(h, "web-3")
    h.restart()
    report(h, "web-3")  # its agent is back: the grace no longer applies to it
    h.clock.advance(65)
    [a] = wait_for(lambda: fetch_alerts(h.live), what="offline alert")
    assert (a["rule"], a["host"]) == ("offline", "web-3")


def test_shutdown_closes_every_stream_going_away_even_a_full_one() -> None:
    async def scenario() -> list[tuple[int, str]]:
        hub = Broadcaster(queue_size=2)
        idle, full = hub.subscribe(), hub.subscribe()
        for i in range(2):
            full.queue.put_nowait(f"m{i}")  # its reader is behind: the queue is full
        hub.close_all()
        assert await idle.next() is None and await full.next() is None
        assert hub.closing and not hub.subscribers  # the route closes later streams at once
        return [(s.closing.code, s.closing.reason) for s in (idle, full)]

    closed = asyncio.run(scenario())
    assert closed == [(1001, "server shutting down; reconnect")] * 2
