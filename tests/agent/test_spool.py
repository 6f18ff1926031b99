"""The spool on a real directory: order, reopen, bounds, damage, locking, kill -9."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from statusdash.agent.spool import Spool, SpoolError


def payload(i: int, size: int = 0) -> bytes:
    return json.dumps({"report_id": f"id-{i}", "host": "h", "pad": "x" * size}).encode()


def ids(spool: Spool) -> list[str]:
    return [json.loads(spool.read(e))["report_id"] for e in spool.entries()]


def test_append_reopen_keeps_everything_in_order(tmp_path: Path) -> None:
    with Spool(tmp_path / "spool") as spool:
        for i in range(5):
            spool.append(payload(i), time.time())
        spool.ack(spool.oldest(2, 10**6))
        assert spool.pending == 3
    assert oct((tmp_path / "spool").stat().st_mode & 0o777) == "0o700"
    with Spool(tmp_path / "spool") as again:
        assert ids(again) == ["id-2", "id-3", "id-4"]
        again.append(payload(5), time.time())  # numbering continues after a restart
        assert ids(again) == ["id-2", "id-3", "id-4", "id-5"]
        assert again.size_bytes == sum(len(payload(i)) for i in range(2, 6))


def test_oldest_makes_batches_by_count_and_bytes(tmp_path: Path) -> None:
    with Spool(tmp_path) as spool:
        for i in range(10):
            spool.append(payload(i, 100), time.time())
        size = len(payload(0, 100))
        assert [e.seq for e in spool.oldest(4, 10**6)] == [1, 2, 3, 4]
        assert len(spool.oldest(100, 3 * size)) == 3
        assert len(spool.oldest(100, 1)) == 1  # always at least one


def test_size_bound_drops_oldest_with_a_counted_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    size = len(payload(0, 1000))
    with Spool(tmp_path, max_bytes=5 * size) as spool, caplog.at_level(logging.WARNING):
        for i in range(8):
            spool.append(payload(i, 1000), time.time())
        assert ids(spool) == [f"id-{i}" for i in range(3, 8)]
        assert spool.dropped_total == 3
    assert "3 dropped since start" in caplog.text
    assert len(list(tmp_path.glob("*.json"))) == 5


def test_age_bound_drops_old_reports_also_at_reopen(tmp_path: Path) -> None:
    now = [1_000_000.0]
    with Spool(tmp_path, max_age_s=3600, clock=lambda: now[0]) as spool:
        spool.append(payload(0), now[0] - 7200)  # already too old
        spool.append(payload(1), now[0] - 60)
        assert ids(spool) == ["id-1"] and spool.dropped_total == 1
    now[0] += 3600
    with Spool(tmp_path, max_age_s=3600, clock=lambda: now[0]) as spool:
        assert spool.pending == 0 and spool.dropped_total == 1


def test_torn_and_corrupt_files_are_ignored_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with Spool(tmp_path) as spool:
        for i in range(3):
            spool.append(payload(i), time.time())
    good = sorted(tmp_path.glob("*.json"))
    good[1].write_bytes(good[1].read_bytes()[:20])  # torn by a broken disk
    (tmp_path / ".000000000009.tmp").write_bytes(b'{"report_id": "half')  # crash mid-write
    (tmp_path / "notes.txt").write_text("an operator's file")
    with caplog.at_level(logging.WARNING), Spool(tmp_path) as spool:
        assert ids(spool) == ["id-0", "id-2"]
    assert "partly written" in caplog.text and "not a complete report" in caplog.text
    assert (tmp_path / "rejected" / good[1].name).exists()
    assert not (tmp_path / ".000000000009.tmp").exists()
    assert (tmp_path / "notes.txt").exists()


def test_deferred_sync_is_done_by_sync_and_close(tmp_path: Path) -> None:
    spool = Spool(tmp_path).open()
    a = spool.append(payload(0), time.time(), sync=False)
    spool.append(payload(1), time.time(), sync=False)
    assert spool._unsynced == {1, 2}
    spool.ack([a])
    assert spool._unsynced == {2}
    spool.sync()
    assert spool._unsynced == set()
    spool.append(payload(2), time.time(), sync=False)
    spool.close()
    assert spool._unsynced == set()
    with Spool(tmp_path) as again:
        assert ids(again) == ["id-1", "id-2"]


def test_reject_sets_a_report_aside(tmp_path: Path) -> None:
    with Spool(tmp_path) as spool:
        first = spool.append(payload(0), time.time())
        spool.append(payload(1), time.time())
        spool.reject(first, "was refused")
        assert ids(spool) == ["id-1"] and spool.rejected_total == 1
    assert (tmp_path / "rejected" / first.name).exists()


def test_second_agent_on_the_same_spool_is_refused(tmp_path: Path) -> None:
    busy = f"in use by another agent \\(pid {os.getpid()}\\)"
    with Spool(tmp_path), pytest.raises(SpoolError, match=busy):
        Spool(tmp_path).open()
    with Spool(tmp_path):  # released on close
        pass


def test_unwritable_spool_keeps_reports_in_memory(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    spool = Spool(tmp_path / "spool").open()
    try:
        spool.append(payload(0), time.time())
        os.unlink(tmp_path / "spool" / spool.entries()[0].name)
        os.unlink(tmp_path / "spool" / ".lock")
        os.rmdir(tmp_path / "spool")  # the directory is gone: writes fail
        with caplog.at_level(logging.ERROR):
            spool.append(payload(1), time.time())
            spool.append(payload(2), time.time())
        assert "keeping reports in memory" in caplog.text
        assert caplog.text.count("keeping reports in memory") == 1
        mem = spool.entries()[1:]
        assert [json.loads(spool.read(e))["report_id"] for e in mem] == ["id-1", "id-2"]
        spool.ack(spool.entries())
        assert spool.pending == 0
    finally:
        spool.close()


WRITER = """
import sys, time, json
from pathlib import Path
from statusdash.agent.spool import Spool
spool = Spool(Path(sys.argv[1])).open()
i = 0
while True:
    # as the agent writes: no fsync until a delivery fails (the page cache outlives kill -9)
    data = json.dumps({"report_id": f"id-{i}", "host": "h", "pad": "x" * 4000}).encode()
    spool.append(data, time.time(), sync=i % 2 == 0)
    i += 1
    if i == 20:
        print("ready", flush=True)
"""


def test_kill_9_mid_writing_loses_no_acknowledged_file(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    with Spool(tmp_path) as spool:
        got = ids(spool)
    assert len(got) >= 20
    assert got == [f"id-{i}" for i in range(len(got))]  # complete, in order, no hole
    assert not list(tmp_path.glob("*.tmp")) and not (tmp_path / "rejected").exists()
