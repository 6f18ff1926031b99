"""The collector on this very machine: real psutil, a full report, no sleeping."""

from __future__ import annotations

import subprocess
import sys
import time
from typing import Any

import pytest

from statusdash import hostid, wire
from statusdash.agent.sampler import Collector
from statusdash.hostid import from_hostname as default_host_id


def test_primed_collector_fills_every_section_without_sleeping(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def no_sleep(_: float) -> None:
        raise AssertionError("collection slept")

    collector = Collector("test-host", 10, extra_mounts=["/tmp"])
    monkeypatch.setattr(time, "sleep", no_sleep)
    t0 = time.perf_counter()
    report = collector.collect()
    assert time.perf_counter() - t0 < 0.5
    r = wire.convert(report)
    assert r.host == "test-host" and r.interval_s == 10.0
    assert r.system is not None and r.system.cpu_count >= 1 and r.system.kernel
    assert r.cpu is not None and len(r.cpu.per_core) == r.system.cpu_count
    assert r.load is not None and r.memory is not None and r.memory.total > 0
    assert r.swap is not None
    assert "/" in {d.mount for d in r.disks} and "/tmp" in {d.mount for d in r.disks}
    assert not {d.fstype for d in r.disks} & {"proc", "sysfs", "cgroup2", "devtmpfs"}
    # primed: the first report already carries rates
    assert r.disk_io is not None and r.disk_io.read_bytes_s is not None
    assert r.net is not None and r.net.rx_bytes_s is not None
    assert r.processes is not None and r.processes.count > 1
    assert len(r.processes.top_memory) == min(10, r.processes.count)  # TOP_N, issue 13


def test_unprimed_first_sample_carries_no_rates() -> None:
    report = Collector("test-host", 10, prime=False).collect()
    r = wire.convert(report)
    assert r.cpu is None
    assert r.disk_io is not None and r.disk_io.read_bytes_s is None
    assert r.net is not None and r.net.rx_bytes_s is None and r.net.interfaces == {}


def test_a_failing_collector_costs_its_section_only(monkeypatch: pytest.MonkeyPatch) -> None:
    import psutil

    collector = Collector("test-host", 10)

    def broken(*_: Any, **__: Any) -> Any:
        raise OSError("no /proc/loadavg")

    monkeypatch.setattr(psutil, "getloadavg", broken)
    report = collector.collect()
    assert report["load"] is None and report["memory"] is not None
    wire.convert(report)


@pytest.mark.parametrize(
    ("hostname", "expected"),
    [("Web-01.Example.COM", "web-01.example.com"), ("_odd host!", "odd-host"), ("", "localhost")],
)
def test_default_host_id(hostname: str, expected: str) -> None:
    assert default_host_id(hostname) == expected
    assert hostid.is_valid(default_host_id(hostname))


def test_the_daemon_imports_no_textual_server_pydantic_or_cli_modules() -> None:
    code = (
        "import sys; sys.modules.setdefault('httpx._main', None)\n"
        "import statusdash.agent.runner, statusdash.agent.diagnose\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in"
        " ('textual', 'pydantic', 'typer', 'click', 'rich', 'pygments', 'cryptography')"
        " or m.startswith('statusdash.server'))\n"
        "print(' '.join(bad), 'statusdash.wire' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True"  # nothing heavy, and the wire contract itself
