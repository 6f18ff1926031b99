"""The agent loop: cadence, stop on signals with the push in flight finished."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import msgspec

from statusdash.agent.checks.config import parse_services
from statusdash.agent.config import AgentConfig
from statusdash.agent.runner import Agent
from statusdash.wire import HealthStatus, MetricsReport
from tests.agent.agentproc import AgentProc, clean_env, spooled
from tests.agent.standin import StandIn
from tests.conftest import free_port


def test_loop_collects_on_cadence_and_delivers_in_order(tmp_path: Path) -> None:
    with StandIn() as server:
        cfg = AgentConfig(
            server_url=server.url,
            host_id="web-1",
            api_key="k",
            interval_s=0.1,
            spool_dir=tmp_path / "spool",
            max_cycles=5,
        )
        t0 = time.monotonic()
        assert Agent(cfg).run() == 0
        elapsed = time.monotonic() - t0
    assert len(server.accepted) == 5 and server.connections == 1
    times = [p[2][0]["collected_at"] for p in server.posts]
    assert times == sorted(times)
    assert 0.45 <= elapsed < 3.0  # first sample after 0.1 s, then every 0.1 s (+-5 %)
    assert not spooled(tmp_path / "spool")


def test_sigterm_finishes_the_push_in_flight_and_exits_0(tmp_path: Path) -> None:
    with StandIn() as server:
        server.delay_s = 1.0
        agent = AgentProc(
            tmp_path,
            *("--server", server.url, "--api-key", "k", "--host-id", "web-1"),
            *("--interval", "5", "--spool-dir", str(tmp_path / "spool")),
        )
        try:
            assert server.in_flight.wait(20), agent.log
            agent.proc.send_signal(signal.SIGTERM)  # while the server sits on the request
            assert agent.stop() == 0
        finally:
            agent.kill()
    assert len(server.accepted) == 1 and not spooled(tmp_path / "spool")
    assert (
        "stopping on SIGTERM" in agent.log and "stopped after 1 report(s); 0 spooled" in agent.log
    )


def test_lean_daemon_refuses_to_start_without_its_configuration(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "statusdash.agent"],
        cwd=tmp_path,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert out.returncode == 2 and "statusdash agent run" in out.stderr


def test_checks_ride_along_and_their_events_share_the_report_connection(tmp_path: Path) -> None:
    with socket.socket() as listener, StandIn() as server:
        listener.bind(("127.0.0.1", 0))
        listener.listen()  # accepts TCP connections; never answers HTTP
        port = listener.getsockname()[1]
        services = {
            "services": [
                {"name": "up", "tcp": f"127.0.0.1:{port}", "interval": 0.1},
                {"name": "down", "tcp": f"127.0.0.1:{free_port()}", "interval": 0.1},
                {"name": "hangs", "http": f"http://127.0.0.1:{port}/", "timeout": 5},
            ]
        }
        server.events_script = [503]  # the first post of events fails: they wait, then go
        cfg = AgentConfig(
            server_url=server.url,
            host_id="web-1",
            api_key="k",
            interval_s=0.1,
            spool_dir=tmp_path / "spool",
            max_cycles=15,
            services=parse_services(services).to_dict(),
        )
        t0 = time.monotonic()
        assert Agent(cfg).run() == 0
        elapsed = time.monotonic() - t0
    # the HTTP check hangs for its 5 s timeout: neither the cadence nor the exit waited for it
    assert elapsed < 4.0
    assert len(server.accepted) == 15 and server.connections == 1
    assert sorted(e["payload"]["serviceName"] for e in server.events) == ["down", "up"]
    assert "/api/events" in [p[0] for p in server.posts]
    reports = [r for p in server.posts for r in p[2]]
    last = msgspec.convert(reports[-1], MetricsReport)
    by_name = {s.name: s for s in last.services}
    assert set(by_name) == {"up", "down"}  # "hangs" has no result yet
    assert by_name["up"].status == HealthStatus.healthy
    assert by_name["down"].status == HealthStatus.unhealthy
    assert "refused" in by_name["down"].detail.lower()
