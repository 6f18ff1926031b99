"""The metric catalogue is the one list of series: one more entry is one more stored series."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from statusdash import catalog, wire
from statusdash.server.models import METRIC_COLUMNS, SCALES, Sample
from statusdash.server.rollup_models import COLUMNS, rollup_1m
from tests.conftest import make_report

ROOT = Path(__file__).resolve().parents[2]

# Runs in a fresh interpreter: the entry is added before any server module derives its tables.
EXTRA_METRIC = textwrap.dedent(
    """
    import asyncio, json, sys
    from datetime import UTC, datetime, timedelta
    from pathlib import Path

    import msgspec

    from statusdash import catalog

    catalog.METRICS = (
        *catalog.METRICS,
        catalog.Metric(
            "swap.used_bytes", "B", "swap used, bytes",
            lambda r: float(r.swap.used) if r.swap else None, "swap_used", catalog.WHOLE,
        ),
    )

    from statusdash.server import history, rollups
    from statusdash.server.db import connect
    from statusdash.server.storage import Storage
    from statusdash.wire import MetricsReport

    db = Path(sys.argv[1])
    report = json.loads(sys.argv[2])
    now = datetime.now(UTC).replace(microsecond=0)

    async def main() -> dict[str, object]:
        storage = Storage(db, "NORMAL")
        storage.open()
        reports = []
        for i in range(30):
            r = dict(report, collected_at=(now - timedelta(seconds=10 * i)).isoformat())
            r["report_id"] = f"00000000-0000-4000-8000-{i:012d}"
            r["swap"] = {"percent": 1.0, "total": 10**9, "used": 1000 * (i + 1)}
            reports.append(msgspec.convert(r, MetricsReport))
        try:
            ack = await storage.ingest(reports)
            host_id = storage.host_id("web-1")
        finally:
            await storage.close()
        conn = connect(db, "NORMAL")
        rollups.roll_up(conn, pause_s=0)
        stored = sorted(v for (v,) in conn.execute("SELECT swap_used FROM samples"))
        raw = history.query(
            conn, host_id, "web-1", "swap.used_bytes", now - timedelta(minutes=10),
            now + timedelta(seconds=1), 20,
        )
        tier = history.query(
            conn, host_id, "web-1", "swap.used_bytes", now - timedelta(days=30),
            now + timedelta(seconds=1), 1,
        )
        cols = [r[1] for r in conn.execute("PRAGMA table_info(rollup_1h)")]
        return {
            "accepted": ack.accepted,
            "stored": stored,
            "raw": [
                raw.tier, max(p.max for p in raw.points), sum(p.count for p in raw.points),
            ],
            "tier": [tier.tier, tier.points[0].avg, tier.points[0].count],
            "rollup_columns": [c for c in cols if c.startswith("swap_used")],
            "listed": catalog.describe()["swap.used_bytes"],
        }

    print(json.dumps(asyncio.run(main())))
    """
)


def test_one_more_catalogue_entry_is_a_column_a_stored_value_and_a_history_answer(
    tmp_path: Path,
) -> None:
    report = json.dumps(make_report("web-1"))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])}
    out = subprocess.run(
        [sys.executable, "-c", EXTRA_METRIC, str(tmp_path / "db.sqlite"), report],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout)
    assert got["accepted"] == 30
    assert got["stored"] == [1000 * (i + 1) for i in range(30)]
    assert got["raw"] == ["raw", 30000.0, 30]
    assert got["tier"] == ["1h", 15500.0, 30]
    assert got["rollup_columns"] == [
        "swap_used_sum",
        "swap_used_min",
        "swap_used_max",
        "swap_used_n",
    ]
    assert got["listed"] == {"unit": "B", "description": "swap used, bytes", "labels": []}


def test_storage_and_history_derive_from_the_catalogue() -> None:
    names = [m.name for m in catalog.METRICS]
    assert len(names) == len(set(names)) == 13
    assert list(METRIC_COLUMNS) == names
    assert list(METRIC_COLUMNS.values()) == COLUMNS == [m.column for m in catalog.METRICS]
    assert {m.column: m.scale for m in catalog.METRICS} == SCALES
    table = Sample.metadata.tables["samples"]
    assert {c.name for c in table.columns} >= set(COLUMNS)
    assert all(table.columns[c].nullable for c in COLUMNS)
    assert {f"{c}_sum" for c in COLUMNS} <= {c.name for c in rollup_1m.columns}
    assert all(m.labels == () for m in catalog.METRICS)  # today's series are host-level


def test_each_series_reads_its_value_from_the_report() -> None:
    r = wire.convert(make_report("web-1", cpu=33.5, mem=41.0, disk=77.0))
    values = catalog.metric_values(r)
    assert values["cpu.percent"] == 33.5 and values["memory.percent"] == 41.0
    assert values["disk.percent"] == 77.0 and values["load.1m"] == 0.42
    assert values["processes.count"] == 120.0 and values["net.rx_bytes_s"] == 12000.0
    assert catalog.values(r) == list(values.values())
    empty = wire.convert({k: v for k, v in make_report("web-1").items() if k != "cpu"})
    assert catalog.metric_values(empty)["cpu.percent"] is None


def test_the_api_lists_each_series_with_unit_and_description() -> None:
    listed = catalog.describe()
    assert listed["cpu.percent"] == {"unit": "%", "description": "CPU busy, %", "labels": []}
    assert listed["net.rx_bytes_s"]["unit"] == "B/s"
    assert set(listed) == set(METRIC_COLUMNS) | {m.name for m in catalog.LABELLED}


def test_the_tui_charts_only_series_the_catalogue_declares() -> None:
    from statusdash.tui.screens.host import CHARTS

    known = catalog.by_name()
    assert {name for names in CHARTS.values() for name in names} <= set(known)
