"""The real agent checks real loopback services and the real server turns that into service
health and alerts; a change seen while the server is away still reaches it."""

from __future__ import annotations

import json
import socket
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from statusdash.schema import AlertPublic, HostDetail, ServiceHealth
from statusdash.wire import ServiceCheckResult
from tests.agent.agentproc import CLI, AgentProc, clean_env, wait_for
from tests.agent.test_e2e import agent_args
from tests.conftest import Live


class _Health(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/health" else 404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


class HttpEndpoint:
    """A tiny http.server in a thread that can be stopped and started again on its port."""

    def __init__(self) -> None:
        self.port = 0
        self._httpd: ThreadingHTTPServer | None = None

    def start(self) -> HttpEndpoint:
        self._httpd = ThreadingHTTPServer(("127.0.0.1", self.port), _Health)  # SO_REUSEADDR
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None


@pytest.fixture
def endpoints(tmp_path: Path) -> Iterator[tuple[HttpEndpoint, Path]]:
    """An HTTP endpoint, a listening TCP port, and the services.yaml that checks both."""
    http = HttpEndpoint().start()
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(128)
        tcp_port = listener.getsockname()[1]
        path = tmp_path / "services.yaml"
        path.write_text(
            "heartbeat: 30s\ninterval: 0.2s\nservices:\n"
            f"  - {{name: web, http: 'http://127.0.0.1:{http.port}/health', timeout: 1s}}\n"
            f"  - {{name: db, tcp: '127.0.0.1:{tcp_port}', timeout: 1s}}\n"
        )
        try:
            yield http, path
        finally:
            http.stop()


def services(reader: httpx.Client) -> dict[str, ServiceHealth]:
    r = reader.get("/api/services")
    r.raise_for_status()
    return {s.name: s for s in map(ServiceHealth.model_validate, r.json()) if s.host == "web-1"}


def status_of(reader: httpx.Client) -> dict[str, str]:
    return {name: s.status.value for name, s in services(reader).items()}


def reported(reader: httpx.Client) -> list[ServiceCheckResult]:
    """The services section of web-1's latest report (none before its first)."""
    r = reader.get("/api/hosts/web-1")
    if r.status_code == 404:
        return []
    r.raise_for_status()
    return HostDetail.model_validate(r.json()).report.services


def service_alerts(reader: httpx.Client, state: str) -> list[AlertPublic]:
    r = reader.get("/api/alerts", params={"state": state})
    r.raise_for_status()
    alerts = [AlertPublic.model_validate(a) for a in r.json()]
    return [a for a in alerts if (a.rule, a.host, a.subject) == ("service", "web-1", "web")]


def test_a_stopped_endpoint_turns_unhealthy_and_alerts(
    live_server: Live, tmp_path: Path, endpoints: tuple[HttpEndpoint, Path]
) -> None:
    http, yaml = endpoints
    agent = AgentProc(
        tmp_path, *agent_args(live_server, tmp_path / "spool", "--services", str(yaml))
    )
    try:
        with live_server.reader() as reader:
            healthy = {"web": "healthy", "db": "healthy"}
            wait_for(lambda: status_of(reader) == healthy, what="both services healthy")
            wait_for(lambda: len(reported(reader)) == 2, what="the checks in a report")
            assert {s.name: (s.kind, s.status.value) for s in reported(reader)} == {
                "web": ("http", "healthy"),
                "db": ("tcp", "healthy"),
            }
            assert not service_alerts(reader, "active")

            http.stop()
            wait_for(lambda: status_of(reader)["web"] == "unhealthy", what="web unhealthy")
            web = services(reader)["web"]
            assert web.error is not None and "refused" in web.error.lower()
            assert status_of(reader)["db"] == "healthy"
            wait_for(lambda: bool(service_alerts(reader, "active")), what="a service alert")
            (alert,) = service_alerts(reader, "active")
            assert alert.state.value == "firing" and "web" in alert.message

            http.start()  # back on the same port: healthy again, the alert resolves
            wait_for(lambda: status_of(reader) == healthy, what="web healthy again")
            wait_for(lambda: bool(service_alerts(reader, "resolved")), what="alert resolved")
            assert not service_alerts(reader, "active")
        assert agent.stop() == 0
    finally:
        agent.kill()
    assert "service web is unhealthy" in agent.log and "service web is healthy" in agent.log
    assert " WARNING " not in agent.log and " ERROR " not in agent.log


def spooled_web_status(spool: Path) -> list[str]:
    """The web check's status in every report waiting in the spool, oldest first."""
    out = []
    for f in sorted(spool.glob("*.json")):
        try:
            report = json.loads(f.read_bytes())
        except (OSError, ValueError):
            continue
        out += [s["status"] for s in report["services"] if s["name"] == "web"]
    return out


def test_a_change_seen_while_the_server_is_away_still_reaches_it(
    live_server: Live, tmp_path: Path, endpoints: tuple[HttpEndpoint, Path]
) -> None:
    http, yaml = endpoints
    spool = tmp_path / "spool"
    agent = AgentProc(tmp_path, *agent_args(live_server, spool, "--services", str(yaml)))
    try:
        with live_server.reader() as reader:
            wait_for(lambda: status_of(reader).get("web") == "healthy", what="web healthy")
        live_server.server.stop()
        http.stop()  # down and up again while nobody listens to the agent
        wait_for(lambda: "unhealthy" in spooled_web_status(spool), what="web seen down")
        http.start()
        wait_for(lambda: spooled_web_status(spool)[-1:] == ["healthy"], what="web seen up")
        live_server.server.start()
        with live_server.reader() as reader:
            wait_for(lambda: bool(service_alerts(reader, "resolved")), what="the outage's alert")
            assert status_of(reader)["web"] == "healthy" and not service_alerts(reader, "active")
        wait_for(lambda: not list(spool.glob("*.json")), what="the spool delivered")
        assert agent.stop() == 0
    finally:
        agent.kill()
    assert "service web is unhealthy" in agent.log


def test_once_sends_the_report_with_its_checks_and_their_events(
    live_server: Live, tmp_path: Path, endpoints: tuple[HttpEndpoint, Path]
) -> None:
    _, yaml = endpoints
    args = [*CLI, *agent_args(live_server, tmp_path / "spool", "--once", "--services", str(yaml))]
    out = subprocess.run(
        args, cwd=tmp_path, env=clean_env(), capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert "(1 sent) with 2 service event(s)" in out.stdout
    with live_server.reader() as reader:
        assert status_of(reader) == {"web": "healthy", "db": "healthy"}
        assert {s.name for s in reported(reader)} == {"web", "db"}
