"""Issue 13 on the agent: exe_hash, top 10 + 10, disk busy %, and a host without GPU/containers."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import msgspec
import pytest

from statusdash import wire
from statusdash.agent import collectors as c
from statusdash.agent.cgroups import CgroupCollector
from statusdash.agent.config import AgentConfig
from statusdash.agent.gpu import GpuCollector
from statusdash.agent.procs import TOP_N, ProcessTracker, ProcStat, exe_hash
from statusdash.agent.sampler import Collector
from tests.agent.psutil_records import sdiskio

ROOT = Path(__file__).resolve().parent.parent.parent


def test_exe_hash_is_the_short_sha256_of_the_executable_path() -> None:
    with subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"]) as p:
        try:
            path = os.readlink(f"/proc/{p.pid}/exe")
            assert exe_hash(p.pid) == hashlib.sha256(path.encode()).hexdigest()[:8]
            assert len(exe_hash(p.pid)) == 8
        finally:
            p.kill()
    assert exe_hash(p.pid) == ""  # gone
    assert exe_hash(2**22 + 7) == ""  # never was


def test_exe_hash_of_a_deleted_binary_keeps_its_identity(tmp_path: Path) -> None:
    proc = tmp_path / "proc" / "42"
    proc.mkdir(parents=True)
    (proc / "exe").symlink_to("/usr/sbin/nginx (deleted)")
    want = hashlib.sha256(b"/usr/sbin/nginx").hexdigest()[:8]
    assert exe_hash(42, str(tmp_path / "proc")) == want


def _procs(n: int, t: float) -> list[ProcStat]:
    return [ProcStat(pid, f"p{pid}", t * pid / 100, 1.0, pid << 20) for pid in range(1, n + 1)]


def test_ten_by_cpu_and_ten_by_memory_by_default_and_exe_looked_up_once() -> None:
    samples = [_procs(40, 1.0), _procs(40, 2.0), _procs(40, 3.0)]
    looked_up: list[int] = []

    def exe(pid: int) -> str:
        looked_up.append(pid)
        return f"{pid:08x}"

    tracker = ProcessTracker(reader=lambda: samples.pop(0), ident=lambda pid: None, exe=exe)
    tracker.sample(100.0, 1 << 40)
    tracker.sample(101.0, 1 << 40)
    section = tracker.sample(102.0, 1 << 40)
    msgspec.convert(section, wire.Processes)
    assert TOP_N == 10
    assert [p["pid"] for p in section["top_cpu"]] == list(range(40, 30, -1))
    assert [p["pid"] for p in section["top_memory"]] == list(range(40, 30, -1))
    assert section["top_cpu"][0]["exe_hash"] == f"{40:08x}"
    assert sorted(looked_up) == list(range(31, 41))  # once per process while it lives


def test_top_n_is_an_option_within_the_wire_cap() -> None:
    samples = [_procs(80, 1.0), _procs(80, 2.0)]
    tracker = ProcessTracker(reader=lambda: samples.pop(0), ident=lambda pid: None, n=50)
    tracker.sample(1.0, 1 << 40)
    section = tracker.sample(2.0, 1 << 40)
    assert len(section["top_cpu"]) == len(section["top_memory"]) == 50
    msgspec.convert(section, wire.Processes)
    for bad in (0, 51):
        with pytest.raises(ValueError, match="top processes"):
            ProcessTracker(reader=list, n=bad)
    cfg = AgentConfig(server_url="https://x", host_id="h", top_processes=25)
    assert AgentConfig.from_json(cfg.to_json()).top_processes == 25
    assert AgentConfig(server_url="https://x", host_id="h").top_processes == TOP_N


def _io(busy_ms: int, rb: int = 0) -> sdiskio:
    return sdiskio(0, 0, rb, 0, 0, 0, 0, 0, busy_ms)


def test_disk_busy_percent_from_io_time() -> None:
    prev = {"sda": _io(1_000), "nvme0n1": _io(500), "sdb": _io(9_000)}
    cur = {"sda": _io(3_500), "nvme0n1": _io(99_000), "sdb": _io(100)}
    devices = c.disk_io_section(prev, cur, 10.0)["devices"]
    assert devices["sda"]["busy_percent"] == 25.0  # 2.5 s busy of 10
    assert devices["nvme0n1"]["busy_percent"] == 100.0  # queued IO overlaps: capped
    assert devices["sdb"]["busy_percent"] is None  # went back: a re-created device
    assert c.busy_percent(object(), object(), 10.0) is None  # a platform without io_time
    msgspec.convert(devices, dict[str, wire.DiskIORate])


def test_this_host_without_gpu_or_cgroup2_reports_none_and_logs_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, "statusdash.agent")
    collector = Collector(
        "test-host",
        10,
        gpus=GpuCollector(sysfs_root=str(tmp_path), nvml_loader=lambda: None),
        cgroups=CgroupCollector(str(tmp_path / "cgroup")),
    )
    report = collector.collect()
    assert report["gpus"] == [] and report["containers"] == []
    r = wire.convert(report)
    assert r.gpus == [] and r.containers == []
    assert all(p.exe_hash == "" or len(p.exe_hash) == 8 for p in r.processes.top_memory)  # type: ignore[union-attr]
    assert [rec for rec in caplog.records if rec.levelno >= logging.INFO] == []


def test_dry_run_takes_top_processes() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    args = ["run", "--dry-run", "--host-id", "dims-test", "--top-processes", "3"]
    out = subprocess.run(
        [sys.executable, "-m", "statusdash.cli.agent", *args],
        env=env, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    report = json.loads(out.stdout)
    assert len(report["processes"]["top_memory"]) == 3
    wire.convert(report)  # with whatever GPUs and containers the machine has
    bad = subprocess.run(
        [sys.executable, "-m", "statusdash.cli.agent", *args[:-1], "51"],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert bad.returncode == 2 and "--top-processes" in bad.stderr
    assert "Traceback" not in bad.stderr
