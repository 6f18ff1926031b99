"""SQLModel tables. Hot paths (ingest, history) use the same tables through sqlite3 directly."""

from __future__ import annotations

from sqlalchemy import LargeBinary
from sqlmodel import Field, SQLModel

# History series name -> column of ``samples`` (see statusdash.schema.HISTORY_METRICS).
METRIC_COLUMNS: dict[str, str] = {
    "cpu.percent": "cpu",
    "cpu.iowait": "iowait",
    "memory.percent": "mem",
    "swap.percent": "swap",
    "load.1m": "load1",
    "load.5m": "load5",
    "load.15m": "load15",
    "disk.percent": "disk",
    "net.rx_bytes_s": "net_rx",
    "net.tx_bytes_s": "net_tx",
    "disk_io.read_bytes_s": "dio_r",
    "disk_io.write_bytes_s": "dio_w",
    "processes.count": "procs",
}

# Column of ``samples`` -> integer scale: a value is stored as round(value * scale). The agent
# rounds percentages and load averages to 0.01, so x100 is lossless for them; byte rates keep
# whole bytes/s (under 0.5 B/s lost); the process count is an integer already. The rollup tiers
# store the same integers, so their sums are exact whatever order late data arrives in.
SCALES: dict[str, int] = {
    "cpu": 100,
    "iowait": 100,
    "mem": 100,
    "swap": 100,
    "load1": 100,
    "load5": 100,
    "load15": 100,
    "disk": 100,
    "net_rx": 1,
    "net_tx": 1,
    "dio_r": 1,
    "dio_w": 1,
    "procs": 1,
}
assert set(SCALES) == set(METRIC_COLUMNS.values())
# Stored values are clamped to +-MAX_SCALED (140 TB/s, a load of 1.4e12): absurd values from a
# broken agent must not overflow SQLite's 64-bit sum() in a rollup bucket of up to 65,536 rows.
MAX_SCALED = 2**47


def stored_value(value: float | None, scale: int) -> int | None:
    """``value`` as ``samples`` keeps it: round(value * scale) half away from zero, clamped.

    Ingest computes it in SQL (``stored_sql``, off the GIL); this is the same in Python.
    """
    if value is None:
        return None
    x = value * scale
    if x >= 0:
        return min(int(x + 0.5), MAX_SCALED)
    return max(-int(0.5 - x), -MAX_SCALED)


def stored_sql(param: str, scale: int) -> str:
    """SQL computing ``stored_value(param, scale)`` (NULL stays NULL: min/max of a NULL)."""
    x = f"{param} * {scale}" if scale != 1 else param
    return f"max(-{MAX_SCALED}, min({MAX_SCALED}, CAST(round({x}) AS INTEGER)))"


class Host(SQLModel, table=True):
    """A host that has reported at least once, with its latest report for the cache rebuild."""

    __tablename__ = "hosts"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True, index=True, max_length=63)
    first_seen: float = Field(description="server time of the first report, epoch seconds")
    last_seen: float = Field(description="server time of the latest report received")
    last_collected: float = Field(description="collected_at of the newest report, epoch s")
    interval_s: float
    latest: str = Field(description="newest report as JSON")


class SampleValues(SQLModel):
    """The series columns of a raw row, scaled integers (``SCALES``); NULL where not reported."""

    cpu: int | None = None
    iowait: int | None = None
    mem: int | None = None
    swap: int | None = None
    load1: int | None = None
    load5: int | None = None
    load15: int | None = None
    disk: int | None = None
    net_rx: int | None = None
    net_tx: int | None = None
    dio_r: int | None = None
    dio_w: int | None = None
    procs: int | None = None


class Sample(SampleValues, table=True):
    """One report's series values (the raw tier), as scaled integers (``SCALES``).

    Keyed, WITHOUT ROWID, by (``host_id``, ``ts``, ``report_id``): a replay has the same host,
    ``collected_at`` and ``report_id``, so ingest finds it with one key lookup, history reads a
    host's time range in key order, and no other index is needed. ``id`` is the arrival order
    (issued by ``samples_pending``), used by the rollup watermark and the replay window.
    """

    __tablename__ = "samples"
    __table_args__ = {"sqlite_with_rowid": False}

    host_id: int = Field(foreign_key="hosts.id", primary_key=True)
    ts: float = Field(primary_key=True, description="collected_at, epoch seconds")
    report_id: bytes = Field(sa_type=LargeBinary(16), primary_key=True)
    id: int = Field(description="arrival order: samples_pending.id, never reused")


class PendingSample(SampleValues, table=True):
    """A copy of a raw row until the rollup job has folded it into the tiers (then deleted).

    Its ``AUTOINCREMENT`` id is the sample's arrival order: never reused, so the rollup
    watermark and the replay-window checkpoints stay sound whatever is deleted.
    """

    __tablename__ = "samples_pending"
    __table_args__ = {"sqlite_autoincrement": True}

    id: int | None = Field(default=None, primary_key=True)
    host_id: int
    ts: float


class ApiKey(SQLModel, table=True):
    """An agent API key: bound to one host, stored only as a SHA-256 of its secret."""

    __tablename__ = "api_keys"

    id: int | None = Field(default=None, primary_key=True)
    key_id: str = Field(unique=True, index=True, max_length=32)
    host: str = Field(index=True, max_length=63)
    secret_hash: str = Field(max_length=64)
    created_at: float
    revoked_at: float | None = None
