"""The TUI's pure parts: formats, the fleet model (sort, filter, sparkline, link) and charts."""

from __future__ import annotations

from datetime import timedelta

import pytest

from statusdash import units
from statusdash.schema import HistoryPoint, HistorySeries, HostStatus, HostSummary, Sentiment
from statusdash.tui import fmt
from statusdash.tui.model import MAX_BACKOFF_S, SPARK_LEN, ConnState, FleetModel, SortKey
from statusdash.tui.source import parse_event
from statusdash.tui.widgets.chart import Series, render_chart, timeline
from statusdash.tui.widgets.fleet_table import make_layout
from tests.tui.fleetdata import NOW, frames, sentiment


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, "-"),
        (0, "0"),
        (0.4, "0"),
        (512, "512"),
        (88 * 1024, "88K"),
        (1.2 * 2**20, "1.2M"),
        (3.4 * 2**30, "3.4G"),
        (999.4, "999"),
        (1000, "1.0K"),
    ],
)
def test_scaled(value: float | None, text: str) -> None:
    assert units.size(value) == text


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (None, "-"),
        (0, "0s"),
        (59.9, "59s"),
        (60, "1m"),
        (3599, "59m"),
        (7200, "2h"),
        (47 * 3600, "47h"),
        (41 * 86400, "41d"),
        (-5, "0s"),
    ],
)
def test_duration(seconds: float | None, text: str) -> None:
    assert fmt.duration(seconds) == text


def test_levels_and_sparkline() -> None:
    assert fmt.level(90, 90) == "crit"
    assert fmt.level(80, 90) == "warn"
    assert fmt.level(79.9, 90) == "ok"
    assert fmt.level(None, 90) == "none"
    assert fmt.sparkline([0, 50, 100, None], 6) == "▁▅█   "
    assert fmt.sparkline(list(range(100)), 3) == "███"
    assert fmt.nice_ceiling(0.42) == 0.5
    assert fmt.nice_ceiling(120) == 200
    assert fmt.nice_ceiling_bytes(4.5 * 2**20) == 5 * 2**20
    assert fmt.resample([1, 3, None, None], 2) == [2, None]
    assert fmt.resample([1.0, 2.0], 4) == [1.0, 1.0, 2.0, 2.0]


def test_model_sort_filter_and_sparkline() -> None:
    model = FleetModel(fmt.Thresholds(), NOW)
    fr = frames(5)
    for i, frame in enumerate(fr):
        model.apply_hosts(frame, NOW + timedelta(seconds=i))
    # The sparklines hold what the server remembers, full from the first answer.
    last = {h.host: h for h in fr[-1]}
    assert list(model.rows["apricot"].cpu) == last["apricot"].cpu_recent
    assert len(model.rows["black"].cpu) == SPARK_LEN
    assert model.view()[:3] == ["apricot", "black", "cherry"]
    model.set_sort(SortKey.cpu)
    cpus = [model.rows[h].summary.cpu_percent for h in model.view()]
    known = [c for c in cpus if c is not None]
    assert known == sorted(known, reverse=True) and cpus[-1] is None  # unknown last
    model.set_sort(SortKey.cpu)  # same key again flips the order, unknown still last
    cpus = [model.rows[h].summary.cpu_percent for h in model.view()]
    assert cpus[-1] is None
    rising = [c for c in cpus if c is not None]
    assert rising == sorted(rising)
    model.set_sort(SortKey.status)
    assert model.view()[0] == "cherry" and model.view()[1] == "apricot"  # down, then alert
    model.set_filter("web-1")
    assert model.view() == [f"web-{i}" for i in range(10, 19)]
    model.set_filter("stale")
    assert model.view() == ["black"]
    model.set_filter("")
    assert len(model.view()) == len(fr[-1])
    # A host gone from the answer leaves the table.
    model.apply_hosts([h for h in fr[-1] if h.host != "web-01"], NOW)
    assert "web-01" not in model.view()
    assert model.counts() == {"up": 20, "stale": 1, "down": 1}


def test_sparkline_seeded_from_the_server_and_kept_when_it_knows_less() -> None:
    model = FleetModel(fmt.Thresholds(), NOW)
    base = next(h for h in frames(1)[0] if h.host == "web-01")

    def report(k: int, recent: list[float]) -> HostSummary:
        at = NOW + timedelta(seconds=k)
        return base.model_copy(
            update={"collected_at": at, "cpu_percent": float(k), "cpu_recent": recent}
        )

    model.apply_update(report(1, [7.0, 8.0, 1.0]), NOW)  # first sight: the server's values
    assert list(model.rows["web-01"].cpu) == [7.0, 8.0, 1.0]
    model.apply_update(report(2, []), NOW)  # an older server sends none: one value per report
    model.apply_update(report(2, []), NOW)  # the same report again adds nothing
    assert list(model.rows["web-01"].cpu) == [7.0, 8.0, 1.0, 2.0]
    model.apply_update(report(3, [3.0]), NOW)  # a restarted server knows less: keep ours
    assert list(model.rows["web-01"].cpu) == [7.0, 8.0, 1.0, 2.0, 3.0]
    full = [float(v) for v in range(30)]
    model.apply_hosts([report(4, full)], NOW)  # once it knows as much, it is the reference
    assert list(model.rows["web-01"].cpu) == full[-SPARK_LEN:]


def test_thresholds_come_from_the_server_once_it_sends_them() -> None:
    local = fmt.Thresholds(cpu=95, memory=95, disk=95)
    model = FleetModel(local, NOW)
    old = Sentiment.model_validate(sentiment().model_dump(exclude={"thresholds"}))
    model.set_sentiment(old)  # a server without thresholds: the local ones stay
    assert model.thresholds == local
    model.set_sentiment(sentiment())
    assert (model.thresholds.cpu, model.thresholds.memory, model.thresholds.disk) == (90, 75, 90)
    assert model.thresholds.warn_margin == local.warn_margin


def test_cycle_sort_visits_every_column() -> None:
    model = FleetModel(fmt.Thresholds(), NOW)
    seen = {model.cycle_sort() for _ in range(len(SortKey))}
    assert seen == set(SortKey)


def test_link_states_and_backoff() -> None:
    model = FleetModel(fmt.Thresholds(), NOW)
    link = model.link
    assert link.state(NOW) is ConnState.connecting
    link.ok(NOW)
    assert link.state(NOW) is ConnState.polling
    link.streaming = True
    assert link.state(NOW) is ConnState.live
    link.failed("refused")
    assert link.state(NOW + timedelta(seconds=3)) is ConnState.reconnecting
    assert model.data_stale(NOW + timedelta(seconds=3))
    assert link.state(NOW + timedelta(seconds=11)) is ConnState.offline
    assert link.data_age(NOW + timedelta(seconds=11)) == 11
    delays = []
    for _ in range(8):
        delays.append(link.backoff(1.0))
        link.failed("refused")
    assert delays[:5] == [1, 2, 4, 8, 16] and max(delays) == MAX_BACKOFF_S
    link.ok(NOW)
    assert link.backoff(1.0) == 1.0 and not model.data_stale(NOW)


def test_layout_fits_every_width() -> None:
    fixed = [SortKey.mem, SortKey.disk, SortKey.load, SortKey.net, SortKey.up, SortKey.seen]
    for longest in (6, 12, 30):
        for width in range(56, 240, 3):
            lay = make_layout(width, longest)
            keys = [k for k, _x, _w in lay.cells]
            assert keys[:3] == [SortKey.status, SortKey.host, SortKey.cpu] and keys[3:9] == fixed
            _key, x, w = lay.cells[-1]
            assert x + w <= width, (width, longest)
            assert 1 <= lay.gap <= 3
            cpu = lay.cell(SortKey.cpu)
            assert cpu is not None and cpu[1] == 5 + (lay.spark + 1 if lay.spark else 0)
            if width >= 78:  # 80 columns, less the panel's border: the sparkline fits
                assert lay.spark >= 8 and lay.host >= min(longest, 12)
            if width >= 98:
                assert lay.spark == SPARK_LEN and lay.host >= longest
    assert make_layout(58, 12).spark == 0  # too narrow: no sparkline, every column kept
    # Wide: the gaps stop at 3 and the hosts' OS takes the rest, so columns never drift apart.
    wide = make_layout(198, 12)
    assert wide.gap == 3 and wide.host == 12 and wide.cell(SortKey.os) is not None
    assert make_layout(98, 12).cell(SortKey.os) is None


def test_timeline_places_points_in_their_buckets() -> None:
    since = NOW - timedelta(hours=1)
    pts = [
        HistoryPoint(t=since + timedelta(seconds=30 * k), avg=float(k), min=0, max=0, count=1)
        for k in (0, 1, 3)
    ]
    s = HistorySeries(
        host="a", metric="cpu.percent", since=since, until=NOW, bucket_s=30, points=pts
    )
    line = timeline(s)
    assert len(line) == 120 and line[:4] == [0.0, 1.0, None, 3.0]


def test_render_chart_shape() -> None:
    lines = render_chart([Series("", [0, 50, 100], top=100)], 20, 5, lambda v: f"{v:.0f}", "-1h")
    assert len(lines) == 5
    plain = [ln.plain for ln in lines]
    assert plain[0].startswith("  100┤") and plain[-1].endswith("now")
    assert all(len(p) == 20 for p in plain[:-1])
    assert plain[3].rstrip().endswith("█")  # the 100% column is full to the bottom row
    two = render_chart([Series("↓", [1, 2]), Series("↑", [2, 1])], 30, 7, units.size)
    assert sum("↓" in ln.plain for ln in two) == 1 and sum("↑" in ln.plain for ln in two) == 1


def test_parse_event() -> None:
    ev = parse_event('{"type": "host.updated", "data": {"host": "a"}}')
    assert ev is not None and ev.type == "host.updated" and ev.data == {"host": "a"}
    assert parse_event("not json") is None
    assert parse_event('{"data": {}}') is None
    assert parse_event('{"type": "x", "data": 3}') == type(ev)("x", {})


def test_marker_precedence() -> None:
    h = next(h for h in frames(1)[0] if h.host == "apricot")
    assert fmt.host_marker(h) == fmt.MARK_ALERT
    assert fmt.host_marker(h.model_copy(update={"status": HostStatus.down})) == fmt.MARK_DOWN
    calm = h.model_copy(update={"alerts_active": 0})
    assert fmt.host_marker(calm) == fmt.MARK_UP
    assert fmt.host_marker(calm.model_copy(update={"status": HostStatus.stale})) == fmt.MARK_STALE
