"""The engine's three tables: the series registry, the head and the chunks.

``series`` names every labelled series a host has had (ids assigned by the storage writer);
``series_head`` holds one row per stored report with its (series id, value) pairs, written on the
request path; ``series_chunks`` holds the compacted data: per host, per tier (``raw``, ``1m``,
``1h``) and per time window, one blob from the chunk codec.
"""

from __future__ import annotations

from sqlalchemy import Index, LargeBinary, UniqueConstraint
from sqlmodel import Field, SQLModel


class Series(SQLModel, table=True):
    """One labelled series of one host: ``metric{labels}``, first and last seen."""

    __tablename__ = "series"
    __table_args__ = (UniqueConstraint("host_id", "metric", "labels"),)

    id: int | None = Field(default=None, primary_key=True)
    host_id: int = Field(foreign_key="hosts.id")
    metric: str = Field(max_length=64)
    labels: str = Field(description="JSON object of label name -> value, in catalogue order")
    first: float = Field(description="collected_at of its first sample, epoch s")
    last: float = Field(description="collected_at of its newest sample (may lag ~10 s)")


class SeriesHead(SQLModel, table=True):
    """One stored report's labelled values, until compaction moves them into chunks.

    ``data`` is msgpack of a flat list ``[series id, scaled value, ...]``. Keyed, WITHOUT ROWID,
    by (host, ts, arrival id): compaction and queries read a host's time range in key order.
    """

    __tablename__ = "series_head"
    __table_args__ = {"sqlite_with_rowid": False}

    host_id: int = Field(primary_key=True)
    ts: int = Field(primary_key=True, description="collected_at, epoch ms")
    id: int = Field(primary_key=True, description="the report's arrival id (samples.id)")
    data: bytes = Field(sa_type=LargeBinary)


class SeriesChunk(SQLModel, table=True):
    """Compacted data of one host, tier and window [start, stop) in epoch ms.

    ``raw``: the codec's columns are series ids, rows the reports. ``1m``/``1h``: rows are bucket
    starts and column ``4 * id + k`` holds, for series ``id``, k = 0 min, 1 max, 2 sum, 3 count.
    """

    __tablename__ = "series_chunks"
    __table_args__ = (Index("ix_series_chunks_key", "host_id", "tier", "start", unique=True),)

    id: int | None = Field(default=None, primary_key=True)
    host_id: int
    tier: str = Field(max_length=4)
    start: int
    stop: int
    rows: int
    data: bytes = Field(sa_type=LargeBinary)
