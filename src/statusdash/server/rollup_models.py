"""Tables of the 1-minute and 1-hour rollup tiers, and the small state the jobs keep.

A rollup row holds, per metric, the sum, min and max of the raw values (integers already: see
``models.SCALES``) and how many values it covers, so merging late data is exact integer arithmetic
and a row costs ~170 bytes instead of ~360 with REALs. The 52 metric columns are generated from
the catalogue (``statusdash.catalog``), hence SQLAlchemy Core tables on ``SQLModel.metadata``.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Column, Float, Integer, String, Table
from sqlmodel import SQLModel

from statusdash.server.models import METRIC_COLUMNS
from statusdash.server.models import SCALES as SCALES  # re-exported: raw and tiers share them

COLUMNS: list[str] = list(METRIC_COLUMNS.values())


@dataclass(frozen=True)
class Tier:
    """A rollup tier: its name on the wire, its table and its bucket width in seconds."""

    name: str
    table: str
    step: int


MINUTE = Tier("1m", "rollup_1m", 60)
HOUR = Tier("1h", "rollup_1h", 3600)
TIERS: tuple[Tier, ...] = (MINUTE, HOUR)

# history_state keys
ROLLUP_ID = "rollup_id"  # every samples row with id <= this is in both tiers


def cutoff_key(tier: str) -> str:
    """The history_state key of the cutoff a tier was last pruned at (``raw``, ``1m``, ``1h``)."""
    return f"cutoff_{tier}"


def _tier_table(tier: Tier) -> Table:
    cols: list[Column[int]] = [
        Column("host_id", Integer, primary_key=True, autoincrement=False),
        Column("t", Integer, primary_key=True, autoincrement=False),  # bucket start, epoch s
        Column("n", Integer, nullable=False),  # raw rows in the bucket
    ]
    for c in COLUMNS:
        cols += [
            Column(f"{c}_sum", Integer),
            Column(f"{c}_min", Integer),
            Column(f"{c}_max", Integer),
            Column(f"{c}_n", Integer),  # values present; NULL means "= n" (saves a byte a metric)
        ]
    return Table(tier.table, SQLModel.metadata, *cols, sqlite_with_rowid=False)


rollup_1m = _tier_table(MINUTE)
rollup_1h = _tier_table(HOUR)
history_state = Table(
    "history_state",
    SQLModel.metadata,
    Column("name", String(32), primary_key=True),
    Column("value", Float, nullable=False),
)
# Arrival log: every samples row with id <= max_id had arrived by ``at`` (server time).
rollup_checkpoints = Table(
    "rollup_checkpoints",
    SQLModel.metadata,
    Column("at", Float, primary_key=True),
    Column("max_id", Integer, nullable=False),
)
