"""The load generator's request body: one realistic report, prebuilt as bytes per host.

Only ``report_id`` and ``collected_at`` vary per request, so a ``Template`` keeps the JSON around
two marks and pastes the two values in (no JSON encoding on the hot path).
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

RID_MARK = "00000000-0000-4000-8000-00000000beef"
TS_MARK = "1999-01-01T00:00:00.000000+00:00"
REPORT_INTERVAL_S = 10.0
DISKS = [
    ("/", "/dev/sda1", 100 << 30, 55 << 30, 55.0),
    ("/boot", "/dev/sda2", 1 << 30, 200 << 20, 19.5),
]


def report_dict(host: str, report_id: str, collected_at: str) -> dict[str, Any]:
    """A realistic report (~1.5 KB as compact JSON), shaped like tests/conftest.make_report."""
    proc = [
        ("postgres", "postgres", 23.5, 6.1, 512 << 20),
        ("python3", "app", 11.2, 3.4, 260 << 20),
        ("nginx", "www-data", 2.1, 0.4, 24 << 20),
    ]
    io = {"read_bytes_s": 1000.0, "write_bytes_s": 2000.0}
    net = {"rx_bytes_s": 12000.0, "tx_bytes_s": 3400.0}
    top = [
        {"pid": 1000 + i, "name": n, "user": u, "cpu_percent": c, "memory_percent": m, "rss": rss}
        for i, (n, u, c, m, rss) in enumerate(proc)
    ]
    return {
        "schema_version": 1,
        "report_id": report_id,
        "host": host,
        "collected_at": collected_at,
        "interval_s": REPORT_INTERVAL_S,
        "system": {
            "hostname": host,
            "os": "Debian GNU/Linux 12 (bookworm)",
            "kernel": "6.1.0-28-amd64",
            "arch": "x86_64",
            "boot_time": "2026-11-20T06:12:44+00:00",
            "cpu_count": 4,
        },
        "cpu": {"percent": 37.5, "per_core": [41.2, 35.0, 38.9, 34.9], "iowait": 0.5, "steal": 0.0},
        "load": {"1m": 1.42, "5m": 1.3, "15m": 1.2},
        "memory": {"percent": 40.0, "total": 8 << 30, "used": 3 << 30, "available": 5 << 30},
        "swap": {"percent": 0.0, "total": 2 << 30, "used": 0},
        "disks": [
            {"mount": m, "fstype": "ext4", "device": d, "total": t, "used": u, "percent": pc}
            for m, d, t, u, pc in DISKS
        ],
        "disk_io": {"read_bytes_s": 1e3, "write_bytes_s": 2e3, "devices": {"sda": io}},
        "net": {"rx_bytes_s": 12e3, "tx_bytes_s": 3.4e3, "interfaces": {"eth0": net}},
        "temps": [],
        "processes": {"count": 182, "top_cpu": top, "top_memory": top[:2]},
        "services": [],
    }


class Template:
    """One host's report as bytes around the two fields that change per request."""

    def __init__(self, host: str, report: dict[str, Any] | None = None) -> None:
        """``report``: any wire-format report whose ``report_id`` and ``collected_at`` the
        template replaces (default: ``report_dict``'s)."""
        body = report_dict(host, RID_MARK, TS_MARK) if report is None else dict(report)
        body.update(host=host, report_id=RID_MARK, collected_at=TS_MARK)
        text = json.dumps(body, separators=(",", ":"))
        head, rest = text.split(RID_MARK)
        mid, tail = rest.split(TS_MARK)
        self.parts = (head.encode(), mid.encode(), tail.encode())
        self.size = len(text)

    def render(self, rid: uuid.UUID, ts: datetime) -> bytes:
        a, b, c = self.parts
        return a + str(rid).encode() + b + ts.isoformat(timespec="microseconds").encode() + c
