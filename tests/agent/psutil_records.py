"""psutil's result types, rebuilt as namedtuples so tests can record any situation."""

from __future__ import annotations

from collections import namedtuple
from typing import Any

scputimes = namedtuple(
    "scputimes",
    "user nice system idle iowait irq softirq steal guest guest_nice",
)
svmem = namedtuple(
    "svmem", "total available percent used free active inactive buffers cached shared slab"
)
sswap = namedtuple("sswap", "total used free percent sin sout")
sdiskpart = namedtuple("sdiskpart", "device mountpoint fstype opts")
sdiskusage = namedtuple("sdiskusage", "total used free percent")
sdiskio = namedtuple(
    "sdiskio",
    "read_count write_count read_bytes write_bytes read_time write_time"
    " read_merged_count write_merged_count busy_time",
)
snetio = namedtuple(
    "snetio", "bytes_sent bytes_recv packets_sent packets_recv errin errout dropin dropout"
)
shwtemp = namedtuple("shwtemp", "label current high critical")


def cpu(user: float, system: float, idle: float, iowait: float = 0.0, steal: float = 0.0,
        guest: float = 0.0) -> Any:  # fmt: skip
    return scputimes(user, 0.0, system, idle, iowait, 0.0, 0.0, steal, guest, 0.0)


def disk(rb: int, wb: int, rc: int = 0, wc: int = 0) -> Any:
    return sdiskio(rc, wc, rb, wb, 0, 0, 0, 0, 0)


def nic(rx: int, tx: int, prx: int = 0, ptx: int = 0, err: int = 0, drop: int = 0) -> Any:
    return snetio(tx, rx, ptx, prx, err, 0, drop, 0)
