"""Service checks on real loopback sockets (HTTP, HTTPS with our CA, TCP), real processes, a
stand-in ``systemctl`` on PATH, and the tracker that sends events on change plus a heartbeat."""

from __future__ import annotations

import socket
import ssl
import stat
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import psutil
import pytest

from statusdash import pki
from statusdash.checks import (
    ChangeTracker,
    CheckSchedule,
    ChecksError,
    CheckSpec,
    ServicesConfig,
    load_services,
    run_check,
    run_checks,
    to_event,
)
from statusdash.schema import HealthStatus, ServiceCheckResult
from statusdash.server.health_events import ServicePayload, parse_events


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        code = {"/ok": 200, "/fail": 503, "/moved": 302, "/empty": 204}.get(self.path, 404)
        self.send_response(code)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def _serve(server: ThreadingHTTPServer) -> Iterator[int]:
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.fixture
def http_port() -> Iterator[int]:
    yield from _serve(ThreadingHTTPServer(("127.0.0.1", 0), _Handler))


@pytest.fixture
def https(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    vault = tmp_path / "vault"
    ca = pki.init_ca(vault)
    cert = pki.issue_server_cert(vault, ["127.0.0.1"])
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert.cert_path, cert.key_path)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    for port in _serve(server):
        yield port, ca


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def spec(**kw: Any) -> CheckSpec:
    return CheckSpec.model_validate({"name": "svc", **kw})


# --- services.yaml --------------------------------------------------------------------------------


def test_services_yaml_loads(tmp_path: Path) -> None:
    path = tmp_path / "services.yaml"
    path.write_text(
        "heartbeat: 2m\ninterval: 15s\nservices:\n"
        "  - {name: web, http: 'https://127.0.0.1/health', expect_status: 204, timeout: 500ms}\n"
        "  - {name: pg, tcp: '127.0.0.1:5432', interval: 5s}\n"
        "  - {name: workers, process: nginx}\n"
        "  - {name: docker, systemd: docker.service}\n"
    )
    cfg = load_services(path)
    assert (cfg.heartbeat, cfg.interval) == (120, 15)
    assert [s.kind for s in cfg.services] == ["http", "tcp", "process", "systemd"]
    web, pg = cfg.services[:2]
    assert web.expect_status == [204] and web.timeout == 0.5
    assert cfg.interval_of(pg) == 5 and cfg.interval_of(web) == 15


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("services:\n  - {name: a, tcp: 'h:1', process: x}\n", "exactly one of"),
        ("services:\n  - {name: a}\n", "found none"),
        ("services:\n  - {name: a, tcp: 'h:1', interval: soon}\n", "services[0].interval"),
        ("services:\n  - {name: a, http: 'ftp://x'}\n", "services[0].http"),
        ("services:\n  - {name: a, tcp: 'h:1'}\n  - {name: a, process: b}\n", "unique: a"),
        ("services: [oops\n", "not valid YAML"),
    ],
)
def test_a_bad_services_yaml_says_where(tmp_path: Path, text: str, needle: str) -> None:
    path = tmp_path / "services.yaml"
    path.write_text(text)
    with pytest.raises(ChecksError) as err:
        load_services(path)
    assert str(path) in str(err.value) and needle in str(err.value)
    with pytest.raises(ChecksError, match="No such file"):
        load_services(tmp_path / "missing.yaml")


# --- the checks -----------------------------------------------------------------------------------


def test_http_checks(http_port: int) -> None:
    base = f"http://127.0.0.1:{http_port}"
    ok = run_check(spec(http=f"{base}/ok"))
    assert ok.status == HealthStatus.healthy and ok.detail == "HTTP 200" and ok.kind == "http"
    assert ok.latency_ms is not None and ok.latency_ms >= 0
    assert run_check(spec(http=f"{base}/moved")).status == HealthStatus.healthy  # 3xx counts
    bad = run_check(spec(http=f"{base}/fail"))
    assert bad.status == HealthStatus.unhealthy and bad.detail == "HTTP 503 (expected 2xx/3xx)"
    picky = run_check(spec(http=f"{base}/ok", expect_status=[204]))
    assert picky.status == HealthStatus.unhealthy and "expected 204" in picky.detail
    assert run_check(spec(http=f"{base}/empty", expect_status=204)).status == HealthStatus.healthy
    down = run_check(spec(http=f"http://127.0.0.1:{closed_port()}/", timeout=2))
    assert down.status == HealthStatus.unhealthy and "ConnectError" in down.detail


def test_https_check_trusts_the_ca_it_is_given(https: tuple[int, Path]) -> None:
    port, ca = https
    url = f"https://127.0.0.1:{port}/ok"
    assert run_check(spec(http=url, ca=str(ca))).status == HealthStatus.healthy
    untrusted = run_check(spec(http=url))
    assert untrusted.status == HealthStatus.unhealthy
    assert "CERTIFICATE_VERIFY_FAILED" in untrusted.detail
    assert run_check(spec(http=url, verify_tls=False)).status == HealthStatus.healthy


def test_tcp_and_process_checks() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        up = run_check(spec(tcp=f"127.0.0.1:{port}"))
        assert up.status == HealthStatus.healthy and up.kind == "tcp"
    down = run_check(spec(tcp=f"127.0.0.1:{closed_port()}"))
    assert down.status == HealthStatus.unhealthy and "refused" in down.detail.lower()
    me = psutil.Process().name()
    found = run_check(spec(process=me))
    assert found.status == HealthStatus.healthy and me in found.detail
    missing = run_check(spec(process="no-such-daemon-xyz"))
    assert missing.status == HealthStatus.unhealthy
    assert missing.detail == "no process named no-such-daemon-xyz"


def test_systemd_check_reads_systemctl(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "systemctl"
    fake.write_text(
        '#!/bin/sh\n[ "$1" = is-active ] || exit 2\n'
        'case "$3" in ok.service) echo active;; *) echo failed; exit 3;; esac\n'
    )
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", str(bin_dir))
    ok = run_check(spec(systemd="ok.service"))
    assert ok.status == HealthStatus.healthy and ok.detail == "unit ok.service is active"
    bad = run_check(spec(systemd="db.service"))
    assert bad.status == HealthStatus.unhealthy and bad.detail == "unit db.service is failed"
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    missing = run_check(spec(systemd="ok.service"))
    assert missing.status == HealthStatus.unknown and "systemctl not found" in missing.detail


def test_run_checks_in_parallel_keeps_order(http_port: int) -> None:
    cfg = ServicesConfig.model_validate(
        {
            "services": [
                {"name": "a", "http": f"http://127.0.0.1:{http_port}/ok"},
                {"name": "b", "process": "no-such-daemon-xyz"},
                {"name": "c", "tcp": f"127.0.0.1:{closed_port()}"},
            ]
        }
    )
    results = run_checks(cfg)
    assert [(r.name, r.status.value) for r in results] == [
        ("a", "healthy"),
        ("b", "unhealthy"),
        ("c", "unhealthy"),
    ]
    assert [r.name for r in run_checks(cfg, only=["c"])] == ["c"]


# --- scheduling and events ------------------------------------------------------------------------


def _cfg() -> ServicesConfig:
    return ServicesConfig.model_validate(
        {
            "heartbeat": 60,
            "interval": 30,
            "services": [
                {"name": "web", "tcp": "h:1", "interval": 10},
                {"name": "pg", "tcp": "h:2"},
            ],
        }
    )


def _r(name: str, status: str, detail: str = "") -> ServiceCheckResult:
    return ServiceCheckResult(
        name=name,
        kind="tcp",
        status=HealthStatus(status),
        checked_at=datetime(2026, 11, 27, 10, tzinfo=UTC),
        detail=detail,
    )


def test_each_check_runs_on_its_own_interval() -> None:
    sched = CheckSchedule(_cfg())
    assert sched.due(0) == ["web", "pg"]
    assert sched.due(5) == [] and sched.sleep_for(5) == 5
    assert sched.due(10) == ["web"]
    assert sched.due(30) == ["web", "pg"]


def test_events_on_change_and_heartbeat_not_every_check() -> None:
    tracker = ChangeTracker(_cfg())
    first = tracker.events([_r("web", "healthy"), _r("pg", "healthy")], now=0)
    assert [e["payload"]["serviceName"] for e in first] == ["web", "pg"]
    tracker.sent(first, now=0)
    assert tracker.events([_r("web", "healthy"), _r("pg", "healthy")], now=10) == []
    down = tracker.events([_r("web", "unhealthy", "refused"), _r("pg", "healthy")], now=20)
    assert [(e["type"], e["payload"]["errorMessage"]) for e in down] == [
        ("SYSTEM_SERVICE_UNHEALTHY", "refused")
    ]
    # The POST failed (not marked sent): the change is offered again next time.
    again = tracker.events([_r("web", "unhealthy", "refused")], now=30)
    assert len(again) == 1
    tracker.sent(again, now=30)
    assert tracker.events([_r("web", "unhealthy", "refused")], now=40) == []
    assert len(tracker.events([_r("web", "unhealthy", "timed out")], now=41)) == 1  # new error
    beat = tracker.events([_r("web", "unhealthy", "refused"), _r("pg", "healthy")], now=61)
    assert [e["payload"]["serviceName"] for e in beat] == ["pg"]  # 61 s since pg was sent
    beat = tracker.events([_r("web", "unhealthy", "refused"), _r("pg", "healthy")], now=90)
    assert [e["payload"]["serviceName"] for e in beat] == ["web", "pg"]  # both due now
    assert beat[1]["payload"]["expectedWithinS"] == 150.0


def test_events_are_what_the_server_accepts() -> None:
    import json

    events = [to_event(_r("web", "healthy", "HTTP 200")), to_event(_r("pg", "unknown", "x"), 90)]
    parsed = parse_events(json.dumps({"events": events}).encode())
    assert [e.type for e in parsed] == ["SYSTEM_SERVICE_HEALTHY", "SYSTEM_SERVICE_UNHEALTHY"]
    pg = parsed[1].payload
    assert isinstance(pg, ServicePayload)
    assert (pg.service_name, pg.error_message, pg.expected_within_s) == ("pg", "x", 90)
    assert pg.metrics["status"] == "unknown" and pg.checked_at == _r("x", "healthy").checked_at


def test_checks_module_does_not_import_psutil_at_load() -> None:
    import subprocess
    import sys

    code = "import sys, statusdash.checks; print('psutil' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
