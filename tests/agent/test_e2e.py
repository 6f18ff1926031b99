"""The real agent process against the real statusdash server: outages lose nothing."""

from __future__ import annotations

import re
import signal
import subprocess
from pathlib import Path

from tests.agent.agentproc import CLI, AgentProc, clean_env, spooled, stored, wait_for
from tests.conftest import Live

N = 10


def agent_args(live: Live, spool: Path, *extra: str) -> list[str]:
    return [
        "--server",
        live.url,
        "--api-key",
        live.api_key("web-1"),
        "--host-id",
        "web-1",
        "--interval",
        "0.2",
        "--spool-dir",
        str(spool),
        "--backoff-max",
        "1",
        *extra,
    ]


def stopped_after(log: str) -> tuple[int, int]:
    m = re.search(r"stopped after (\d+) report\(s\); (\d+) spooled", log)
    assert m, log
    return int(m.group(1)), int(m.group(2))


def test_outage_reports_arrive_once_and_in_order(live_server: Live, tmp_path: Path) -> None:
    db, spool = live_server.settings.db_path, tmp_path / "spool"
    agent = AgentProc(tmp_path, *agent_args(live_server, spool))
    try:
        wait_for(lambda: len(stored(db)) >= 3, what="first reports")
        live_server.server.stop()
        wait_for(lambda: len(spooled(spool)) >= N, what=f"{N} spooled reports")
        during_outage = spooled(spool)
        live_server.server.start()
        wait_for(
            lambda: set(during_outage) <= {rid for rid, _ in stored(db)}, what="spool delivered"
        )
        assert agent.stop() == 0
    finally:
        agent.kill()
    collected, left = stopped_after(agent.log)
    rows = stored(db)
    ids = [rid for rid, _ in rows]
    assert left == 0 and not spooled(spool)
    assert len(ids) == collected == len(set(ids))  # every report, each stored once
    times = [ts for _, ts in rows]
    assert times == sorted(times)  # arrived in the order they were collected
    start = ids.index(during_outage[0])
    assert ids[start : start + len(during_outage)] == during_outage
    assert "connection refused" in agent.log


def test_restarted_agent_delivers_what_an_earlier_run_spooled(
    live_server: Live, tmp_path: Path
) -> None:
    db, spool = live_server.settings.db_path, tmp_path / "spool"
    args = agent_args(live_server, spool)
    live_server.server.stop()
    first = AgentProc(tmp_path, *args)
    try:
        wait_for(lambda: len(spooled(spool)) >= 5, what="reports spooled by the first run")
        assert first.stop() == 0  # SIGTERM with the server away: tries once, keeps the spool
    finally:
        first.kill()
    collected, left = stopped_after(first.log)
    assert left == collected >= 5
    waiting = spooled(spool)
    assert len(waiting) == left
    live_server.server.start()
    second = AgentProc(tmp_path, *args)
    try:
        wait_for(lambda: len(stored(db)) >= left + 2, what="old and new reports")
        assert second.stop(signal.SIGINT) == 0
    finally:
        second.kill()
    ids = [rid for rid, _ in stored(db)]
    assert ids[:left] == waiting  # the earlier run's reports first, in order
    assert len(ids) == len(set(ids)) == left + stopped_after(second.log)[0]
    assert f"{left} report(s) waiting from an earlier run" in second.log


def test_once_exits_nonzero_when_spooled_and_the_next_run_sends_both(
    live_server: Live, tmp_path: Path
) -> None:
    db, spool = live_server.settings.db_path, tmp_path / "spool"
    args = [*agent_args(live_server, spool), "--once"]
    live_server.server.stop()
    down = subprocess.run(
        [*CLI, *args], cwd=tmp_path, env=clean_env(), capture_output=True, text=True, timeout=60
    )
    assert down.returncode == 1
    assert "not delivered (connection refused" in down.stderr and "spooled in" in down.stderr
    assert "Traceback" not in down.stderr
    first = spooled(spool)
    assert len(first) == 1
    live_server.server.start()
    up = subprocess.run(
        [*CLI, *args], cwd=tmp_path, env=clean_env(), capture_output=True, text=True, timeout=60
    )
    assert up.returncode == 0, up.stderr
    assert "report delivered" in up.stdout and "(2 sent)" in up.stdout
    ids = [rid for rid, _ in stored(db)]
    assert len(ids) == 2 and ids[0] == first[0]
