"""Small pure functions from psutil results to the wire schema's sections (plain dicts).

They take what psutil returned (namedtuples, dicts) plus the previous sample where a rate or a
percentage needs one, so the tests feed them recorded values. The agent builds plain dicts rather
than pydantic models: pydantic would add ~10 MB to a process that runs for months (the tests
validate every section against ``statusdash.schema``). Every name read from the host goes
through ``wire_text``: its control characters shown as escapes, before it is cut to the wire's cap.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, NamedTuple

from statusdash.agent.rates import MAX_BYTES_S, MAX_COUNT_S, percent, rate
from statusdash.safetext import one_line

Json = dict[str, Any]

# Filesystems that hold no user data or whose usage means nothing (always 100 %, RAM-backed,
# or the container's copy-on-write layer); network filesystems are left out too, because a
# statvfs on a dead NFS server hangs. Any of them can be added back with an extra mount.
PSEUDO_FSTYPES = frozenset(
    {
        "autofs", "binfmt_misc", "bpf", "cgroup", "cgroup2", "configfs", "debugfs", "devfs",
        "devpts", "devtmpfs", "efivarfs", "fusectl", "hugetlbfs", "mqueue", "nsfs", "overlay",
        "overlayfs", "aufs", "proc", "pstore", "ramfs", "rpc_pipefs", "securityfs", "selinuxfs",
        "squashfs", "sysfs", "tmpfs", "tracefs", "iso9660", "udf", "nfs", "nfs4", "cifs", "smb3",
        "smbfs", "9p", "ceph", "glusterfs", "afs", "nfsd", "fdescfs", "linprocfs", "linsysfs",
        "procfs", "zram",
    }
)  # fmt: skip
# Block devices that are not disks of their own (loops carry snaps, zram is RAM).
_NOT_DISKS = ("loop", "ram", "zram", "sr", "fd", "nbd")
# Stacked devices (LVM, RAID) whose IO is also counted on the disks beneath them.
_STACKED = ("dm-", "md")
_MAX_TEMPS = 64


def _r1(x: float) -> float:
    return round(x, 1)


def wire_text(value: str, limit: int = 255) -> str:
    """A name from the host for the wire: one line, controls and bidi shown as escapes, capped.

    Escaped rather than dropped, so an odd process name still reads as what it is.
    """
    return one_line(value)[:limit]


# --- system -----------------------------------------------------------------------------------


def parse_os_release(text: str) -> str:
    """The PRETTY_NAME of an /etc/os-release file, or NAME VERSION when it has none."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.strip().partition("=")
        if sep and key and not key.startswith("#"):
            values[key] = value.strip().strip("'\"")
    pretty = values.get("PRETTY_NAME") or " ".join(
        v for v in (values.get("NAME", ""), values.get("VERSION", "")) if v
    )
    return wire_text(pretty)


def system_info(
    hostname: str, os_name: str, kernel: str, arch: str, boot_time: float | None, cpu_count: int
) -> Json:
    """The ``system`` section from facts that do not change while the agent runs."""
    boot = datetime.fromtimestamp(boot_time, UTC).isoformat() if boot_time else None
    return {
        "hostname": wire_text(hostname or "unknown"),
        "os": wire_text(os_name),
        "kernel": wire_text(kernel),
        "arch": wire_text(arch, 64),
        "boot_time": boot,
        "cpu_count": max(1, cpu_count),
    }


# --- cpu, load, memory ------------------------------------------------------------------------


def _cpu_deltas(prev: Any, cur: Any) -> tuple[float, dict[str, float]]:
    """Total time and per-field time a CPU spent between two ``scputimes`` samples."""
    deltas = {f: max(0.0, getattr(cur, f) - getattr(prev, f)) for f in cur._fields}
    # On Linux guest time is already inside user and nice; psutil leaves it out of the total.
    total = sum(v for f, v in deltas.items() if f not in ("guest", "guest_nice"))
    return total, deltas


def core_busy(prev: Any, cur: Any) -> tuple[float, float | None, float | None]:
    """Busy, iowait and steal percentages of one CPU (iowait counts as idle, as in psutil)."""
    total, d = _cpu_deltas(prev, cur)
    idle = d.get("idle", 0.0) + d.get("iowait", 0.0)
    busy = percent(total - idle, total)
    iowait = percent(d["iowait"], total) if "iowait" in d else None
    steal = percent(d["steal"], total) if "steal" in d else None
    return busy, iowait, steal


def cpu_section(prev: Sequence[Any] | None, cur: Sequence[Any]) -> Json | None:
    """The ``cpu`` section from two per-core ``cpu_times(percpu=True)`` samples."""
    if not prev or not cur:
        return None
    n = min(len(prev), len(cur))  # a CPU taken offline between samples
    per_core = [core_busy(prev[i], cur[i])[0] for i in range(n)]
    total_prev = _sum_times(prev[:n])
    total_cur = _sum_times(cur[:n])
    busy, iowait, steal = core_busy(total_prev, total_cur)
    return {"percent": busy, "per_core": per_core, "iowait": iowait, "steal": steal}


class _Times:
    """A sum of several ``scputimes``, with the same field names."""

    def __init__(self, fields: Sequence[str], values: Sequence[float]) -> None:
        self._fields = tuple(fields)
        for f, v in zip(fields, values, strict=True):
            setattr(self, f, v)


def _sum_times(samples: Sequence[Any]) -> _Times:
    fields: Sequence[str] = samples[0]._fields
    return _Times(fields, [sum(getattr(s, f) for s in samples) for f in fields])


def load_section(loadavg: Sequence[float]) -> Json:
    """The ``load`` section (keys ``1m``, ``5m``, ``15m``)."""
    m1, m5, m15 = (max(0.0, round(float(x), 2)) for x in loadavg[:3])
    return {"1m": m1, "5m": m5, "15m": m15}


def memory_section(vm: Any) -> Json:
    """The ``memory`` section from ``virtual_memory()``."""
    total = max(0, int(vm.total))
    available = min(total, max(0, int(vm.available)))
    return {
        "percent": percent(total - available, total),
        "total": total,
        "used": max(0, int(vm.used)),
        "available": available,
    }


def swap_section(sw: Any) -> Json:
    """The ``swap`` section from ``swap_memory()``; a host without swap reports zeros."""
    total = max(0, int(sw.total))
    used = min(total, max(0, int(sw.used)))
    return {"percent": percent(used, total), "total": total, "used": used}


# --- disks ------------------------------------------------------------------------------------


class Partition(NamedTuple):
    device: str
    mountpoint: str
    fstype: str


def real_partitions(
    partitions: Iterable[Any],
    extra_mounts: Iterable[str] = (),
    excluded_fstypes: frozenset[str] = PSEUDO_FSTYPES,
) -> list[Partition]:
    """Partitions worth reporting: real filesystems, one mount per device, plus extra mounts.

    An extra mount is reported even when it is a pseudo filesystem, or not a mount point at
    all (then the usage is that of the filesystem holding it).
    """
    extra = {m.rstrip("/") or "/" for m in extra_mounts}
    chosen: dict[str, Partition] = {}
    seen: set[str] = set()
    for part in partitions:
        p = Partition(str(part.device), str(part.mountpoint), str(part.fstype))
        mount = p.mountpoint
        seen.add(mount)
        if mount not in extra:
            fstype = p.fstype.lower()
            if fstype in excluded_fstypes or (fstype.startswith("fuse.") and fstype != "fuseblk"):
                continue
        # Bind mounts (and a container's /etc/hosts) show one device several times: keep the
        # shortest mount point, which is the filesystem's own.
        key = p.device if p.device and p.device not in ("none", "") else mount
        if mount in extra:
            key = "\0" + mount
        old = chosen.get(key)
        if old is None or len(mount) < len(old.mountpoint):
            chosen[key] = p
    for mount in extra - seen:
        chosen["\0" + mount] = Partition("", mount, "")
    return sorted(chosen.values(), key=lambda p: p.mountpoint)


def disks_section(partitions: Iterable[Partition], usage: Callable[[str], Any]) -> list[Json]:
    """One entry per partition; a mount that vanished or is unreadable since listing is skipped."""
    disks: list[Json] = []
    for p in partitions:
        try:
            u = usage(p.mountpoint)
        except OSError:
            continue
        total = int(u.total)
        if total <= 0:
            continue
        used = max(0, int(u.used))
        free = max(0, int(getattr(u, "free", total - used)))
        disks.append(
            {
                "mount": wire_text(p.mountpoint),
                "fstype": wire_text(p.fstype, 64),
                "device": wire_text(p.device),
                "total": total,
                "used": used,
                # as df: used against what users can reach (root's reserve left out)
                "percent": percent(used, used + free),
            }
        )
    return disks


def is_whole_disk(name: str, block_devices: frozenset[str] | None) -> bool:
    """Whether a ``disk_io_counters`` name is a disk of its own (not a partition, loop or RAM)."""
    if name.startswith(_NOT_DISKS):
        return False
    return block_devices is None or name in block_devices


def busy_percent(prev: Any, cur: Any, dt: float) -> float | None:
    """% of ``dt`` a device was busy, from its ``busy_time`` (io_time, ms) counter; ``None``
    where the platform has no such counter or it went backwards (a device re-created)."""
    before, after = getattr(prev, "busy_time", None), getattr(cur, "busy_time", None)
    if before is None or after is None or after < before or not dt > 0:
        return None
    return percent((after - before) / 1000.0, dt)


def disk_io_section(
    prev: Mapping[str, Any] | None,
    cur: Mapping[str, Any],
    dt: float,
    block_devices: frozenset[str] | None = None,
) -> Json:
    """The ``disk_io`` section: per-disk and total rates; totals ``None`` on the first sample."""
    if prev is None:
        return {"read_bytes_s": None, "write_bytes_s": None, "devices": {}}
    devices: Json = {}
    read_total = write_total = 0.0
    for name, c in sorted(cur.items()):
        p = prev.get(name)
        if p is None or not is_whole_disk(name, block_devices):
            continue
        rates = (
            rate(p.read_bytes, c.read_bytes, dt, MAX_BYTES_S),
            rate(p.write_bytes, c.write_bytes, dt, MAX_BYTES_S),
            rate(p.read_count, c.read_count, dt, MAX_COUNT_S),
            rate(p.write_count, c.write_count, dt, MAX_COUNT_S),
        )
        if any(r is None for r in rates):
            continue
        rb, wb, ro, wo = (_r1(r or 0.0) for r in rates)
        devices[name] = {
            "read_bytes_s": rb,
            "write_bytes_s": wb,
            "read_ops_s": ro,
            "write_ops_s": wo,
            "busy_percent": busy_percent(p, c, dt),
        }
        if not name.startswith(_STACKED):
            read_total += rb
            write_total += wb
    devices = {wire_text(name): v for name, v in devices.items()}
    return {"read_bytes_s": _r1(read_total), "write_bytes_s": _r1(write_total), "devices": devices}


# --- network ----------------------------------------------------------------------------------


def _nic_rates(p: Any, c: Any, dt: float) -> Json | None:
    rates = (
        rate(p.bytes_recv, c.bytes_recv, dt, MAX_BYTES_S),
        rate(p.bytes_sent, c.bytes_sent, dt, MAX_BYTES_S),
        rate(p.packets_recv, c.packets_recv, dt, MAX_COUNT_S),
        rate(p.packets_sent, c.packets_sent, dt, MAX_COUNT_S),
        rate(p.errin + p.errout, c.errin + c.errout, dt, MAX_COUNT_S),
        rate(p.dropin + p.dropout, c.dropin + c.dropout, dt, MAX_COUNT_S),
    )
    if any(r is None for r in rates):
        return None
    keys = ("rx_bytes_s", "tx_bytes_s", "rx_packets_s", "tx_packets_s", "errors_s", "drops_s")
    return {k: _r1(r or 0.0) for k, r in zip(keys, rates, strict=True)}


def net_section(
    prev: Mapping[str, Any] | None,
    cur: Mapping[str, Any],
    dt: float,
    physical: frozenset[str] | None = None,
) -> Json:
    """The ``net`` section: per-interface rates, totals over physical NICs (or all but ``lo``).

    Bridges, VLANs, tunnels and bonds carry traffic already counted on a physical NIC, so
    the totals add physical interfaces only when the host has any (a container has none).
    Container-side ``veth`` pairs are left out of the per-interface map.
    """
    if prev is None:
        return {"rx_bytes_s": None, "tx_bytes_s": None, "interfaces": {}}
    interfaces: Json = {}
    for name, c in sorted(cur.items()):
        p = prev.get(name)
        if p is None or name == "lo" or name.startswith("veth"):
            continue
        r = _nic_rates(p, c, dt)
        if r is not None:
            interfaces[name] = r
    counted = [n for n in interfaces if physical and n in physical] or list(interfaces)
    return {
        "rx_bytes_s": _r1(sum(interfaces[n]["rx_bytes_s"] for n in counted)),
        "tx_bytes_s": _r1(sum(interfaces[n]["tx_bytes_s"] for n in counted)),
        "interfaces": {wire_text(name): v for name, v in interfaces.items()},
    }


# --- temperatures -----------------------------------------------------------------------------


def _temp(x: float | None) -> float | None:
    if x is None or not math.isfinite(x) or not -273.15 <= x <= 1000:
        return None
    return round(float(x), 1)


def temps_section(sensors: Mapping[str, Sequence[Any]] | None) -> list[Json]:
    """The ``temps`` list from ``sensors_temperatures()``; empty where there are no sensors."""
    temps: list[Json] = []
    for sensor, readings in sorted((sensors or {}).items()):
        for t in readings:
            current = _temp(t.current)
            if current is None or not sensor:
                continue
            high = _temp(t.high) if t.high else None  # drivers report 0 for "no threshold"
            critical = _temp(t.critical) if t.critical else None
            temps.append(
                {
                    "sensor": wire_text(sensor),
                    "label": wire_text(t.label or ""),
                    "current": current,
                    "high": high,
                    "critical": critical,
                }
            )
            if len(temps) >= _MAX_TEMPS:
                return temps
    return temps
