"""A typical host's wire-format reports at 10 s, for the storage benchmarks (issue 13).

``typical_host_reports(start, hours, seed)`` yields report dicts (the shape of
``statusdash.wire.MetricsReport``) of one host with 8 cores, 4 mounts, 3 block devices, 3
interfaces, 6 sensors, 5 service checks, the top 10 processes by CPU and by memory (with churn)
and 1 GPU: about 80 series.

When the recorded trace of this machine's own agent exists (``bench/traces/host-10s.jsonl[.gz]``,
written by ``bench/agent_trace.py``, or the file named by ``STATUSDASH_BENCH_TRACE``), the host
*replays* it: every per-core, device, interface, process and service-latency series is taken from
the trace, each instance shifted in time by its own offset and scaled by its own slow
multiplicative drift (+-8 %), so the data has the real machine's noise, busy and idle phases. What
the trace lacks (this machine may have fewer cores, mounts, devices or no sensors or GPU) is filled
from the synthetic model below, which follows the same busy/idle phases. Mounts always grow
(``/data`` by ~2 GiB a day, ``/var`` by its logs, with a nightly rotation). Without the trace,
everything is the synthetic model: busy/idle phases of 5-60 minutes, noisy cores, bursty IO,
temperatures that follow the load with a lag.

Values carry the agent's precision: percentages and load 0.01, bytes and byte rates whole,
temperatures 0.1 degC, latency 0.01 ms, power 0.01 W. ``series_values`` flattens a report into
``{(metric, label): scaled int}`` with the catalogue's scales (x100 for 0.01 units, whole bytes).
"""

from __future__ import annotations

import gzip
import json
import math
import os
import random
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

INTERVAL_S = 10.0
TRACE_DIR = Path(__file__).resolve().parent / "traces"
CORES = 8
MOUNTS = [  # mount, device, total bytes, used at start, growth bytes/day
    ("/", "/dev/nvme0n1p2", 200 << 30, 61 << 30, 80 << 20),
    ("/boot", "/dev/nvme0n1p1", 1 << 30, 212 << 20, 0),
    ("/data", "/dev/sda1", 2000 << 30, 903 << 30, 2 << 30),
    ("/var", "/dev/nvme0n1p3", 50 << 30, 17 << 30, 400 << 20),
]
DEVICES = ["nvme0n1", "sda", "sdb"]
IFACES = ["lo", "eth0", "docker0"]
SENSORS = ["coretemp/package", "coretemp/core0", "coretemp/core1", "nvme0", "acpitz", "sda"]
SERVICES = [
    ("api", "http"),
    ("db", "tcp"),
    ("cache", "tcp"),
    ("worker", "process"),
    ("cron", "systemd"),
]
# the process pool: name, user, base CPU % of a core when busy, base RSS MiB, always running
PROCS = [
    ("postgres", "postgres", 18.0, 900, True),
    ("python3", "app", 35.0, 420, True),
    ("nginx", "www-data", 3.0, 40, True),
    ("redis-server", "redis", 2.0, 300, True),
    ("java", "app", 12.0, 1800, True),
    ("node", "app", 6.0, 350, True),
    ("dockerd", "root", 1.5, 110, True),
    ("containerd", "root", 0.8, 60, True),
    ("systemd-journald", "root", 0.4, 90, True),
    ("sshd", "root", 0.1, 12, True),
    ("statusdash-agent", "statusdash", 0.3, 30, True),
    ("prometheus", "prometheus", 2.5, 700, True),
    ("grafana", "grafana", 0.9, 180, True),
    ("rsyslogd", "root", 0.2, 8, True),
    ("cron", "root", 0.0, 4, True),
    ("gzip", "root", 95.0, 3, False),
    ("rsync", "backup", 30.0, 25, False),
    ("pg_dump", "postgres", 40.0, 80, False),
    ("apt-get", "root", 20.0, 120, False),
    ("find", "root", 15.0, 6, False),
    ("sh", "root", 2.0, 2, False),
    ("ffmpeg", "app", 180.0, 260, False),
    ("git", "app", 25.0, 45, False),
    ("make", "app", 5.0, 20, False),
    ("cc1", "app", 98.0, 150, False),
]
TOP_N = 10


def _r2(v: float) -> float:
    return round(v, 2)


def load_trace(path: Path | None = None) -> list[dict[str, Any]]:
    """The recorded reports of this machine's agent, oldest first; [] when there is no trace."""
    env = os.environ.get("STATUSDASH_BENCH_TRACE")
    paths = [path] if path else [Path(env)] if env else []
    paths += [TRACE_DIR / "host-10s.jsonl.gz", TRACE_DIR / "host-10s.jsonl"]
    for p in paths:
        if p is None or not p.exists() or p.stat().st_size == 0:
            continue
        opener = gzip.open if p.suffix == ".gz" else open
        try:
            with opener(p, "rt") as fh:
                return [json.loads(line) for line in fh if line.strip()]
        except (OSError, EOFError, ValueError):
            continue
    return []


class _Model:
    """The synthetic host: busy/idle phases and per-series state, one ``step`` per report."""

    def __init__(self, rnd: random.Random) -> None:
        self.rnd = rnd
        self.busy = False
        self.phase_left = 0
        self.activity = 0.05
        self.cores = [2.0] * CORES
        self.temps = [45.0, 44.0, 44.5, 38.0, 30.0, 33.0]
        self.loads = [0.3, 0.3, 0.3]
        self.mem = 41.0
        self.gpu = 3.0
        self.proc_rss = {p[0]: float(p[3]) for p in PROCS}
        self.transient: dict[str, int] = {}  # name -> samples left
        self.down_left = 0

    def step(self, step: int) -> None:
        rnd = self.rnd
        if self.phase_left <= 0:
            self.busy = rnd.random() < 0.35
            self.phase_left = rnd.randint(30, 360)  # 5 to 60 minutes of 10 s samples
        self.phase_left -= 1
        target = rnd.uniform(0.45, 0.9) if self.busy else rnd.uniform(0.02, 0.08)
        self.activity += (target - self.activity) * 0.2
        for name, _, _, _, always in PROCS:
            if not always and name not in self.transient and rnd.random() < 0.004:
                self.transient[name] = rnd.randint(1, 60)
        if step % 30 == 0:  # cron's five-minute jobs
            self.transient.setdefault("sh", 2)
            self.transient.setdefault("find", rnd.randint(1, 4))
        self.transient = {k: v - 1 for k, v in self.transient.items() if v > 1}
        if self.down_left <= 0 and rnd.random() < 0.001:
            self.down_left = rnd.randint(3, 30)
        self.down_left -= 1

    def core(self, k: int) -> float:
        busy_core = self.activity * (100 if k < 5 else 40)
        v = busy_core * self.rnd.uniform(0.6, 1.15) + self.rnd.expovariate(1 / 1.5)
        return _r2(min(100.0, v))


def _drift(seed: float, t: float, amp: float = 0.08, period_h: float = 7.0) -> float:
    """A slow multiplicative drift around 1, its own phase per instance."""
    return 1 + amp * math.sin(2 * math.pi * t / (period_h * 3600) + seed)


class _Trace:
    """Replays a recorded trace with a per-instance time shift."""

    def __init__(self, frames: list[dict[str, Any]]) -> None:
        self.frames = frames
        self.n = len(frames)

    def at(self, step: int, shift: int) -> dict[str, Any]:
        return self.frames[(step + shift) % self.n]


def typical_host_reports(
    start: datetime, hours: float, seed: int = 0, *, host: str = "typical-host", trace: bool = True
) -> Iterator[dict[str, Any]]:
    """Wire-format reports of the typical host every 10 s from ``start`` for ``hours``."""
    rnd = random.Random(seed)
    model = _Model(rnd)
    frames = load_trace() if trace else []
    rep = _Trace(frames) if frames else None
    shifts = {key: rnd.randrange(max(len(frames), 1)) for key in range(64)}
    phase = {key: rnd.uniform(0, 6.3) for key in range(64)}
    steps = int(hours * 3600 / INTERVAL_S)
    t0 = start.timestamp()
    for i in range(steps):
        model.step(i)
        t = t0 + i * INTERVAL_S
        at = datetime.fromtimestamp(t, UTC) + timedelta(milliseconds=rnd.randint(0, 40))
        yield _report(i, t - t0, at, host, rnd, model, rep, shifts, phase)


def _report(
    i: int,
    elapsed: float,
    at: datetime,
    host: str,
    rnd: random.Random,
    m: _Model,
    rep: _Trace | None,
    shifts: dict[int, int],
    phase: dict[int, float],
) -> dict[str, Any]:
    def d(key: int) -> float:
        return _drift(phase[key], elapsed)

    base = rep.at(i, shifts[0]) if rep else None
    # CPU: trace cores (each of ours from one of its cores, shifted) or the model
    cores: list[float] = []
    for k in range(CORES):
        src = rep.at(i, shifts[1 + k]) if rep else None
        per = ((src or {}).get("cpu") or {}).get("per_core") or []
        cores.append(_r2(min(100.0, per[k % len(per)] * d(1 + k))) if per else m.core(k))
    cpu = _r2(sum(cores) / CORES)
    iowait = _r2(min(100.0, rnd.expovariate(1 / (0.3 + 3 * m.activity))))
    busy_cores = sum(cores) / 100
    for j, tau in enumerate((6, 30, 90)):
        m.loads[j] += (busy_cores - m.loads[j]) / tau
    mem_total = 32 << 30
    if base and base.get("memory"):
        mem_pct = min(99.0, base["memory"]["percent"] * d(10))
    else:
        m.mem += rnd.gauss(0, 0.02) + (m.activity - 0.3) * 0.01
        mem_pct = m.mem
    mem_used = int(mem_total * mem_pct / 100) // 1024 * 1024
    disks = []
    for k, (mount, dev, total, used0, grow) in enumerate(MOUNTS):
        day_frac = (elapsed % 86400) / 86400
        used = used0 + grow * elapsed / 86400 + rnd.randint(0, 64) * 4096 * (grow > 0)
        if mount == "/var":
            used -= grow * day_frac * 0.9  # nightly log rotation gives most of the day back
        used = int(used) // 4096 * 4096
        disks.append(
            {
                "mount": mount,
                "fstype": "ext4",
                "device": dev,
                "total": total,
                "used": used,
                "percent": _r2(100 * used / total),
            }
        )
        del k
    devices: dict[str, dict[str, float]] = {}
    for k, dev in enumerate(DEVICES):
        src = rep.at(i, shifts[20 + k]) if rep else None
        got = list((((src or {}).get("disk_io") or {}).get("devices") or {}).values())
        if got:
            g = got[k % len(got)]
            rd, wr = g.get("read_bytes_s", 0.0) * d(20 + k), g.get("write_bytes_s", 0.0) * d(20 + k)
        else:
            burst = rnd.random() < 0.05 + 0.4 * m.activity
            rd = rnd.expovariate(1 / 2e6) if burst and rnd.random() < 0.3 else 0.0
            wr = rnd.expovariate(1 / 4e6) if burst else rnd.choice([0.0, 0.0, 409.6, 819.2])
        busy = min(100.0, (rd + wr) / 2e6 * rnd.uniform(0.5, 1.5))
        devices[dev] = {
            "read_bytes_s": float(round(rd)),
            "write_bytes_s": float(round(wr)),
            "busy_percent": _r2(busy),
        }
    ifaces: dict[str, dict[str, float]] = {}
    for k, name in enumerate(IFACES):
        src = rep.at(i, shifts[30 + k]) if rep else None
        got = list((((src or {}).get("net") or {}).get("interfaces") or {}).values())
        if got:
            g = got[k % len(got)]
            rx, tx = g.get("rx_bytes_s", 0.0) * d(30 + k), g.get("tx_bytes_s", 0.0) * d(30 + k)
        else:
            scale = (2e3, 5e4, 1e4)[k] * (1 + 20 * m.activity)
            rx, tx = rnd.expovariate(1 / scale), rnd.expovariate(1 / (scale * 0.4))
        err = 0.1 if rnd.random() < 0.002 else 0.0
        ifaces[name] = {
            "rx_bytes_s": float(round(rx)),
            "tx_bytes_s": float(round(tx)),
            "errors_s": err,
        }
    temps = []
    for k, sensor in enumerate(SENSORS):
        goal = (38.0, 37.0, 37.5, 35.0, 28.0, 31.0)[k] + (40, 38, 39, 12, 6, 4)[k] * m.activity
        m.temps[k] += (goal - m.temps[k]) * 0.1 + rnd.gauss(0, 0.3)
        temps.append({"sensor": sensor, "label": sensor, "current": round(m.temps[k], 1)})
    procs = _processes(i, rnd, m, rep, shifts, d)
    services = []
    for k, (name, kind) in enumerate(SERVICES):
        src = rep.at(i, shifts[40 + k]) if rep else None
        got = [s for s in (src or {}).get("services", []) if s.get("latency_ms") is not None]
        down = k == 2 and m.down_left > 0
        if got:
            lat = got[k % len(got)]["latency_ms"] * d(40 + k)
        else:
            lat = rnd.lognormvariate(math.log((0.4, 0.2, 0.15, 0.05, 3.0)[k]), 0.5)
        services.append(
            {
                "name": name,
                "kind": kind,
                "status": "unhealthy" if down else "healthy",
                "checked_at": at.isoformat(),
                "latency_ms": None if down else _r2(lat),
            }
        )
    m.gpu += ((70 if m.busy and rnd.random() < 0.7 else 2) - m.gpu) * 0.3
    gpu_pct = _r2(max(0.0, min(100.0, m.gpu + rnd.gauss(0, 3))))
    gpus = [
        {
            "id": "0",
            "vendor": "nvidia",
            "model": "NVIDIA RTX A2000",
            "percent": gpu_pct,
            "memory_percent": _r2(12 + gpu_pct * 0.3),
            "temp_celsius": round(34 + gpu_pct * 0.35 + rnd.gauss(0, 0.3), 1),
            "power_watts": _r2(8 + gpu_pct * 0.6 + rnd.gauss(0, 0.8)),
        }
    ]
    return {
        "schema_version": 1,
        "report_id": str(uuid.UUID(int=rnd.getrandbits(128), version=4)),
        "host": host,
        "collected_at": at.isoformat(),
        "interval_s": INTERVAL_S,
        "cpu": {"percent": cpu, "per_core": cores, "iowait": iowait, "steal": 0.0},
        "load": {"1m": _r2(m.loads[0]), "5m": _r2(m.loads[1]), "15m": _r2(m.loads[2])},
        "memory": {
            "percent": _r2(mem_pct),
            "total": mem_total,
            "used": mem_used,
            "available": mem_total - mem_used,
        },
        "swap": {"percent": 0.5, "total": 4 << 30, "used": 21 << 20},
        "disks": disks,
        "disk_io": {
            "read_bytes_s": sum(v["read_bytes_s"] for v in devices.values()),
            "write_bytes_s": sum(v["write_bytes_s"] for v in devices.values()),
            "devices": devices,
        },
        "net": {
            "rx_bytes_s": sum(v["rx_bytes_s"] for v in ifaces.values()),
            "tx_bytes_s": sum(v["tx_bytes_s"] for v in ifaces.values()),
            "interfaces": ifaces,
        },
        "temps": temps,
        "processes": procs,
        "services": services,
        "gpus": gpus,
    }


def _processes(
    i: int,
    rnd: random.Random,
    m: _Model,
    rep: _Trace | None,
    shifts: dict[int, int],
    d: Callable[[int], float],
) -> dict[str, Any]:
    """Top 10 by CPU and by memory: the trace's own (drifted) or the model's pool."""
    src = rep.at(i, shifts[50]) if rep else None
    if src and src.get("processes"):
        p = src["processes"]
        out: dict[str, Any] = {"count": p.get("count", 0)}
        for key in ("top_cpu", "top_memory"):
            out[key] = [
                dict(q, cpu_percent=_r2(q["cpu_percent"] * d(50)), rss=int(q.get("rss", 0)))
                for q in p.get(key, [])[:TOP_N]
            ]
        return out
    rows: list[dict[str, Any]] = []
    for pid, (name, user, cpu, _rss, always) in enumerate(PROCS, start=300):
        if not always and name not in m.transient:
            continue
        load = m.activity if always else 1.0
        c = max(0.0, cpu * load * rnd.uniform(0.5, 1.4) + rnd.expovariate(1 / 0.2) - 0.1)
        m.proc_rss[name] = max(1.0, m.proc_rss[name] * (1 + rnd.gauss(0, 0.002)))
        rss_b = int(m.proc_rss[name] * (1 << 20)) // 4096 * 4096
        mem_pct = 100 * rss_b / (32 << 30)
        rows.append(
            {
                "pid": pid,
                "name": name,
                "user": user,
                "cpu_percent": _r2(c),
                "memory_percent": _r2(mem_pct),
                "rss": rss_b,
            }
        )
    return {
        "count": 180 + len(m.transient) + rnd.randint(-2, 2),
        "top_cpu": sorted(rows, key=lambda r: -r["cpu_percent"])[:TOP_N],
        "top_memory": sorted(rows, key=lambda r: -r["rss"])[:TOP_N],
    }


def series_values(report: dict[str, Any]) -> dict[tuple[str, str], int]:
    """One report as ``{(metric, label): stored int}`` at the catalogue's scales."""
    out: dict[tuple[str, str], int] = {}

    def put(metric: str, label: str, value: float | None, scale: int) -> None:
        if value is not None:
            out[(metric, label)] = round(value * scale)

    cpu = report.get("cpu") or {}
    put("cpu.percent", "", cpu.get("percent"), 100)
    put("cpu.iowait", "", cpu.get("iowait"), 100)
    for k, v in enumerate(cpu.get("per_core", [])):
        put("cpu.core.percent", str(k), v, 100)
    mem = report.get("memory") or {}
    put("memory.percent", "", mem.get("percent"), 100)
    put("swap.percent", "", (report.get("swap") or {}).get("percent"), 100)
    load = report.get("load") or {}
    for key in ("1m", "5m", "15m"):
        put(f"load.{key}", "", load.get(key), 100)
    disks = report.get("disks", [])
    if disks:
        put("disk.percent", "", max(x["percent"] for x in disks), 100)
    for x in disks:
        put("disk.mount.percent", x["mount"], x["percent"], 100)
        put("disk.mount.used_bytes", x["mount"], x["used"], 1)
    dio = report.get("disk_io") or {}
    put("disk_io.read_bytes_s", "", dio.get("read_bytes_s"), 1)
    put("disk_io.write_bytes_s", "", dio.get("write_bytes_s"), 1)
    for dev, v in dio.get("devices", {}).items():
        put("disk_io.device.read_bytes_s", dev, v.get("read_bytes_s"), 1)
        put("disk_io.device.write_bytes_s", dev, v.get("write_bytes_s"), 1)
        put("disk_io.device.busy_percent", dev, v.get("busy_percent"), 100)
    net = report.get("net") or {}
    put("net.rx_bytes_s", "", net.get("rx_bytes_s"), 1)
    put("net.tx_bytes_s", "", net.get("tx_bytes_s"), 1)
    for name, v in net.get("interfaces", {}).items():
        put("net.iface.rx_bytes_s", name, v.get("rx_bytes_s"), 1)
        put("net.iface.tx_bytes_s", name, v.get("tx_bytes_s"), 1)
        put("net.iface.errors_s", name, v.get("errors_s"), 100)
    for x in report.get("temps", []):
        put("temps.celsius", x["sensor"], x["current"], 100)
    for x in report.get("services", []):
        put("service.up", x["name"], 1 if x["status"] == "healthy" else 0, 1)
        put("service.latency_ms", x["name"], x.get("latency_ms"), 100)
    procs = report.get("processes") or {}
    put("processes.count", "", procs.get("count"), 1)
    by_pid = {x["pid"]: x for x in procs.get("top_cpu", []) + procs.get("top_memory", [])}
    by_name: dict[str, list[float]] = {}
    for x in by_pid.values():  # processes sharing a name are one series (their sum)
        acc = by_name.setdefault(x["name"], [0.0, 0.0])
        acc[0] += x["cpu_percent"]
        acc[1] += x.get("rss", 0)
    for name, (c, rss) in by_name.items():
        put("process.cpu_percent", name, c, 100)
        put("process.rss_bytes", name, rss, 1)
    for g in report.get("gpus", []):
        put("gpu.percent", g["id"], g.get("percent"), 100)
        put("gpu.memory_percent", g["id"], g.get("memory_percent"), 100)
        put("gpu.temp_celsius", g["id"], g.get("temp_celsius"), 100)
        put("gpu.power_watts", g["id"], g.get("power_watts"), 100)
    return out
