"""Issue 10, item 3: the CLI renders a host whose stored values sit at the wire's bounds."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from statusdash import wire
from statusdash.cli.main import app
from tests.conftest import Live, make_report

runner = CliRunner()


def at_bounds(host: str, at: datetime | None = None) -> dict[str, Any]:
    """A valid report with every number at its upper bound (int64 bytes, 100%, 10**7 procs)."""
    at = at or datetime.now(UTC)
    big, rate, count = wire.MAX_INT64, wire.MAX_RATE, wire.MAX_COUNT
    r = make_report(host, at=at, cpu=100.0, mem=100.0, disk=100.0, interval_s=86400.0)
    r["system"].update(cpu_count=65536, boot_time=(at - timedelta(days=3650)).isoformat())
    r["cpu"].update(per_core=[100.0] * 4096, iowait=100.0, steal=100.0)
    r["load"] = {"1m": float(count), "5m": float(count), "15m": float(count)}
    r["memory"].update(total=big, used=big, available=big)
    r["swap"] = {"percent": 100.0, "total": big, "used": big}
    r["disks"] = [
        {"mount": f"/m{i}", "fstype": "ext4", "total": big, "used": big, "percent": 100.0}
        for i in range(3)
    ]
    dev = {"read_bytes_s": rate, "write_bytes_s": rate, "read_ops_s": rate, "write_ops_s": rate}
    r["disk_io"] = {"read_bytes_s": rate, "write_bytes_s": rate, "devices": {"sda": dev}}
    nic = dict.fromkeys(
        ("rx_bytes_s", "tx_bytes_s", "rx_packets_s", "tx_packets_s", "errors_s", "drops_s"), rate
    )
    r["net"] = {"rx_bytes_s": rate, "tx_bytes_s": rate, "interfaces": {"eth0": nic}}
    r["temps"] = [{"sensor": "cpu", "current": 1000.0, "high": 1000.0, "critical": 1000.0}]
    proc = {
        "pid": 2**32 - 1,
        "name": "p" * 255,
        "user": "u" * 255,
        "cpu_percent": 100.0 * 65536,
        "memory_percent": 100.0,
        "rss": big,
    }
    r["processes"] = {"count": count, "top_cpu": [proc] * 50, "top_memory": [proc] * 50}
    r["services"] = [
        {
            "name": "svc",
            "kind": "http",
            "status": "unhealthy",
            "checked_at": at.isoformat(),
            "latency_ms": wire.MAX_LATENCY_MS,
            "detail": "d" * wire.DETAIL_LEN,
        }
    ]
    return r


def seed_at_bounds(live: Live, host: str = "huge") -> None:
    """A few reports at the bounds over the last hour, so history has them too."""
    now = datetime.now(UTC)
    reports = [at_bounds(host, now - timedelta(minutes=10 * k)) for k in range(5, -1, -1)]
    r = live.agent(host).post("/api/metrics/batch", json={"reports": reports})
    assert r.status_code == 200, r.text


@pytest.fixture
def env(live_server: Live, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Live:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.delenv("STATUS_ADMIN_PASSWORD", raising=False)
    monkeypatch.setenv("STATUSDASH_SERVER", live_server.url)
    monkeypatch.setenv("STATUSDASH_TOKEN", live_server.token())
    seed_at_bounds(live_server)
    return live_server


@pytest.mark.parametrize(
    "args",
    [
        ["hosts", "ls"],
        ["hosts", "ls", "--json"],
        ["hosts", "show", "huge"],
        ["hosts", "show", "huge", "--json"],
    ],
    ids=["ls", "ls-json", "show", "show-json"],
)
def test_hosts_commands_render_values_at_the_bounds(env: Live, args: list[str]) -> None:
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.output
    assert "huge" in r.stdout and "Traceback" not in r.output
    if "--json" in args:
        json.loads(r.stdout)
    else:
        assert "100%" in r.stdout
