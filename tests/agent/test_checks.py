"""Service checks on real loopback sockets (HTTP, HTTPS with our CA, TCP), real processes, a
stand-in ``systemctl`` on PATH, and services.yaml's parsing."""

from __future__ import annotations

import shutil
import socket
import ssl
import stat
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import msgspec
import psutil
import pytest

from statusdash.agent.checks.config import (
    ChecksError,
    CheckSpec,
    ServicesConfig,
    load_services,
    parse_services,
)
from statusdash.agent.checks.run import CheckResult, run_checks
from statusdash.agent.checks.run import run_check as _run_check
from statusdash.pki.ca import init_ca, issue_server_cert
from statusdash.wire import HealthStatus, ServiceCheckResult


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
    ca = init_ca(vault)
    cert = issue_server_cert(vault, ["127.0.0.1"])
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
    return parse_services({"services": [{"name": "svc", **kw}]}).services[0]


def run_check(s: CheckSpec) -> ServiceCheckResult:
    """The check's result, which must be what the wire schema takes."""
    result: CheckResult = _run_check(s)
    return msgspec.convert(result, ServiceCheckResult)


# --- services.yaml --------------------------------------------------------------------------------


def test_statuses_are_the_wire_schema_s() -> None:
    from statusdash.agent.checks.run import HEALTHY, UNHEALTHY, UNKNOWN

    assert [s.value for s in HealthStatus] == [HEALTHY, UNHEALTHY, UNKNOWN]


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
    assert web.expect_status == (204,) and web.timeout == 0.5
    assert cfg.interval_of(pg) == 5 and cfg.interval_of(web) == 15
    assert cfg.expected_s(web) == 300  # 2.5 heartbeats
    assert parse_services(cfg.to_dict()) == cfg  # how the CLI hands it to the daemon


def test_a_relative_ca_is_taken_from_the_file_s_directory(tmp_path: Path) -> None:
    (tmp_path / "ca.crt").write_text("x")
    path = tmp_path / "services.yaml"
    path.write_text("services:\n  - {name: web, http: 'https://h/', ca: ca.crt}\n")
    assert load_services(path).services[0].ca == tmp_path / "ca.crt"
    path.write_text("services:\n  - {name: web, http: 'https://h/', ca: nope.crt}\n")
    with pytest.raises(ChecksError, match=r"services\[0\]\.ca: .*nope.crt is not a readable"):
        load_services(path)


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("services:\n  - {name: a, tcp: 'h:1', process: x}\n", "exactly one of"),
        ("services:\n  - {name: a}\n", "found none"),
        ("services:\n  - {name: a, tcp: 'h:1', interval: soon}\n", "services[0].interval"),
        ("services:\n  - {name: a, http: 'ftp://x'}\n", "services[0].http"),
        ("services:\n  - {name: a, tcp: 'h:1'}\n  - {name: a, process: b}\n", "unique: a"),
        ("services: [oops\n", "not valid YAML"),
        ("services:\n  - {name: a, tcp: 'h:1', colour: red}\n", "services[0].colour: unknown"),
        ("services:\n  - {name: a, tcp: 'h:0'}\n", "must be 1-65535"),
        ("services:\n  - {name: a, tcp: 'h:1', interval: 10ms}\n", "at least 0.1"),
        ("services:\n  - {name: a, tcp: 'h:1', timeout: 5m}\n", "between 0.001 and 120"),
        ("services:\n  - {name: a, http: 'http://h/', expect_status: [200, x]}\n", "'x' is not"),
        ("services:\n  - {name: a, tcp: 'h:1', verify_tls: maybe}\n", "true or false"),
        ("services:\n  - [a, b]\n", "services[0]: must be a mapping"),
        ("services: {a: 1}\n", "must be a list"),
        ("heartbeat: 0\n", "heartbeat: must be at least"),
        ("- a\n", "must be a mapping"),
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


def test_tcp_and_process_checks(tmp_path: Path) -> None:
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
    long_name = tmp_path / "statusdash-fake-daemon"  # 22 characters; the kernel keeps 15
    shutil.copy("/bin/sleep", long_name)
    daemon = subprocess.Popen([str(long_name), "30"])
    try:
        comm = Path(f"/proc/{daemon.pid}/comm")
        for _ in range(200):  # until the exec is done
            if comm.read_text().strip() == "statusdash-fake":
                break
            time.sleep(0.01)
        named = run_check(spec(process="statusdash-fake-daemon"))
        other = run_check(spec(process="statusdash-fake-daemon-2"))
    finally:
        daemon.kill()
        daemon.wait()
    assert named.status == HealthStatus.healthy and named.detail.startswith("1 process(es)")
    assert other.status == HealthStatus.unhealthy
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
    (bin_dir / "systemctl").write_text("#!/bin/sh\necho 'Failed to connect to bus' >&2; exit 1\n")
    nobus = run_check(spec(systemd="ok.service"))  # no systemd to ask: no verdict on the unit
    assert nobus.status == HealthStatus.unknown and "Failed to connect to bus" in nobus.detail
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    missing = run_check(spec(systemd="ok.service"))
    assert missing.status == HealthStatus.unknown and "systemctl not found" in missing.detail


def test_run_checks_in_parallel_keeps_order(http_port: int) -> None:
    cfg = parse_services(
        {
            "services": [
                {"name": "a", "http": f"http://127.0.0.1:{http_port}/ok"},
                {"name": "b", "process": "no-such-daemon-xyz"},
                {"name": "c", "tcp": f"127.0.0.1:{closed_port()}"},
            ]
        }
    )
    assert isinstance(cfg, ServicesConfig)
    results = run_checks(cfg)
    assert [(r["name"], r["status"]) for r in results] == [
        ("a", "healthy"),
        ("b", "unhealthy"),
        ("c", "unhealthy"),
    ]
    assert [r["name"] for r in run_checks(cfg, only=["c"])] == ["c"]


def test_the_daemon_s_check_modules_load_neither_yaml_nor_pydantic_nor_psutil() -> None:
    import sys

    code = (
        "import sys, statusdash.agent.checks.run, statusdash.agent.monitor,"
        " statusdash.agent.runner;"
        " print([m for m in ('yaml', 'pydantic', 'psutil') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "['psutil']"  # the sampler's own, not the checks'
    code = "import sys, statusdash.agent.checks.run; print('psutil' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_the_example_in_docs_agent_md_is_valid() -> None:
    import yaml

    doc = (Path(__file__).parents[2] / "docs" / "agent.md").read_text()
    section = doc[doc.index("## Service checks") :]
    example = section[section.index("```yaml\n") + 8 : section.index("```\n", 10)]
    cfg = parse_services(yaml.safe_load(example))
    assert [s.kind for s in cfg.services] == ["http", "http", "tcp", "process", "systemd"]
    assert cfg.services[0].expect_status == (200, 204) and not cfg.services[1].verify_tls
