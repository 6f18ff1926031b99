"""SIGTERM ends a busy server within 5 s: streams get 1001, acknowledged reports are stored.

The real ``statusdash server run`` process with mTLS (``bench.shutdown.ServerProc``), 20 stream
readers, agents posting over kept-alive connections and two slow clients, as the benchmark does.
"""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import pytest
from bench.shutdown import EXIT_BOUND_S, ServerProc, provision, shutdown_round

from tests.agent.agentproc import stored

HOSTS = [f"agent-{i}" for i in range(8)]


@pytest.fixture
def server(tmp_path: Path) -> ServerProc:
    provision(tmp_path / "vault", HOSTS)
    return ServerProc(tmp_path, tmp_path / "vault")


@pytest.mark.slow
def test_sigterm_exits_within_5s_and_keeps_every_acknowledged_report(server: ServerProc) -> None:
    try:
        server.start()
        r = asyncio.run(shutdown_round(server, HOSTS, subscribers=20))
        assert r.exit_s < EXIT_BOUND_S, server.log_tail()
        assert r.close_codes == [1001] * 20  # going away, not uvicorn's 1012 or a cut
        assert r.slow_cut == 3  # dribbling headers, dribbling a body, a reader that never reads
        assert all(r.acked.values())  # every agent was acknowledged before and during it
        server.start()  # the same data directory and port
        for host, ids in r.acked.items():
            assert set(ids) <= {rid for rid, _ in stored(server.data / "statusdash.db", host)}
        assert server.signal_exit(signal.SIGTERM) < EXIT_BOUND_S  # idle: quick too
    finally:
        server.kill()
    log = server.log.read_text()
    assert "Traceback" not in log and "timeout graceful shutdown exceeded" in log  # slow body cut
