"""Issue 11 item 12: a chart's axis and its "max" footer come from the same numbers, bucket times
are the start of the data they hold, and after a server restart the fleet's sparklines and the
host screen's charts are seeded from history, then follow live reports."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from statusdash import units
from statusdash.schema import HistoryPoint, HistorySeries
from statusdash.tui import fmt
from statusdash.tui.app import StatusdashApp
from statusdash.tui.screens.host import HostScreen
from statusdash.tui.widgets.chart import (
    AXIS_W,
    Chart,
    LiveSeries,
    Series,
    axis_top,
    render_chart,
    stats,
    timeline,
)
from tests.conftest import Live, make_report
from tests.tui.helpers import shown, wait_for
from tests.tui.test_live import HOSTS, seed, source_for

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
SPIKE = 3.1e6
QUIET = 1.0e5


def known(n: int = 60, bucket_s: float = 60.0) -> HistorySeries:
    """``n`` one-minute buckets of ``QUIET`` bytes/s with one ``SPIKE`` in the middle."""
    pts = [
        HistoryPoint(
            t=T0 + timedelta(seconds=k * bucket_s),
            avg=SPIKE if k == n // 2 else QUIET,
            min=0.0,
            max=SPIKE,
            count=1,
        )
        for k in range(n)
    ]
    return HistorySeries(
        host="h",
        metric="net.rx_bytes_s",
        since=T0,
        until=T0 + timedelta(seconds=n * bucket_s),
        bucket_s=bucket_s,
        points=pts,
    )


def test_axis_and_footer_max_come_from_the_same_numbers() -> None:
    values = timeline(known())
    s = Series("↓", values)
    _last, _mean, top = stats(values)
    assert top == SPIKE  # the footer's max
    assert axis_top(s, fmt.nice_ceiling_bytes) == fmt.nice_ceiling_bytes(SPIKE)
    # 60 buckets in 14 columns: the spike shares a column with three quiet buckets; averaged, it
    # drew a 1.0M axis under a footer that said max 3.0M. The axis is the step above the max.
    lines = render_chart([s], AXIS_W + 14, 5, units.size, "-1h", fmt.nice_ceiling_bytes)
    assert [line.plain[:AXIS_W] for line in lines[:1]] == ["↓5.0M┤"]
    assert units.size(top) == "3.0M"
    # The tallest column is the spike's, at 3.1 of 5.0: above half the band, below its top.
    body = [line.plain[AXIS_W:] for line in lines[:-1]]
    col = next(i for i, ch in enumerate(body[-1]) if ch == "█" and body[1][i] != " ")
    assert body[0][col] == " " and body[1][col] != " "


def test_bucket_times_are_starts_and_live_values_follow_on_the_same_grid() -> None:
    h = known(n=10)
    values = timeline(h)
    assert values[5] == SPIKE  # the point at T0 + 5 min holds [12:05, 12:06): column 5
    live = LiveSeries(h)
    assert not live.add(h.until - timedelta(seconds=1), 1.0)  # in the history already
    assert live.values(h.until) == values
    # A report 90 s after the answer's end falls in the second bucket after it: the window
    # slides two buckets, the live value last, the empty bucket between them kept empty.
    assert live.add(h.until + timedelta(seconds=90), 42.0)
    assert not live.add(h.until + timedelta(seconds=90), 43.0)  # the same report again
    now = h.until + timedelta(seconds=95)
    slid = live.values(now)
    assert len(slid) == len(values)
    assert slid[:-2] == values[2:] and slid[-2] is None and slid[-1] == 42.0
    assert stats(slid)[0] == 42.0  # the footer's "now"


async def test_after_a_restart_the_charts_start_from_history_then_go_live(
    live_server: Live,
) -> None:
    seed(live_server)  # every host: 12 reports over the last hour, CPU near its HOSTS value
    live_server.server.stop()
    live_server.server.start()  # the server's memory is empty; its database is not
    source = source_for(live_server)
    app = StatusdashApp(source, poll_interval=0.5, stream=True)
    try:
        async with app.run_test(size=(120, 36)) as pilot:
            await wait_for(pilot, lambda: len(app.model.rows) == len(HOSTS), what="rows")
            # The fleet's sparkline: the server remembers one value; history has the last 20
            # intervals (60 s each here), which hold four of the seeded reports.
            ring = app.model.rows["bravo"].cpu
            await wait_for(pilot, lambda: len(ring) >= 4, what="sparkline seeded")
            assert list(ring)[-4:] == [95.0, 93.0, 94.0, 95.0]
            app.open_host("bravo")
            await wait_for(pilot, lambda: isinstance(app.screen, HostScreen), what="host")
            screen = app.screen
            assert isinstance(screen, HostScreen)
            await wait_for(pilot, lambda: bool(screen.query("#cpu-chart")), what="mounted")
            cpu = screen.query_one("#cpu-chart", Chart)
            await wait_for(pilot, lambda: cpu.has_class("loaded"), what="history")
            seeded = [v for v in screen.chart_values("cpu.percent") if v is not None]
            assert len(seeded) >= 10  # the hour before the restart, not one point
            assert max(seeded) == HOSTS["bravo"]
            text = await shown(pilot)
            assert "max 95%" in text
            loads = screen.history_loads

            # A live report: the chart takes it from the host's detail, no history refetch.
            with live_server.agent("bravo") as agent:
                r = agent.post("/api/metrics/report", json=make_report("bravo", cpu=77.0))
                assert r.status_code == 200, r.text
            await wait_for(pilot, lambda: "now 77%" in _subtitle(screen), what="live point")
            assert screen.history_loads == loads
            assert "max 95%" in _subtitle(screen)
    finally:
        source.close()


def _subtitle(screen: HostScreen) -> str:
    return str(screen.query_one("#cpu-panel").border_subtitle)
