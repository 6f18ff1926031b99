"""SQLModel tables. Hot paths (ingest, history) use the same tables through sqlite3 directly."""

from __future__ import annotations

from sqlalchemy import Column, Integer, LargeBinary, Table, UniqueConstraint
from sqlmodel import Field, SQLModel

from statusdash import catalog

# Series name -> column of ``samples``, and column -> integer scale (``statusdash.catalog``).
METRIC_COLUMNS: dict[str, str] = {m.name: m.column for m in catalog.METRICS}
SCALES: dict[str, int] = {m.column: m.scale for m in catalog.METRICS}
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
    removed_at: float | None = Field(
        default=None, description="when `hosts rm` took it out of the fleet; cleared by a report"
    )


class Sample(SQLModel, table=True):
    """One report's series values (the raw tier): a column per catalogue series, scaled integers.

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


class PendingSample(SQLModel, table=True):
    """A copy of a raw row until the rollup job has folded it into the tiers (then deleted).

    Its ``AUTOINCREMENT`` id is the sample's arrival order: never reused, so the rollup
    watermark and the replay-window checkpoints stay sound whatever is deleted.
    """

    __tablename__ = "samples_pending"
    __table_args__ = {"sqlite_autoincrement": True}

    id: int | None = Field(default=None, primary_key=True)
    host_id: int
    ts: float


def _add_series_columns(table: Table) -> None:
    """One nullable integer column per catalogue series: scaled values (``SCALES``)."""
    for column in METRIC_COLUMNS.values():
        table.append_column(Column(column, Integer, nullable=True))


_add_series_columns(SQLModel.metadata.tables[Sample.__tablename__])
_add_series_columns(SQLModel.metadata.tables[PendingSample.__tablename__])


class ApiKey(SQLModel, table=True):
    """An agent API key: bound to one host, stored only as a SHA-256 of its secret."""

    __tablename__ = "api_keys"

    id: int | None = Field(default=None, primary_key=True)
    key_id: str = Field(unique=True, index=True, max_length=32)
    host: str = Field(index=True, max_length=63)
    secret_hash: str = Field(max_length=64)
    created_at: float
    revoked_at: float | None = None


class EnrollToken(SQLModel, table=True):
    """A bootstrap token for ``agent enroll``, stored only as a SHA-256 of its secret."""

    __tablename__ = "enroll_tokens"

    id: int | None = Field(default=None, primary_key=True)
    token_id: str = Field(unique=True, index=True, max_length=32)
    secret_hash: str = Field(max_length=64)
    hosts: str = Field(default="*", max_length=255, description="glob the host id must match")
    uses_max: int
    uses: int = 0
    tags: str = Field(default="{}", description="JSON object: stored for the tag feature")
    created_at: float
    expires_at: float
    revoked_at: float | None = None


class EnrollRequest(SQLModel, table=True):
    """One enrollment: issued at once, or pending until an operator approves it."""

    __tablename__ = "enroll_requests"

    id: int | None = Field(default=None, primary_key=True)
    request_id: str = Field(unique=True, index=True, max_length=64)
    host: str = Field(index=True, max_length=63)
    token_id: str = Field(max_length=32)
    key_sha256: str = Field(index=True, max_length=64, description="the CSR's public key")
    csr: str = Field(description="the CSR, PEM")
    state: str = Field(max_length=16, description="pending, approved, issued")
    reason: str = Field(default="", description="why it waits for approval")
    address: str = Field(default="", max_length=64)
    created_at: float
    decided_at: float | None = None
    serial: str | None = Field(default=None, max_length=64)
    certificate: str | None = Field(default=None, description="the issued certificate, PEM")


class HostTag(SQLModel, table=True):
    """A tag set on the server for a host (``hosts tag``, or the token it enrolled with).

    Server tags win over the tags the agent declares; an empty value blocks the agent's key
    (``server/tags.py``, docs/tags.md).
    """

    __tablename__ = "host_tags"
    __table_args__ = (UniqueConstraint("host", "key"),)

    id: int | None = Field(default=None, primary_key=True)
    host: str = Field(index=True, max_length=63)
    key: str = Field(max_length=63)
    value: str = Field(default="", max_length=128, description="empty: the key is blocked")
    source: str = Field(max_length=16, description="operator or token")
    set_by: str = Field(default="", max_length=255)
    set_at: float
