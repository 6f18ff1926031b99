"""The history benchmark's simulated fleet: report values, the rows hosts write, the bulk insert.

The bulk insert is the one ``Storage`` runs (``raw.insert_samples``), after the same
``rollups.last_id``; it also feeds the rejected variants of the raw table (``ALTERNATIVES``,
docs/history.md) so they can be measured beside it.
"""

from __future__ import annotations

import math
import random
import sqlite3
import uuid
from collections.abc import Iterator
from typing import Any

from statusdash.server import rollups
from statusdash.server.models import stored_value
from statusdash.server.raw import insert_samples
from statusdash.server.rollup_models import COLUMNS, SCALES

INTERVAL_S = 10
T_START = 1_789_999_200.0  # an hour boundary
_POOL = 10_007


def _pool(seed: int = 1) -> list[tuple[float, ...]]:
    """Report values shaped like the agent's: 0.01 percentages, float byte rates, integers."""
    rng = random.Random(seed)
    out: list[tuple[float, ...]] = []
    for _ in range(_POOL):
        swap = 0.0 if rng.random() < 0.7 else round(rng.uniform(0, 20), 2)
        out.append(
            (
                round(rng.uniform(0, 100), 2),  # cpu
                round(rng.uniform(0, 5), 2),  # iowait
                round(rng.uniform(30, 70), 2),  # mem
                swap,
                round(rng.uniform(0, 4), 2),  # load1
                round(rng.uniform(0, 3), 2),
                round(rng.uniform(0, 2), 2),
                round(rng.uniform(40, 60), 2),  # disk
                rng.uniform(1e3, 1e7),  # net rx bytes/s
                rng.uniform(1e3, 1e6),
                rng.uniform(0, 5e6),  # disk io
                rng.uniform(0, 5e6),
                float(rng.randint(100, 400)),  # processes
            )
        )
    return out


POOL = _pool()
_SCALES = [SCALES[c] for c in COLUMNS]
_METRICS = ", ".join(COLUMNS)
# Rejected variants of the raw table (docs/history.md), fed the same rows, pruned the same way,
# ts in whole seconds: name -> (DDL, key columns, key values of (host, ts, report id, arrival id)).
ALTERNATIVES: dict[str, tuple[list[str], str, Any]] = {
    # a rowid table with a (host_id, ts) index and the first 8 bytes of report_id
    "rowid_index_rid64_whole_seconds": (
        [
            "CREATE TABLE alt_rowid_index_rid64_whole_seconds (id INTEGER PRIMARY KEY"
            " AUTOINCREMENT, host_id INTEGER NOT NULL, ts INTEGER NOT NULL, rid INTEGER NOT NULL, "
            + ", ".join(f"{c} INTEGER" for c in COLUMNS)
            + ")",
            "CREATE INDEX ix_alt_rowid ON alt_rowid_index_rid64_whole_seconds (host_id, ts)",
        ],
        "host_id, ts, rid",
        lambda h, ts, u, i: (h, math.floor(ts), int.from_bytes(u[:8], "big", signed=True)),
    ),
    # the keyed table as shipped
    "keyed_whole_seconds": (
        [
            "CREATE TABLE alt_keyed_whole_seconds (host_id INTEGER NOT NULL, ts INTEGER NOT NULL,"
            " report_id BLOB NOT NULL, id INTEGER NOT NULL, "
            + ", ".join(f"{c} INTEGER" for c in COLUMNS)
            + ", PRIMARY KEY (host_id, ts, report_id)) WITHOUT ROWID"
        ],
        "host_id, ts, report_id, id",
        lambda h, ts, u, i: (h, math.floor(ts), u, i),
    ),
}


def fleet_rows(hosts: list[int], t0: float, t1: float) -> Iterator[tuple[Any, ...]]:
    """Reports of every host in time order, each host a little out of phase with the others."""
    i = int(t0 // INTERVAL_S)
    while i * INTERVAL_S < t1:
        for h in hosts:
            yield (h, i * INTERVAL_S + h * 0.37 + 0.123456, POOL[(i * 7919 + h * 31) % _POOL])
        i += 1


def insert_rows(conn: sqlite3.Connection, rows: list[tuple[Any, ...]], alternatives: bool) -> None:
    conn.execute("BEGIN")
    first = rollups.last_id(conn) + 1
    ids = [uuid.uuid4().bytes for _ in rows]
    insert_samples(conn, [(h, ts, u, *v) for (h, ts, v), u in zip(rows, ids, strict=True)])
    for name, (_, cols, key_of) in ALTERNATIVES.items() if alternatives else ():
        marks = ", ".join("?" * (len(cols.split(",")) + len(COLUMNS)))
        conn.executemany(
            f"INSERT INTO alt_{name} ({cols}, {_METRICS}) VALUES ({marks})",  # noqa: S608
            [
                (*key_of(h, ts, u, first + i), *map(stored_value, v, _SCALES))
                for i, ((h, ts, v), u) in enumerate(zip(rows, ids, strict=True))
            ],
        )
    conn.execute("COMMIT")


def add_hosts(conn: sqlite3.Connection, n: int) -> list[int]:
    ids = []
    for i in range(n):
        cur = conn.execute(
            "INSERT INTO hosts (name, first_seen, last_seen, last_collected, interval_s, latest)"
            " VALUES (?, 0, 0, 0, ?, '{}')",
            (f"host-{i}", INTERVAL_S),
        )
        ids.append(int(cur.lastrowid or 0))
    return ids
