"""The dead-man's switch (issue 11, item 5a): a real server on loopback GETs HEARTBEAT_URL on a
local receiver (tests/server/receiver.py) every interval while it is healthy, never when it
cannot write its database, not after it stops, and logs a failing URL masked.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from pathlib import Path

import pytest

from statusdash.server.heartbeat import database_writable, writer_alive
from statusdash.server.storage import Storage
from statusdash.settings import Settings
from tests.conftest import RunningServer, free_port, make_settings
from tests.server.harness import wait_for
from tests.server.receiver import Receiver, receiver

__all__ = ["receiver"]
INTERVAL_S = 0.3


def beats(rec: Receiver, path: str) -> list[float]:
    return [t for t, p in list(rec.gets) if p == path]


def test_heartbeats_arrive_at_their_interval_and_stop_with_the_server(
    tmp_path: Path, receiver: Receiver
) -> None:
    url = receiver.url("/ping/abc-123")
    settings = make_settings(tmp_path / "data", heartbeat_url=url, heartbeat_interval_s=INTERVAL_S)
    server = RunningServer(settings).start()
    try:
        times = wait_for(
            lambda: len(beats(receiver, "/ping/abc-123")) >= 6 and beats(receiver, "/ping/abc-123"),
            what="six heartbeats",
        )
        later = times[1:]  # the first one comes at start; then one per interval, no burst
        assert later[-1] - later[0] >= (len(later) - 2) * INTERVAL_S
    finally:
        server.stop()
    stopped = len(beats(receiver, "/ping/abc-123"))
    time.sleep(4 * INTERVAL_S)
    assert len(beats(receiver, "/ping/abc-123")) == stopped  # none after the server stopped


def test_no_heartbeat_while_the_database_cannot_be_written(
    tmp_path: Path, receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="statusdash.server.heartbeat")
    settings = make_settings(
        tmp_path / "data",
        heartbeat_url=receiver.url("/ping"),
        heartbeat_interval_s=INTERVAL_S,
        heartbeat_timeout_s=0.2,
    )
    server = RunningServer(settings).start()
    try:
        wait_for(lambda: beats(receiver, "/ping"), what="a first heartbeat")
        lock = sqlite3.connect(settings.db_path, isolation_level=None)
        try:
            lock.execute("BEGIN EXCLUSIVE")  # another writer holds the database
            time.sleep(INTERVAL_S)  # a ping already under way may still land
            held = len(beats(receiver, "/ping"))
            time.sleep(5 * INTERVAL_S)
            assert len(beats(receiver, "/ping")) == held
            assert "not sent: database not writable: database is locked" in caplog.text
        finally:
            lock.execute("ROLLBACK")
            lock.close()
        wait_for(lambda: len(beats(receiver, "/ping")) > held, what="heartbeats again")
    finally:
        server.stop()


def test_a_failing_heartbeat_url_is_logged_masked(
    tmp_path: Path, receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    refused = f"http://user:hunter22@127.0.0.1:{free_port()}/ping/uuid-s3cr3t?token=t0ps3cret"
    receiver.status = {"/ping/uuid-answers-500": 500}
    for url, error in (
        (refused, "ConnectError"),
        (receiver.url("/ping/uuid-answers-500"), "HTTP 500"),
    ):
        caplog.clear()
        settings = make_settings(tmp_path / "data", heartbeat_url=url, heartbeat_interval_s=0.2)
        server = RunningServer(settings).start()
        try:
            wait_for(lambda e=error: e in caplog.text, what=f"the {error} logged")  # type: ignore[misc]
        finally:
            server.stop()
        text = caplog.text + "".join(str(r.args) for r in caplog.records)
        assert "heartbeat to http://127.0.0.1:" in text and "/ping/… failed" in text
        for secret in ("hunter22", "uuid-s3cr3t", "t0ps3cret", "uuid-answers-500"):
            assert secret not in text, secret


def test_the_health_check_sees_a_stopped_writer(tmp_path: Path) -> None:
    async def run() -> tuple[bool, bool, str]:
        storage = Storage(tmp_path / "statusdash.db", "NORMAL")
        storage.open()
        alive = writer_alive(storage)
        problem = database_writable(storage.db_path, 1.0)
        await storage.close()
        return alive, writer_alive(storage), problem

    assert asyncio.run(run()) == (True, False, "")
    missing = database_writable(tmp_path / "nowhere" / "x.db", 0.2)
    assert missing.startswith("database not writable: unable to open")


def test_heartbeat_settings_default_to_off_and_one_minute() -> None:
    s = Settings(_env_file=None)
    assert s.heartbeat_url is None
    assert (s.heartbeat_interval_s, s.heartbeat_timeout_s) == (60.0, 10.0)
    assert "hc-ping" not in repr(Settings(_env_file=None, heartbeat_url="https://hc-ping.com/x"))
