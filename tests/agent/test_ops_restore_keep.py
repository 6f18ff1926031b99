"""The keep window of acknowledged reports (agent/keep.py): private files, age and size caps that
evict the oldest with a log line, the re-send rule, an old server's answer, and the pause a
429/503 puts on the refill (never on live reports)."""

from __future__ import annotations

import json
import logging
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from statusdash.agent.config import AgentConfig
from statusdash.agent.keep import ABSENT, after_mark, parse_mark
from statusdash.agent.push import RESEND_PAUSE_MAX_S, RESEND_PAUSE_S, Sender, retry_pause
from statusdash.agent.spool import Entry, Spool
from tests.agent.standin import StandIn

MB = 1024 * 1024


def payload(i: int, size: int = 0) -> bytes:
    return json.dumps({"report_id": f"r-{i:03d}", "host": "web-1", "pad": "x" * size}).encode()


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def acked(spool: Spool, n: int, start: float, step: float = 10.0, size: int = 0) -> None:
    """Spool ``n`` reports collected ``step`` s apart from ``start`` and acknowledge them."""
    for i in range(n):
        spool.append(payload(i, size), start + i * step)
    spool.ack(spool.entries())


def kept_ids(spool: Spool) -> list[str]:
    folder = spool.keep.acked_dir
    return [json.loads(p.read_bytes())["report_id"] for p in sorted(folder.iterdir())]


def test_acknowledged_reports_are_kept_privately_and_reindexed(tmp_path: Path) -> None:
    with Spool(tmp_path / "spool", keep_max_bytes=MB, keep_max_age_s=3600) as spool:
        acked(spool, 3, time.time() - 30)
        assert spool.pending == 0 and spool.keep.kept == 3
        assert kept_ids(spool) == ["r-000", "r-001", "r-002"]
        for path in [spool.keep.acked_dir, spool.keep.resend_dir]:
            assert stat.S_IMODE(path.stat().st_mode) == 0o700
        for path in spool.keep.acked_dir.iterdir():
            assert stat.S_IMODE(path.stat().st_mode) == 0o600
        top = spool.keep.top_ms
    with Spool(tmp_path / "spool", keep_max_bytes=MB, keep_max_age_s=3600) as again:
        assert again.keep.kept == 3 and again.keep.top_ms == top and again.pending == 0


def test_keeping_off_removes_acknowledged_reports(tmp_path: Path) -> None:
    with Spool(tmp_path / "spool", keep_max_bytes=MB, keep_max_age_s=3600) as spool:
        acked(spool, 2, time.time() - 30)
    with Spool(tmp_path / "spool", keep_max_bytes=0, keep_max_age_s=3600) as spool:
        assert spool.keep.kept == 0 and not list(spool.keep.acked_dir.iterdir())
        acked(spool, 2, time.time())
        assert spool.keep.kept == 0 and not list(spool.keep.acked_dir.iterdir())


def test_the_age_cap_evicts_the_oldest_with_a_log_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    clock = Clock()
    with (
        Spool(tmp_path, keep_max_bytes=MB, keep_max_age_s=100, clock=clock) as spool,
        caplog.at_level(logging.INFO, logger="statusdash.agent.spool"),
    ):
        acked(spool, 6, clock.now - 50)  # collected 50 s ago to now
        assert spool.keep.kept == 6 and not caplog.text
        clock.now += 75  # the first three are now past 100 s
        acked(spool, 1, clock.now)
        assert kept_ids(spool)[:3] == ["r-003", "r-004", "r-005"]
        assert spool.keep.kept == 4 and spool.keep.evicted_total == 3
    assert "evicted 3 acknowledged report(s) over the age cap (0.0277778 h)" in caplog.text
    assert spool.dropped_total == 0  # nothing lost: the server had them


def test_the_size_cap_evicts_the_oldest_with_a_log_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    size = len(payload(0, 1000))
    with (
        Spool(tmp_path, keep_max_bytes=3 * size, keep_max_age_s=3600) as spool,
        caplog.at_level(logging.INFO, logger="statusdash.agent.spool"),
    ):
        acked(spool, 5, time.time() - 60, size=1000)
        assert kept_ids(spool) == ["r-002", "r-003", "r-004"]
        assert spool.keep.size_bytes == 3 * size
    assert "evicted 2 acknowledged report(s) over the size cap" in caplog.text


def _entries(*ts_ms: int) -> list[Entry]:
    return [Entry(i + 1, ts, 10) for i, ts in enumerate(ts_ms)]


def test_the_resend_rule_takes_only_what_lies_after_an_older_mark() -> None:
    kept = _entries(1000, 2000, 3000, 4000)
    assert after_mark(kept, 2000, top=4000) == kept[2:]  # the one at the mark is held
    assert after_mark(kept, 4000, top=4000) == []  # nothing lost
    assert after_mark(kept, 5000, top=4000) == []  # the server holds more: fine
    assert after_mark(kept, None, top=4000) == kept  # it holds nothing for us
    assert after_mark([], 1000, top=None) == []


def test_marks_are_read_strictly() -> None:
    assert parse_mark({"accepted": 1, "duplicates": 0}) is ABSENT  # an older server
    assert parse_mark({"high_water": None}) is None
    assert parse_mark({"high_water": "2026-12-02T06:00:00.250000+00:00"}) == 1_796_191_200_250
    for bad in ("soon", 5, "2026-12-02T06:00:00", [1]):  # naive time, number, list
        assert parse_mark({"high_water": bad}) is ABSENT
    assert parse_mark(["high_water"]) is ABSENT


@pytest.fixture
def standin() -> Iterator[StandIn]:
    with StandIn() as s:
        yield s


def config(url: str, tmp_path: Path) -> AgentConfig:
    return AgentConfig(server_url=url, host_id="web-1", api_key="k-1", spool_dir=tmp_path / "spool")


def test_an_old_servers_answer_without_a_mark_changes_nothing(
    standin: StandIn, tmp_path: Path
) -> None:
    cfg = config(standin.url, tmp_path)
    sender = Sender(cfg)
    with Spool(cfg.spool_dir, keep_max_bytes=MB, keep_max_age_s=3600) as spool:
        acked_before = time.time() - 100
        for i in range(5):
            spool.append(payload(i), acked_before + i)
        sender.deliver(spool)
        standin.seen.clear()  # the old server lost them all (a restore, say)
        spool.append(payload(99), time.time())
        assert sender.deliver(spool).ok
        assert spool.keep.resend_waiting == 0 and spool.keep.kept == 6
    sender.close()
    assert [ids for _, _, ids in standin.posts][-1] == [json.loads(payload(99))]


def test_a_503_pauses_the_refill_but_not_live_reports(standin: StandIn, tmp_path: Path) -> None:
    cfg = config(standin.url, tmp_path)
    sender = Sender(cfg)
    with Spool(cfg.spool_dir, keep_max_bytes=MB, keep_max_age_s=3600) as spool:
        t0 = time.time() - 100
        for i in range(4):
            spool.append(payload(i), t0 + i * 10)
        sender.deliver(spool)
        assert spool.keep.observe(int((t0 + 10) * 1000)) == 2  # as a restored server would say
        standin.script = [503]
        before = time.monotonic()
        assert sender.deliver(spool).ok  # the refill is asked to wait: not a failure
        assert sender.resend_after >= before + RESEND_PAUSE_S
        assert spool.keep.resend_waiting == 2
        spool.append(payload(50), time.time())
        assert sender.deliver(spool).delivered == 1  # the live report goes; the refill waits
        assert spool.keep.resend_waiting == 2
        sender.resend_after = 0.0  # the pause is over
        assert sender.deliver(spool).delivered == 2 and spool.keep.resend_waiting == 0
    sender.close()
    sent = [[r["report_id"] for r in reports] for _, _, reports in standin.posts]
    assert sent[-3:] == [["r-002", "r-003"], ["r-050"], ["r-002", "r-003"]]


def test_retry_after_is_read_within_bounds() -> None:
    def pause(value: str | None) -> float:
        headers = {"Retry-After": value} if value is not None else {}
        return retry_pause(httpx.Response(503, headers=headers))

    assert pause("17") == 17.0
    assert pause(None) == pause("Wed, 21 Oct 2026 07:28:00 GMT") == RESEND_PAUSE_S
    assert pause("0") == 1.0 and pause("86400") == RESEND_PAUSE_MAX_S
