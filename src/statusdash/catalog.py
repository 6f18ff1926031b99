"""The metric catalogue: every history series declared once.

Storage (the ``samples`` and rollup columns and their scales), history, ``GET
/api/history/metrics`` and the readers all derive from ``METRICS``; adding a host-level series is
one entry here plus its collector. ``labels`` names the dimensions of a labelled series
(``cpu.core.percent{core}``); today's series are host-level and have none.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from statusdash.wire import HealthStatus, MetricsReport, worst_disk

# A stored value is round(value * scale): the agent rounds percentages and load averages to
# 0.01, so x100 is lossless for them; byte rates keep whole bytes/s (under 0.5 B/s lost); counts
# are integers already. The rollup tiers store the same integers, so their sums are exact.
HUNDREDTHS = 100
WHOLE = 1


@dataclass(frozen=True)
class Metric:
    """One series: its name, unit, meaning, how it is read from a report and how it is stored."""

    name: str
    unit: str
    description: str
    read: Callable[[MetricsReport], float | None]
    column: str  # of ``samples``, ``samples_pending`` and (as ``<column>_sum`` ...) the rollups
    scale: int
    labels: tuple[str, ...] = ()


def _disk_percent(r: MetricsReport) -> float | None:
    worst = worst_disk(r.disks)
    return worst.percent if worst else None


METRICS: tuple[Metric, ...] = (
    Metric(
        "cpu.percent",
        "%",
        "CPU busy, %",
        lambda r: r.cpu.percent if r.cpu else None,
        "cpu",
        HUNDREDTHS,
    ),
    Metric(
        "cpu.iowait",
        "%",
        "CPU waiting on IO, %",
        lambda r: r.cpu.iowait if r.cpu else None,
        "iowait",
        HUNDREDTHS,
    ),
    Metric(
        "memory.percent",
        "%",
        "memory used, %",
        lambda r: r.memory.percent if r.memory else None,
        "mem",
        HUNDREDTHS,
    ),
    Metric(
        "swap.percent",
        "%",
        "swap used, %",
        lambda r: r.swap.percent if r.swap else None,
        "swap",
        HUNDREDTHS,
    ),
    Metric(
        "load.1m",
        "load",
        "load average, 1 minute",
        lambda r: r.load.m1 if r.load else None,
        "load1",
        HUNDREDTHS,
    ),
    Metric(
        "load.5m",
        "load",
        "load average, 5 minutes",
        lambda r: r.load.m5 if r.load else None,
        "load5",
        HUNDREDTHS,
    ),
    Metric(
        "load.15m",
        "load",
        "load average, 15 minutes",
        lambda r: r.load.m15 if r.load else None,
        "load15",
        HUNDREDTHS,
    ),
    Metric("disk.percent", "%", "fullest real filesystem, %", _disk_percent, "disk", HUNDREDTHS),
    Metric(
        "net.rx_bytes_s",
        "B/s",
        "network received, bytes/s",
        lambda r: r.net.rx_bytes_s if r.net else None,
        "net_rx",
        WHOLE,
    ),
    Metric(
        "net.tx_bytes_s",
        "B/s",
        "network sent, bytes/s",
        lambda r: r.net.tx_bytes_s if r.net else None,
        "net_tx",
        WHOLE,
    ),
    Metric(
        "disk_io.read_bytes_s",
        "B/s",
        "disk read, bytes/s",
        lambda r: r.disk_io.read_bytes_s if r.disk_io else None,
        "dio_r",
        WHOLE,
    ),
    Metric(
        "disk_io.write_bytes_s",
        "B/s",
        "disk written, bytes/s",
        lambda r: r.disk_io.write_bytes_s if r.disk_io else None,
        "dio_w",
        WHOLE,
    ),
    Metric(
        "processes.count",
        "count",
        "processes",
        lambda r: float(r.processes.count) if r.processes else None,
        "procs",
        WHOLE,
    ),
)


def by_name() -> dict[str, Metric]:
    """Series name -> its entry."""
    return {m.name: m for m in METRICS}


def values(r: MetricsReport) -> list[float | None]:
    """The values of one report, in the order of ``METRICS`` (None where not reported)."""
    return [m.read(r) for m in METRICS]


def metric_values(r: MetricsReport) -> dict[str, float | None]:
    """The values of one report keyed by series name."""
    return {m.name: m.read(r) for m in METRICS}


def describe() -> dict[str, dict[str, str | list[str]]]:
    """What ``GET /api/history/metrics`` answers: each series with its unit and meaning."""
    out: dict[str, dict[str, str | list[str]]] = {
        m.name: {"unit": m.unit, "description": m.description, "labels": list(m.labels)}
        for m in METRICS
    }
    for lm in LABELLED:
        out[lm.name] = {"unit": lm.unit, "description": lm.description, "labels": list(lm.labels)}
    return out


# --- labelled series (issue 13) -----------------------------------------------------------------
Labels = tuple[str, ...]  # label values, in the order of the series' ``labels``
Reading = tuple[Labels, float]


@dataclass(frozen=True)
class LabelledMetric:
    """A labelled series: one value per label set per report (``disk.mount.percent{mount}``).

    ``read`` yields ``(label values, value)`` pairs, at most one per label set. The stored value
    is ``round(value * scale)`` as for the host-level series. No name is both a host-level and a
    labelled series, so a ``sum()`` over a labelled series never counts a total twice.
    """

    name: str
    unit: str
    description: str
    labels: tuple[str, ...]
    read: Callable[[MetricsReport], Iterable[Reading]]
    scale: int


def _cores(r: MetricsReport) -> Iterator[Reading]:
    if r.cpu:
        for i, v in enumerate(r.cpu.per_core):
            yield (str(i),), v


def _disks(field: str) -> Callable[[MetricsReport], Iterator[Reading]]:
    def read(r: MetricsReport) -> Iterator[Reading]:
        seen: set[str] = set()
        for d in r.disks:
            if d.mount not in seen:
                seen.add(d.mount)
                yield (d.mount,), float(getattr(d, field))

    return read


def _devices(field: str) -> Callable[[MetricsReport], Iterator[Reading]]:
    def read(r: MetricsReport) -> Iterator[Reading]:
        if r.disk_io:
            for name, dev in r.disk_io.devices.items():
                v = getattr(dev, field, None)  # busy_percent: newer agents only
                if v is not None:
                    yield (name,), float(v)

    return read


def _ifaces(field: str) -> Callable[[MetricsReport], Iterator[Reading]]:
    def read(r: MetricsReport) -> Iterator[Reading]:
        if r.net:
            for name, rate in r.net.interfaces.items():
                if name != "lo":  # loopback is not traffic, as in the totals
                    yield (name,), float(getattr(rate, field))

    return read


def _temps(r: MetricsReport) -> Iterator[Reading]:
    seen: set[str] = set()
    for t in r.temps:
        sensor = f"{t.sensor}/{t.label}" if t.label else t.sensor
        if sensor not in seen:
            seen.add(sensor)
            yield (sensor,), t.current


def _service_up(r: MetricsReport) -> Iterator[Reading]:
    for s in r.services:
        if s.status == HealthStatus.healthy:
            yield (s.name,), 1.0
        elif s.status == HealthStatus.unhealthy:
            yield (s.name,), 0.0


def _service_latency(r: MetricsReport) -> Iterator[Reading]:
    for s in r.services:
        if s.latency_ms is not None:
            yield (s.name,), s.latency_ms


def process_labels(r: MetricsReport) -> dict[str, tuple[float, float]]:
    """The top processes of a report (top CPU and top memory, deduplicated by pid) summed per
    label: the name, or ``name#exe_hash`` where one name has two or more distinct exe hashes in
    this report. Label -> (cpu %, rss bytes)."""
    if r.processes is None:
        return {}
    procs = {p.pid: p for p in (*r.processes.top_cpu, *r.processes.top_memory)}
    hashes: dict[str, set[str]] = {}
    for p in procs.values():
        hashes.setdefault(p.name, set()).add(getattr(p, "exe_hash", ""))
    out: dict[str, tuple[float, float]] = {}
    for p in procs.values():
        label = p.name
        if len(hashes[p.name]) > 1:
            label = f"{p.name}#{getattr(p, 'exe_hash', '')}"
        cpu, rss = out.get(label, (0.0, 0.0))
        out[label] = (cpu + p.cpu_percent, rss + p.rss)
    return out


def _processes(index: int) -> Callable[[MetricsReport], Iterator[Reading]]:
    def read(r: MetricsReport) -> Iterator[Reading]:
        for label, pair in process_labels(r).items():
            yield (label,), pair[index]

    return read


def _items(section: str, key: str, field: str) -> Callable[[MetricsReport], Iterator[Reading]]:
    """gpus / containers: fields of newer agents (``getattr``: absent on older wire versions)."""

    def read(r: MetricsReport) -> Iterator[Reading]:
        seen: set[str] = set()
        for item in getattr(r, section, None) or ():
            label, v = getattr(item, key), getattr(item, field, None)
            if v is not None and label not in seen:
                seen.add(label)
                yield (str(label),), float(v)

    return read


LABELLED: tuple[LabelledMetric, ...] = (
    LabelledMetric("cpu.core.percent", "%", "CPU busy per core, %", ("core",), _cores, HUNDREDTHS),
    LabelledMetric(
        "disk.mount.percent", "%", "filesystem used, %", ("mount",), _disks("percent"), HUNDREDTHS
    ),
    LabelledMetric(
        "disk.mount.used_bytes", "B", "filesystem used, bytes", ("mount",), _disks("used"), WHOLE
    ),
    LabelledMetric(
        "disk_io.device.read_bytes_s",
        "B/s",
        "block device read, bytes/s",
        ("device",),
        _devices("read_bytes_s"),
        WHOLE,
    ),
    LabelledMetric(
        "disk_io.device.write_bytes_s",
        "B/s",
        "block device written, bytes/s",
        ("device",),
        _devices("write_bytes_s"),
        WHOLE,
    ),
    LabelledMetric(
        "disk_io.device.busy_percent",
        "%",
        "block device busy, % of time",
        ("device",),
        _devices("busy_percent"),
        HUNDREDTHS,
    ),
    LabelledMetric(
        "net.iface.rx_bytes_s",
        "B/s",
        "interface received, bytes/s",
        ("iface",),
        _ifaces("rx_bytes_s"),
        WHOLE,
    ),
    LabelledMetric(
        "net.iface.tx_bytes_s",
        "B/s",
        "interface sent, bytes/s",
        ("iface",),
        _ifaces("tx_bytes_s"),
        WHOLE,
    ),
    LabelledMetric(
        "net.iface.errors_s",
        "/s",
        "interface errors, per second",
        ("iface",),
        _ifaces("errors_s"),
        HUNDREDTHS,
    ),
    LabelledMetric("temps.celsius", "°C", "sensor temperature", ("sensor",), _temps, HUNDREDTHS),
    LabelledMetric(
        "service.up", "bool", "service check healthy (1) or not (0)", ("service",), _service_up, 1
    ),
    LabelledMetric(
        "service.latency_ms",
        "ms",
        "service check latency, ms",
        ("service",),
        _service_latency,
        HUNDREDTHS,
    ),
    LabelledMetric(
        "process.cpu_percent",
        "%",
        "top process CPU, % of one core",
        ("process",),
        _processes(0),
        HUNDREDTHS,
    ),
    LabelledMetric(
        "process.rss_bytes",
        "B",
        "top process resident memory, bytes",
        ("process",),
        _processes(1),
        WHOLE,
    ),
    LabelledMetric(
        "gpu.percent", "%", "GPU busy, %", ("gpu",), _items("gpus", "id", "percent"), HUNDREDTHS
    ),
    LabelledMetric(
        "gpu.memory_percent",
        "%",
        "GPU memory used, %",
        ("gpu",),
        _items("gpus", "id", "memory_percent"),
        HUNDREDTHS,
    ),
    LabelledMetric(
        "gpu.temp_celsius",
        "°C",
        "GPU temperature",
        ("gpu",),
        _items("gpus", "id", "temp_celsius"),
        HUNDREDTHS,
    ),
    LabelledMetric(
        "gpu.power_watts",
        "W",
        "GPU power draw, watts",
        ("gpu",),
        _items("gpus", "id", "power_watts"),
        HUNDREDTHS,
    ),
    LabelledMetric(
        "container.cpu_percent",
        "%",
        "container CPU, % of one core",
        ("container",),
        _items("containers", "name", "cpu_percent"),
        HUNDREDTHS,
    ),
    LabelledMetric(
        "container.memory_bytes",
        "B",
        "container memory, bytes",
        ("container",),
        _items("containers", "name", "memory_bytes"),
        WHOLE,
    ),
)


def labelled_by_name() -> dict[str, LabelledMetric]:
    """Labelled series name -> its entry."""
    return {m.name: m for m in LABELLED}


assert not {m.name for m in METRICS} & {m.name for m in LABELLED}, "a name is both kinds"
