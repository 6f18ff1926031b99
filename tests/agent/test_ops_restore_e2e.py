"""The real agent process against the real server: a restore of an older backup loses nothing
the agent still kept; only what lies after the mark is sent again, each report stored once."""

from __future__ import annotations

import gc
import re
import subprocess
from pathlib import Path

from statusdash.server.backup import backup_database, restore, server_running
from tests.agent.agentproc import CLI, AgentProc, clean_env, stored, wait_for
from tests.agent.test_e2e import agent_args
from tests.conftest import Live


def test_the_real_agent_refills_a_restored_server(live_server: Live, tmp_path: Path) -> None:
    db, spool = live_server.settings.db_path, tmp_path / "spool"
    agent = AgentProc(tmp_path, *agent_args(live_server, spool))
    try:
        wait_for(lambda: len(stored(db)) >= 5, what="first reports")
        backup = tmp_path / "backup.db"
        backup_database(db, backup)
        in_backup = {rid for rid, _ in stored(backup)}
        wait_for(lambda: len(stored(db)) >= len(in_backup) + 8, what="reports after the backup")
        live_server.server.stop()
        held = {rid for rid, _ in stored(db)}  # what the old database had acknowledged
        gc.collect()  # agentproc.stored() leaves its read connections to the collector
        wait_for(lambda: not server_running(db), what="the server to let go of the database")
        restore(backup, db, keep_previous=False)
        live_server.server.start()
        wait_for(lambda: held <= {rid for rid, _ in stored(db)}, what="the gap filled")
        assert agent.stop() == 0
    finally:
        agent.kill()
    ids = [rid for rid, _ in stored(db)]
    assert len(ids) == len(set(ids))  # every report once
    assert held <= set(ids)
    m = re.search(r"sending (\d+) kept report\(s\) again", agent.log)
    assert m, agent.log
    # at most what the backup lacked (a report in flight at the stop may have been pending)
    assert 0 < int(m.group(1)) <= len(held - in_backup)
    assert "Traceback" not in agent.log


def _once(live: Live, tmp_path: Path, spool: Path, *extra: str, **env: str) -> str:
    out = subprocess.run(
        [*CLI, *agent_args(live, spool), "--once", *extra],
        cwd=tmp_path,
        env={**clean_env(), **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    return out.stderr


def test_the_keep_window_flags_reach_the_agent(live_server: Live, tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    _once(live_server, tmp_path, spool)  # the default: kept
    assert len(list((spool / "acked").iterdir())) == 1
    _once(live_server, tmp_path, spool, AGENT_KEEP_ACKED="2h")  # the env name
    assert len(list((spool / "acked").iterdir())) == 2
    _once(live_server, tmp_path, spool, "--keep-acked", "0")  # off: the kept ones go too
    assert not list((spool / "acked").iterdir())
    bad = subprocess.run(
        [*CLI, *agent_args(live_server, spool), "--once", "--keep-acked", "soon"],
        cwd=tmp_path,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 2 and "--keep-acked: 'soon' is not a duration" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1 and "Traceback" not in bad.stderr
