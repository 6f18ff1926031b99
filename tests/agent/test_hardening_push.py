"""Item 19: the agent survives a hostile server: capped answers, a total deadline per request,
and collection on schedule while a push hangs (real sockets, real TLS from our own pki)."""

from __future__ import annotations

import json
import logging
import shutil
import threading
import time
from pathlib import Path

import pytest

from statusdash.agent.config import AgentConfig
from statusdash.agent.push import Sender
from statusdash.agent.runner import Agent
from statusdash.agent.spool import Spool
from tests.agent.agentproc import AgentProc, spooled, wait_for
from tests.agent.hostile import Hostile, dribble, endless, silent


@pytest.fixture
def vault(tmp_path: Path, vault_template: Path) -> Path:
    shutil.copytree(vault_template, tmp_path / "vault")
    return tmp_path / "vault"


def config(url: str, tmp_path: Path, vault: Path | None = None, **over: object) -> AgentConfig:
    base: dict[str, object] = {
        "server_url": url,
        "host_id": "web-1",
        "spool_dir": tmp_path / "spool",
        "interval_s": 0.2,
        "timeout_s": 60.0,  # per read: far beyond the test, so only the total deadline ends it
        "push_timeout_s": 2.0,
    }
    if vault is not None:
        clients = vault / "clients"
        base |= {"ca": vault / "ca/ca.crt", "cert": clients / "web-1.crt"}
        base["key"] = clients / "web-1.key"
    else:
        base["api_key"] = "k-123"
    base.update(over)
    return AgentConfig(**base)  # type: ignore[arg-type]


def fill(spool: Spool, n: int) -> list[str]:
    ids = [f"r-{i:03d}" for i in range(n)]
    for rid in ids:
        spool.append(json.dumps({"report_id": rid, "host": "web-1"}).encode(), time.time())
    return ids


def test_a_dribbling_server_cannot_hold_a_push_past_its_deadline(
    vault: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with Hostile(dribble, vault) as server:
        sender = Sender(config(server.url, tmp_path, vault))
        with Spool(tmp_path / "spool") as spool:
            ids = fill(spool, 3)
            t0 = time.monotonic()
            with caplog.at_level(logging.WARNING, "statusdash.agent.push"):
                result = sender.deliver(spool)
            elapsed = time.monotonic() - t0
            kept = spooled(tmp_path / "spool")
        sender.close()
    # the server dribbles for 25 s, a byte every 0.25 s: only the 2 s deadline ends it sooner
    assert elapsed < 15, elapsed
    assert "did not answer within the push deadline (2 s)" in (result.error or "")
    assert "push deadline" in caplog.text
    assert kept == ids and server.requests == 1


@pytest.mark.parametrize("announce", [True, False], ids=["content-length", "until-close"])
def test_an_endless_answer_is_read_only_up_to_the_cap(
    announce: bool, vault: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with Hostile(endless(announce), vault) as server:
        sender = Sender(config(server.url, tmp_path, vault, push_timeout_s=60.0))
        with Spool(tmp_path / "spool") as spool:
            ids = fill(spool, 2)
            with caplog.at_level(logging.WARNING, "statusdash.agent.push"):
                result = sender.deliver(spool)
            kept = spooled(tmp_path / "spool")
        sender.close()
        sent = server.sent
    assert "answer over the 64 KiB cap" in (result.error or "") and "64 KiB cap" in caplog.text
    assert kept == ids
    # the server meant to send 128 MiB; the agent stopped reading after 64 KiB (what the
    # server wrote beyond that sat in socket buffers when the connection was closed)
    assert sent < 16 * 1024 * 1024, sent


def test_the_cap_is_a_setting(vault: Path, tmp_path: Path) -> None:
    with Hostile(endless(False), vault) as server:
        sender = Sender(config(server.url, tmp_path, vault, response_max_bytes=1024))
        with Spool(tmp_path / "spool") as spool:
            fill(spool, 1)
            result = sender.deliver(spool)
        sender.close()
    assert "over the 1 KiB cap (more than 1024 bytes)" in (result.error or "")


def test_collection_keeps_its_cadence_while_a_push_hangs(
    vault: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    spool_dir = tmp_path / "spool"
    seen: dict[str, int] = {}
    with Hostile(silent, vault) as server:
        cfg = config(server.url, tmp_path, vault, push_timeout_s=8.0, flush_timeout_s=1.0)
        agent = Agent(cfg)

        def watch() -> None:
            try:
                assert server.got_request.wait(30)
                # the first push now hangs (the server never answers); reports keep coming
                wait_for(lambda: len(spooled(spool_dir)) >= 6, 20, "six spooled reports")
            except AssertionError:
                pass
            finally:
                seen["spooled"] = len(spooled(spool_dir))
                seen["requests"] = server.requests
                agent.waker.stop()

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        with caplog.at_level(logging.INFO, "statusdash.agent"):
            assert agent.run() == 0
        watcher.join(10)
    assert seen["spooled"] >= 6 and seen["requests"] == 1, seen
    assert agent.cycles == len(spooled(spool_dir)) >= 6  # all kept: none was acknowledged
    assert "did not answer within the push deadline (8 s)" in caplog.text


def test_the_deadline_is_an_option_of_agent_run(vault: Path, tmp_path: Path) -> None:
    with Hostile(dribble, vault) as server:
        clients = vault / "clients"
        agent = AgentProc(
            tmp_path,
            *("--server", server.url, "--host-id", "web-1", "--ca", str(vault / "ca/ca.crt")),
            *("--cert", str(clients / "web-1.crt"), "--key", str(clients / "web-1.key")),
            *("--interval", "5", "--spool-dir", str(tmp_path / "spool"), "--push-timeout", "1.5"),
        )
        try:
            wait_for(lambda: "push deadline" in agent.log, 30, "the deadline's log line")
            assert agent.stop() == 0
        finally:
            agent.kill()
    assert "did not answer within the push deadline (1.5 s)" in agent.log
    assert len(spooled(tmp_path / "spool")) >= 1
