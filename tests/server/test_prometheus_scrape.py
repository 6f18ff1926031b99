"""A real Prometheus scrapes GET /metrics over mTLS with a viewer certificate from our own PKI.

Debian's ``prometheus`` (``make prometheus`` installs it) runs on a free loopback port with its
own config and data directory; the real agent reports over mTLS; PromQL over Prometheus' HTTP
API must give the host's CPU as the server stored it and the ingest counter as counted.
"""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.agent.agentproc import AgentProc, wait_for
from tests.conftest import RunningServer, TlsLive, free_port, make_settings

CONFIG = """\
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: statusdash
    scheme: https
    metrics_path: /metrics
    tls_config:
      ca_file: {vault}/ca/ca.crt
      cert_file: {vault}/clients/viewer.crt
      key_file: {vault}/clients/viewer.key
    static_configs:
      - targets: ["127.0.0.1:{port}"]
"""


def prometheus_binary() -> str:
    path = shutil.which("prometheus")
    if path is None:
        pytest.fail("the prometheus binary is missing: run `make prometheus` (Debian's package)")
    return path


class Prometheus:
    """A throwaway Prometheus on 127.0.0.1 with its config and TSDB under ``workdir``."""

    def __init__(self, workdir: Path, config: str) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        (workdir / "prometheus.yml").write_text(config)
        self.url = f"http://127.0.0.1:{free_port()}"
        self.log_path = workdir / "prometheus.log"
        self._log = self.log_path.open("w")
        self.proc = subprocess.Popen(
            [
                prometheus_binary(),
                f"--config.file={workdir / 'prometheus.yml'}",
                f"--storage.tsdb.path={workdir / 'tsdb'}",
                f"--web.listen-address={self.url.removeprefix('http://')}",
                "--log.level=warn",
            ],
            stdout=self._log,
            stderr=self._log,
        )
        wait_for(self._ready, timeout=60, what="Prometheus ready")

    def _ready(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"prometheus exited: {self.log_path.read_text()[-2000:]}")
        try:
            return httpx.get(f"{self.url}/-/ready", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def query(self, promql: str) -> list[dict[str, Any]]:
        r = httpx.get(f"{self.url}/api/v1/query", params={"query": promql}, timeout=5)
        r.raise_for_status()
        body = r.json()
        assert body["status"] == "success", body
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def target_health(self) -> str:
        targets = httpx.get(f"{self.url}/api/v1/targets", timeout=5).json()["data"]
        return "; ".join(
            f"{t['scrapeUrl']}: {t['health']} {t['lastError']}" for t in targets["activeTargets"]
        )

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._log.close()


@pytest.fixture
def fleet_tls(tmp_path: Path, vault_template: Path) -> Iterator[TlsLive]:
    """The real server with mTLS and METRICS_FLEET=true, over a copy of our own PKI's vault."""
    prometheus_binary()  # fail before anything starts
    vault = tmp_path / "vault"
    shutil.copytree(vault_template, vault)
    settings = make_settings(
        tmp_path / "data", mtls_enabled=True, vault_path=vault, metrics_fleet=True
    )
    server = RunningServer(settings).start()
    try:
        yield TlsLive(server, vault=vault)
    finally:
        server.stop()


def _stored(db: Path, host: str) -> int:
    with sqlite3.connect(db) as conn:
        (n,) = conn.execute(
            "SELECT count(*) FROM samples JOIN hosts ON hosts.id = samples.host_id"
            " WHERE hosts.name = ?",
            (host,),
        ).fetchone()
    return int(n)


def _scalar(result: list[dict[str, Any]]) -> float | None:
    return float(result[0]["value"][1]) if len(result) == 1 else None


def test_prometheus_scrapes_the_fleet_over_mtls(fleet_tls: TlsLive, tmp_path: Path) -> None:
    storage = fleet_tls.server.ctx.storage
    agent = AgentProc(
        tmp_path,
        *("--server", fleet_tls.url, "--certs-dir", str(fleet_tls.vault), "--host-id", "web-1"),
        *("--interval", "0.5", "--spool-dir", str(tmp_path / "spool")),
    )
    try:
        wait_for(lambda: storage.accepted >= 3, timeout=60, what=f"3 reports\n{agent.log}")
    finally:
        assert agent.stop() == 0, agent.log
    state = storage.cache.get("web-1")
    assert state is not None and state.latest.cpu is not None
    cpu, accepted = state.latest.cpu.percent, storage.accepted
    assert accepted == _stored(fleet_tls.settings.db_path, "web-1")  # what "counted" means

    config = CONFIG.format(vault=fleet_tls.vault, port=fleet_tls.settings.status_port)
    prometheus = Prometheus(tmp_path / "prometheus", config)
    try:
        got: dict[str, float | None] = {}

        def scraped() -> bool:
            got["cpu"] = _scalar(prometheus.query('statusdash_cpu_percent{host="web-1"}'))
            got["accepted"] = _scalar(
                prometheus.query('statusdash_ingest_reports_total{outcome="accepted"}')
            )
            return got == {"cpu": cpu, "accepted": float(accepted)}

        deadline = time.monotonic() + 60
        while not scraped():
            assert time.monotonic() < deadline, (
                f"PromQL gave {got}, expected cpu {cpu} and {accepted} accepted;"
                f" targets: {prometheus.target_health()}"
            )
            time.sleep(0.5)
        up = prometheus.query('up{job="statusdash"}')
        assert _scalar(up) == 1.0
        series = prometheus.query('{__name__=~"statusdash_.*", host="web-1"}')
        assert {s["metric"]["__name__"] for s in series} >= {
            "statusdash_memory_percent",
            "statusdash_host_up",
            "statusdash_host_status",
        }
    finally:
        prometheus.stop()
