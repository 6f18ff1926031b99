"""A planned restart pages no one; a host that stays silent through the start grace still does.

The real ``statusdash server run`` (mTLS, ``bench.shutdown.ServerProc``) with real agent
processes (``tests/agent/agentproc.py``), a webhook receiver on loopback as the notification
target; SIGTERM, a pause longer than the offline threshold, a start on the same data directory
and port.
"""

from __future__ import annotations

import itertools
import json
import signal
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
from bench.shutdown import ServerProc

from tests.agent.agentproc import AgentProc, stored, wait_for
from tests.agent.test_e2e import stopped_after
from tests.conftest import make_vault
from tests.server.receiver import Receiver, receiver  # noqa: F401  (the fixture)

INTERVAL_S = 1.0  # offline after 5 intervals: 5 s
DOWN_S = 6.0  # the server stays down longer than that
ONLY_OFFLINE = "[rules.cpu]\nenabled = false\n[rules.memory]\nenabled = false\n" + (
    "[rules.disk]\nenabled = false\n"
)


def start_fleet(tmp_path: Path, rec: Receiver, hosts: tuple[str, ...], grace_s: float) -> Any:
    vault = make_vault(tmp_path / "vault", hosts)
    rules = tmp_path / "rules.toml"
    rules.write_text(ONLY_OFFLINE)
    env = {
        "WEBHOOK_URLS": rec.url("/hook"),
        "ALERT_RULES_FILE": str(rules),
        "ALERT_CHECK_INTERVAL_S": "0.25",
        "ALERT_START_GRACE_S": str(grace_s),
    }
    server = ServerProc(tmp_path, vault, env)
    server.start()
    agents = {h: agent(tmp_path, server, h) for h in hosts}
    return server, agents


def agent(tmp_path: Path, server: ServerProc, host: str) -> AgentProc:
    """The real agent, default backoff: 10 s at most after a refused connection."""
    args = ["--server", server.url, "--certs-dir", str(server.vault), "--host-id", host]
    args += ["--interval", str(INTERVAL_S), "--spool-dir", str(tmp_path / f"spool-{host}")]
    return AgentProc(tmp_path, *args)


def db(server: ServerProc) -> Path:
    return server.data / "statusdash.db"


def alert_rows(server: ServerProc) -> list[tuple[str, str, str]]:
    with sqlite3.connect(db(server), timeout=10) as conn:
        rows = conn.execute("SELECT rule, host, state FROM alerts ORDER BY id").fetchall()
    return [(str(r), str(h), str(s)) for r, h, s in rows]


def notices(rec: Receiver) -> list[tuple[str, str, str]]:
    out = []
    for body in rec.seen("/hook"):
        n = json.loads(body)
        out.append((n["event"], n["alert"]["rule"], n["alert"]["host"]))
    return out


def restart(server: ServerProc, down_s: float) -> float:
    """SIGTERM, stay down ``down_s``, start again; the monotonic time of the start."""
    assert server.signal_exit(signal.SIGTERM) < 5.0, server.log_tail()
    time.sleep(down_s)
    started = time.monotonic()
    server.start()
    return started


@pytest.mark.slow
def test_a_planned_restart_pages_no_one_and_leaves_no_hole(
    tmp_path: Path,
    receiver: Receiver,  # noqa: F811
) -> None:
    hosts = ("web-1", "web-2", "web-3")
    grace_s = 25.0  # > the agents' 10 s reconnect cap after a refused connection, with margin
    server, agents = start_fleet(tmp_path, receiver, hosts, grace_s)
    try:
        wait_for(lambda: all(len(stored(db(server), h)) >= 3 for h in hosts), 60, "first reports")
        before = {h: len(stored(db(server), h)) for h in hosts}
        started = restart(server, DOWN_S)
        wait_for(
            lambda: all(len(stored(db(server), h)) > before[h] + DOWN_S for h in hosts),
            60,
            "the spooled reports of the outage",
        )
        time.sleep(max(0.0, started + grace_s + 2 - time.monotonic()))  # past the grace
        assert notices(receiver) == []
        assert alert_rows(server) == []  # not even a pending offline alert
        for a in agents.values():
            assert a.stop() == 0
    finally:
        for a in agents.values():
            a.kill()
        server.kill()
    for h, a in agents.items():
        collected, left = stopped_after(a.log)
        times = [ts for _, ts in stored(db(server), h)]
        assert left == 0 and len(times) == collected  # every report, through the restart
        gaps = [b - a for a, b in itertools.pairwise(times)]
        assert max(gaps) < 3 * INTERVAL_S, (h, max(gaps))  # no hole where the server was down
    assert "Traceback" not in server.log.read_text()


@pytest.mark.slow
def test_a_host_silent_through_the_grace_fires_and_an_open_offline_alert_stays(
    tmp_path: Path,
    receiver: Receiver,  # noqa: F811
) -> None:
    grace_s = 10.0  # web-1's agent is back within ~7 s of the server going down
    server, agents = start_fleet(tmp_path, receiver, ("web-1", "web-2", "web-3"), grace_s)
    try:
        wait_for(lambda: all(len(stored(db(server), h)) >= 2 for h in agents), 60, "reports")
        agents["web-3"].kill()  # offline before the restart, and paged for it
        wait_for(lambda: ("firing", "offline", "web-3") in notices(receiver), 60, "web-3 paged")
        agents["web-2"].kill()  # goes silent now: its agent never comes back
        started = restart(server, 1.0)
        wait_for(lambda: ("firing", "offline", "web-2") in notices(receiver), 60, "web-2 paged")
        assert time.monotonic() - started >= grace_s  # not before the grace ended
        time.sleep(1.0)  # a few more checks
        assert notices(receiver) == [
            ("firing", "offline", "web-3"),  # once, before the restart; still open after it
            ("firing", "offline", "web-2"),
        ]
        assert alert_rows(server) == [
            ("offline", "web-3", "firing"),
            ("offline", "web-2", "firing"),
        ]
        assert agents["web-1"].stop() == 0
    finally:
        for a in agents.values():
            a.kill()
        server.kill()
