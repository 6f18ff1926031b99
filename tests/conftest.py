"""Shared fixtures: a real server on a loopback port over a real SQLite file."""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from statusdash.server import keys
from statusdash.server.context import ServerContext, context_of
from statusdash.server.runner import uvicorn_config
from statusdash.settings import Settings

ADMIN_PASSWORD = "test-admin-password-123"
JWT_SECRET = "test-jwt-secret-0123456789abcdef0123456789"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_settings(data_dir: Path, **over: Any) -> Settings:
    base: dict[str, Any] = {
        "status_admin_password": ADMIN_PASSWORD,
        "status_jwt_secret": JWT_SECRET,
        "status_data_dir": data_dir,
        "status_bind": "127.0.0.1",
        "status_port": free_port(),
        "mtls_enabled": False,
        "db_synchronous": "NORMAL",
        "vault_path": data_dir / "vault",
        # Many tests post several reports for one moment; the limit's own tests set it back.
        "ingest_max_reports_per_interval": 10_000,
        # Every notice alone, as the tests before grouping expect; test_notify_group turns it on.
        "notify_group_wait_s": 0.0,
    }
    base.update(over)
    return Settings(_env_file=None, **base)


class RunningServer:
    """A real uvicorn server in a thread; ``stop()`` and ``start()`` keep the same data dir."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        scheme = "https" if self.settings.mtls_enabled else "http"
        return f"{scheme}://127.0.0.1:{self.settings.status_port}"

    @property
    def app(self) -> Any:
        assert self._server is not None
        return self._server.config.app

    @property
    def ctx(self) -> ServerContext:
        """The running app's context (its storage, alerting, jobs...)."""
        return context_of(self.app)

    def prepare(self, app: Any) -> None:
        """Change the app before it starts (subclasses install test configurations here)."""

    def start(self) -> RunningServer:
        config = uvicorn_config(self.settings, log_level="warning")
        self.prepare(config.app)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 15
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("server did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=15)
            self._server = None


@dataclass
class Live:
    server: RunningServer
    keys: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def settings(self) -> Settings:
        return self.server.settings

    def api_key(self, host: str) -> str:
        if host not in self.keys:
            self.keys[host] = keys.issue(self.settings.db_path, host).key
        return self.keys[host]

    def token(self) -> str:
        r = httpx.post(
            f"{self.url}/api/auth/token", data={"username": "admin", "password": ADMIN_PASSWORD}
        )
        r.raise_for_status()
        return str(r.json()["access_token"])

    def reader(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {self.token()}"}, timeout=10
        )

    def agent(self, host: str) -> httpx.Client:
        return httpx.Client(
            base_url=self.url, headers={"X-API-Key": self.api_key(host)}, timeout=10
        )


def make_report(
    host: str = "web-1",
    *,
    at: datetime | None = None,
    cpu: float = 12.5,
    mem: float = 40.0,
    disk: float = 55.0,
    interval_s: float = 10.0,
    **extra: Any,
) -> dict[str, Any]:
    """A valid report as the agent sends it (JSON-ready)."""
    at = at or datetime.now(UTC)
    report: dict[str, Any] = {
        "schema_version": 1,
        "report_id": str(uuid.uuid4()),
        "host": host,
        "collected_at": at.isoformat(),
        "interval_s": interval_s,
        "system": {
            "hostname": host,
            "os": "Debian GNU/Linux 12",
            "kernel": "6.1.0",
            "arch": "x86_64",
            "boot_time": (at - timedelta(days=3)).isoformat(),
            "cpu_count": 4,
        },
        "cpu": {"percent": cpu, "per_core": [cpu] * 4, "iowait": 0.5, "steal": 0.0},
        "load": {"1m": 0.42, "5m": 0.3, "15m": 0.2},
        "memory": {"percent": mem, "total": 8 << 30, "used": 3 << 30, "available": 5 << 30},
        "swap": {"percent": 0.0, "total": 0, "used": 0},
        "disks": [
            {"mount": "/", "fstype": "ext4", "total": 100 << 30, "used": 55 << 30, "percent": disk}
        ],
        "disk_io": {"read_bytes_s": 1000.0, "write_bytes_s": 2000.0, "devices": {}},
        "net": {"rx_bytes_s": 12000.0, "tx_bytes_s": 3400.0, "interfaces": {}},
        "temps": [],
        "processes": {"count": 120, "top_cpu": [], "top_memory": []},
        "services": [],
    }
    report.update(extra)
    return report


CLIENT_ENV = (
    "STATUSDASH_TOKEN",
    "STATUSDASH_SERVER",
    "STATUSDASH_CA",
    "PUBLIC_URL",
    "STATUS_DATA_DIR",
)


@pytest.fixture
def client_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A reader command's environment with nothing from the work tree or the shell: run from
    tmp_path (no .env), its own config dir (no kept token), no server, CA, token or data dir."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    for name in CLIENT_ENV:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def data_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """What the server-host commands (``statusdash db``) read: STATUS_DATA_DIR is tmp_path/data
    and the working directory tmp_path (no stray .env). Returns the data dir (not made)."""
    monkeypatch.chdir(tmp_path)
    data = tmp_path / "data"
    monkeypatch.setenv("STATUS_DATA_DIR", str(data))
    return data


@pytest.fixture
def live_server(tmp_path: Path) -> Iterator[Live]:
    """A plain-HTTP server (API keys for agents) over a fresh SQLite file."""
    server = RunningServer(make_settings(tmp_path / "data")).start()
    try:
        yield Live(server)
    finally:
        server.stop()


# --- mutual TLS ---------------------------------------------------------------------------------


def make_vault(vault: Path, agents: tuple[str, ...] = ("web-1", "db-1")) -> Path:
    """A vault made by our own PKI code: CA, server cert for 127.0.0.1, agents and a viewer."""
    from statusdash.pki.ca import init_ca, issue_client_cert, issue_server_cert

    init_ca(vault)
    issue_server_cert(vault, ["localhost", "127.0.0.1"])
    for name in agents:
        issue_client_cert(vault, name, "agent")
    issue_client_cert(vault, "viewer", "viewer")
    return vault


@pytest.fixture(scope="session")
def vault_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_vault(tmp_path_factory.mktemp("vault") / "certs")


@dataclass
class TlsLive(Live):
    vault: Path = Path()

    def client(self, name: str | None, **kw: Any) -> httpx.Client:
        """An httpx client presenting ``clients/<name>`` (or no certificate)."""
        from statusdash.tlsclient import client_context

        clients = self.vault / "clients"
        cert = (clients / f"{name}.crt") if name else None
        key = (clients / f"{name}.key") if name else None
        ctx = client_context(self.vault / "ca" / "ca.crt", cert, key)
        return httpx.Client(base_url=self.url, verify=ctx, timeout=10, **kw)


@pytest.fixture
def tls_server(tmp_path: Path, vault_template: Path) -> Iterator[TlsLive]:
    """The real app with mTLS on, over a copy of a vault made by ``statusdash.pki.ca``."""
    import shutil

    vault = tmp_path / "vault"
    shutil.copytree(vault_template, vault)
    settings = make_settings(tmp_path / "data", mtls_enabled=True, vault_path=vault)
    server = RunningServer(settings).start()
    try:
        yield TlsLive(server, vault=vault)
    finally:
        server.stop()
