"""Fleet sparklines seeded from history when the server's memory of a host is short.

A server that just restarted knows one CPU value per host (``cpu_recent``); its database knows
the rest. For each host that shows fewer values than a sparkline holds, the TUI asks the history
API once for the last ``SPARK_LEN`` intervals, in a thread worker, one host after another (so a
large fleet costs one request at a time, once per host and session), then appends live values
to it as before.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from textual.message import Message

from statusdash.client import ClientError
from statusdash.tui.model import SPARK_LEN, FleetModel
from statusdash.tui.source import DataSource

METRIC = "cpu.percent"


@dataclass
class SparkSeeded(Message):
    """History's CPU values for one host's sparkline, oldest first."""

    host: str
    values: list[float]


def wanting(model: FleetModel, asked: set[str]) -> list[tuple[str, float]]:
    """Hosts (and their intervals) whose sparkline is short and whose history was not asked."""
    out = []
    for host, row in model.rows.items():
        h = row.summary
        if host not in asked and len(row.cpu) < SPARK_LEN and h.cpu_percent is not None:
            out.append((host, h.interval_s))
    return out


def fetch(
    source: DataSource,
    hosts: Sequence[tuple[str, float]],
    post: Callable[[Message], object],
    cancelled: Callable[[], bool],
) -> None:
    """Ask the history of each host in turn (in a thread worker); a failure skips that host."""
    for host, interval in hosts:
        if cancelled():
            return
        since = f"{max(1, round(interval * SPARK_LEN))}s"
        try:
            series = source.history(host, METRIC, since, SPARK_LEN)
        except ClientError:
            continue
        values = [p.avg for p in series.points]
        if values:
            post(SparkSeeded(host, values[-SPARK_LEN:]))


def apply(model: FleetModel, message: SparkSeeded) -> bool:
    """Seed the host's sparkline if history knows more than it shows; True if it changed."""
    row = model.rows.get(message.host)
    if row is None or len(row.cpu) >= len(message.values):
        return False
    # History holds every stored report, the ones the sparkline shows included.
    row.cpu.clear()
    row.cpu.extend(message.values)
    return True
