"""One collection cycle: psutil calls fed to the pure collectors; never sleeps."""

from __future__ import annotations

import logging
import os
import socket
import sys
import time
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import psutil

from statusdash.agent import collectors as c
from statusdash.agent.cgroups import CgroupCollector
from statusdash.agent.gpu import GpuCollector
from statusdash.agent.procs import TOP_N, ProcessTracker
from statusdash.wire import SCHEMA_VERSION

log = logging.getLogger("statusdash.agent")
T = TypeVar("T")


def read_os_name() -> str:
    """The pretty OS name from os-release, or the kernel's name elsewhere."""
    for path in ("/etc/os-release", "/usr/lib/os-release"):
        try:
            return c.parse_os_release(Path(path).read_text(encoding="utf-8", errors="replace"))
        except OSError:
            continue
    return os.uname().sysname


def _listdir(path: str) -> frozenset[str] | None:
    try:
        return frozenset(os.listdir(path))
    except OSError:
        return None


class Collector:
    """Takes samples and turns each into a full report; keeps the previous counters."""

    def __init__(
        self,
        host_id: str,
        interval_s: float,
        extra_mounts: Iterable[str] = (),
        *,
        clock: Callable[[], float] = time.monotonic,
        prime: bool = True,
        top_processes: int = TOP_N,
        gpus: GpuCollector | None = None,
        cgroups: CgroupCollector | None = None,
    ) -> None:
        self.host_id = host_id
        self.interval_s = float(interval_s)
        self.extra_mounts = tuple(extra_mounts)
        self._clock = clock
        self._procs = ProcessTracker(n=top_processes)
        # GPUs and containers (issue 13): found once; a host without them costs nothing a cycle
        self._gpus = gpus if gpus is not None else GpuCollector()
        self._cgroups = cgroups if cgroups is not None else CgroupCollector()
        self._prev_cpu: Any = None
        self._prev_disk: dict[str, Any] | None = None
        self._prev_net: dict[str, Any] | None = None
        self._prev_t = 0.0
        self._have_prev = False
        self._physical: dict[str, bool] = {}
        self._failed: set[str] = set()
        self._has_sensors = hasattr(psutil, "sensors_temperatures")
        uname = os.uname()
        self._system = c.system_info(
            hostname=socket.gethostname(),
            os_name=read_os_name(),
            kernel=uname.release,
            arch=uname.machine,
            boot_time=self._safe("boot_time", psutil.boot_time, None),
            cpu_count=psutil.cpu_count() or 1,
        )
        if prime:
            self.prime()

    def prime(self) -> None:
        """Take the first counters, so that the first report already carries rates."""
        self._sample_counters()
        self._procs.sample(self._clock(), 1)
        if self._cgroups.present:
            self._safe("containers", self._cgroups.sample, None)

    def _safe(self, section: str, fn: Callable[[], T], default: T) -> T:
        """Run one collector; a failure costs its section only, logged once per section."""
        try:
            value = fn()
        except Exception as exc:
            if section not in self._failed:
                self._failed.add(section)
                log.warning("cannot collect %s: %s", section, exc)
            return default
        self._failed.discard(section)
        return value

    def _sample_counters(self) -> tuple[Any, dict[str, Any], dict[str, Any], float]:
        now = self._clock()
        cpu = self._safe("cpu", lambda: psutil.cpu_times(percpu=True), None)
        disk = self._safe(
            "disk_io", lambda: psutil.disk_io_counters(perdisk=True, nowrap=False), None
        )
        net = self._safe("net", lambda: psutil.net_io_counters(pernic=True, nowrap=False), None)
        prev = (self._prev_cpu, self._prev_disk, self._prev_net, self._prev_t)
        self._prev_cpu, self._prev_disk, self._prev_net = cpu, disk or {}, net or {}
        self._prev_t = now
        self._have_prev = True
        return prev[0], prev[1] or {}, prev[2] or {}, now - prev[3]

    def _physical_nics(self, names: Iterable[str]) -> frozenset[str] | None:
        if not sys.platform.startswith("linux"):
            return None
        for name in names:
            if name not in self._physical:
                self._physical[name] = os.path.exists(f"/sys/class/net/{name}/device")
        return frozenset(n for n, phys in self._physical.items() if phys)

    def collect(self) -> dict[str, Any]:
        """One full report as a plain dict in the wire schema's shape."""
        had_prev = self._have_prev
        collected_at = datetime.now(UTC)
        prev_cpu, prev_disk, prev_net, dt = self._sample_counters()
        nothing: list[dict[str, Any]] = []
        vm = self._safe("memory", psutil.virtual_memory, None)
        mem_total = int(vm.total) if vm is not None else 0
        report: dict[str, Any] = {
            "schema_version": SCHEMA_VERSION,
            "report_id": str(uuid.uuid4()),
            "host": self.host_id,
            "collected_at": collected_at.isoformat(),
            "interval_s": self.interval_s,
            "system": self._system,
            "cpu": c.cpu_section(prev_cpu, self._prev_cpu or []),
            "load": self._safe("load", lambda: c.load_section(psutil.getloadavg()), None),
            "memory": c.memory_section(vm) if vm is not None else None,
            "swap": self._safe("swap", lambda: c.swap_section(psutil.swap_memory()), None),
            "disks": self._safe("disks", self._disks, nothing),
            "disk_io": c.disk_io_section(
                prev_disk if had_prev else None,
                self._prev_disk or {},
                dt,
                _listdir("/sys/block") if sys.platform.startswith("linux") else None,
            ),
            "net": c.net_section(
                prev_net if had_prev else None,
                self._prev_net or {},
                dt,
                self._physical_nics(self._prev_net or {}),
            ),
            "temps": self._safe("temps", self._temps, nothing),
            "processes": self._safe(
                "processes", lambda: self._procs.sample(self._clock(), mem_total), None
            ),
            "services": [],
            "gpus": self._safe("gpus", self._gpus.sample, nothing) if self._gpus.present else [],
            "containers": (
                self._safe("containers", self._cgroups.sample, nothing)
                if self._cgroups.present
                else []
            ),
        }
        return report

    def _disks(self) -> list[dict[str, Any]]:
        parts = c.real_partitions(psutil.disk_partitions(all=True), self.extra_mounts)
        return c.disks_section(parts, psutil.disk_usage)

    def _temps(self) -> list[dict[str, Any]]:
        if not self._has_sensors:
            return []
        return c.temps_section(psutil.sensors_temperatures())
