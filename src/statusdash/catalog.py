"""The metric catalogue: every history series declared once.

Storage (the ``samples`` and rollup columns and their scales), history, ``GET
/api/history/metrics`` and the readers all derive from ``METRICS``; adding a host-level series is
one entry here plus its collector. ``labels`` names the dimensions of a labelled series
(``cpu.core.percent{core}``); today's series are host-level and have none.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from statusdash.wire import MetricsReport, worst_disk

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
    return {
        m.name: {"unit": m.unit, "description": m.description, "labels": list(m.labels)}
        for m in METRICS
    }
