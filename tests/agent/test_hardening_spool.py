"""Item 20: the spool forgets only what the server acknowledged, counted; evictions for space
or age are logged with their counts (real sockets, real TLS from our own pki)."""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from statusdash.agent.push import Sender
from statusdash.agent.spool import Spool
from tests.agent.agentproc import spooled
from tests.agent.hostile import Hostile, canned, cut
from tests.agent.test_hardening_push import config, fill

ACK = b'{"accepted": 1, "duplicates": 0}'
NOT_ACKS: dict[str, Callable[..., None]] = {
    "one-of-five": canned(200, ACK),
    "html-200": canned(200, b"<html><body>welcome</body></html>", "text/html"),
    "json-list": canned(200, b"[5, 0]"),
    "counts-as-strings": canned(200, b'{"accepted": "5", "duplicates": "0"}'),
    "counts-as-bools": canned(200, b'{"accepted": true, "duplicates": true}'),
    "negative-count": canned(200, b'{"accepted": 6, "duplicates": -1}'),
    "too-many": canned(200, b'{"accepted": 5, "duplicates": 1}'),
    "empty-200": canned(200, b""),
    "503": canned(503, b'{"error": "unavailable", "detail": "later"}'),
    "cut-connection": cut,
}


@pytest.fixture
def vault(tmp_path: Path, vault_template: Path) -> Path:
    shutil.copytree(vault_template, tmp_path / "vault")
    return tmp_path / "vault"


@pytest.mark.parametrize("behave", NOT_ACKS.values(), ids=NOT_ACKS.keys())
def test_any_answer_but_a_full_count_keeps_the_whole_batch(
    behave: Callable[..., None], vault: Path, tmp_path: Path
) -> None:
    with Hostile(behave, vault) as server:
        sender = Sender(config(server.url, tmp_path, vault))
        with Spool(tmp_path / "spool") as spool:
            ids = fill(spool, 5)
            result = sender.deliver(spool)
            assert spool.pending == 5
        sender.close()
    assert not result.ok and result.delivered == 0
    assert spooled(tmp_path / "spool") == ids and server.requests >= 1


def test_a_short_count_is_named_in_the_log(
    vault: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with Hostile(canned(200, ACK), vault) as server:
        sender = Sender(config(server.url, tmp_path, vault))
        with Spool(tmp_path / "spool") as spool, caplog.at_level(logging.WARNING):
            fill(spool, 5)
            sender.deliver(spool)
        sender.close()
    assert "acknowledging 1 of the 5 report(s) sent" in caplog.text
    assert "all 5 kept spooled" in caplog.text


def test_a_single_report_needs_its_own_ack(vault: Path, tmp_path: Path) -> None:
    with Hostile(canned(200, b'{"accepted": 0, "duplicates": 0}'), vault) as server:
        sender = Sender(config(server.url, tmp_path, vault))
        with Spool(tmp_path / "spool") as spool:
            ids = fill(spool, 1)
            assert not sender.deliver(spool).ok
        sender.close()
    assert spooled(tmp_path / "spool") == ids


def test_a_full_count_forgets_the_batch(vault: Path, tmp_path: Path) -> None:
    with Hostile(canned(200, b'{"accepted": 3, "duplicates": 2}'), vault) as server:
        sender = Sender(config(server.url, tmp_path, vault))
        with Spool(tmp_path / "spool") as spool:
            fill(spool, 5)
            result = sender.deliver(spool)
        sender.close()
    assert result.ok and result.delivered == 5 and not spooled(tmp_path / "spool")


def _report(i: int) -> bytes:
    return json.dumps({"report_id": f"r-{i}", "host": "h", "pad": "x" * 200}).encode()


def test_evictions_for_space_are_logged_with_counts_and_times(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    base = 1_780_000_000.0  # 2026-05-28 20:26:40 UTC
    size = len(_report(0))
    with Spool(tmp_path / "spool", max_bytes=5 * size, max_age_s=1e10) as spool:
        for i in range(5):
            spool.append(_report(i), base + 10 * i)
        with caplog.at_level(logging.WARNING, "statusdash.agent.spool"):
            spool.append(_report(5) + b" " * (2 * size), base + 50)  # three times the size
    assert spool.dropped_total == 3
    line = caplog.records[-1].getMessage()
    assert "dropped 3 oldest report(s) over the size bound" in line
    assert "collected 2026-05-28T20:26:40Z to 2026-05-28T20:27:00Z" in line
    assert "3 dropped since start" in line


def test_evictions_for_age_are_logged_with_counts_and_times(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    now = [time.time()]
    with Spool(tmp_path / "spool", max_age_s=3600, clock=lambda: now[0]) as spool:
        for i in range(3):
            spool.append(_report(i), now[0] - 60 + 30 * i)
        now[0] += 3600 - 15  # the first two are now over an hour old
        with caplog.at_level(logging.WARNING, "statusdash.agent.spool"):
            assert spool.enforce_bounds() == 2
    line = caplog.records[-1].getMessage()
    assert "dropped 2 oldest report(s) over the age bound (1 h)" in line
    assert "collected " in line and spool.pending == 1
