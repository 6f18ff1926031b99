"""SQLModel tables. Hot paths (ingest, history) use the same tables through sqlite3 directly."""

from __future__ import annotations

from sqlalchemy import Index, LargeBinary
from sqlmodel import Column, Field, SQLModel

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


class Sample(SQLModel, table=True):
    """One report's series values (raw tier); ``report_id`` makes ingest idempotent."""

    __tablename__ = "samples"
    __table_args__ = (Index("ix_samples_host_ts", "host_id", "ts"),)

    id: int | None = Field(default=None, primary_key=True)
    host_id: int = Field(foreign_key="hosts.id")
    ts: float = Field(description="collected_at, epoch seconds")
    report_id: bytes = Field(sa_column=Column(LargeBinary(16), unique=True, nullable=False))
    cpu: float | None = None
    iowait: float | None = None
    mem: float | None = None
    swap: float | None = None
    load1: float | None = None
    load5: float | None = None
    load15: float | None = None
    disk: float | None = None
    net_rx: float | None = None
    net_tx: float | None = None
    dio_r: float | None = None
    dio_w: float | None = None
    procs: float | None = None


class ApiKey(SQLModel, table=True):
    """An agent API key: bound to one host, stored only as a SHA-256 of its secret."""

    __tablename__ = "api_keys"

    id: int | None = Field(default=None, primary_key=True)
    key_id: str = Field(unique=True, index=True, max_length=32)
    host: str = Field(index=True, max_length=63)
    secret_hash: str = Field(max_length=64)
    created_at: float
    revoked_at: float | None = None
