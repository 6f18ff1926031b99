"""The request path of the engine: series ids from an in-memory registry, one head row a report.

Runs on the storage writer thread only. ``readings`` turns a report into ``(metric, label
values) -> scaled value`` (before the transaction); ``Registry.head_row`` resolves the ids,
inserting new series in the caller's transaction, and encodes the row: msgpack of
``[id, value, id, value, ...]``, no compression (compaction does that, off the request path).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass, field

import msgspec

from statusdash import catalog
from statusdash.catalog import Labels
from statusdash.server.models import stored_value
from statusdash.wire import MetricsReport

Key = tuple[str, Labels]  # (metric, label values)
_encode = msgspec.msgpack.Encoder().encode


def readings(r: MetricsReport) -> list[tuple[Key, int]]:
    """Every labelled value of a report, scaled to the catalogue's integers."""
    out: list[tuple[Key, int]] = []
    for m in catalog.LABELLED:
        for labels, value in m.read(r):
            v = stored_value(value, m.scale)
            if v is not None:
                out.append(((m.name, labels), v))
    return out


def labels_json(metric: str, values: Labels) -> str:
    """The stored form of a label set: a JSON object in the catalogue's label order."""
    names = catalog.labelled_by_name()[metric].labels
    return json.dumps(dict(zip(names, values, strict=True)), separators=(",", ":"))


@dataclass
class Registry:
    """Series ids per host, loaded at start; new ones are inserted with the report that has them.

    Past ``max_per_host`` series a host's new series are not created and their values dropped
    (the report is kept); ``dropped`` counts those values per host id.
    """

    max_per_host: int
    ids: dict[int, dict[Key, int]] = field(default_factory=dict)
    dropped: dict[int, int] = field(default_factory=dict)
    dropped_total: int = 0  # all hosts, since start (read by /metrics from the event loop)
    # series id -> (min, max) collected_at seen since the registry last wrote first/last
    seen: dict[int, tuple[float, float]] = field(default_factory=dict)

    def load(self, conn: sqlite3.Connection) -> None:
        by_name = catalog.labelled_by_name()
        for sid, host_id, metric, labels in conn.execute(
            "SELECT id, host_id, metric, labels FROM series"
        ):
            m = by_name.get(metric)
            if m is None:  # a series no longer in the catalogue: kept, not written again
                continue
            obj = json.loads(labels)
            key = (metric, tuple(str(obj.get(n, "")) for n in m.labels))
            self.ids.setdefault(int(host_id), {})[key] = int(sid)

    def head_row(
        self,
        conn: sqlite3.Connection,
        host_id: int,
        ts: float,
        values: Iterable[tuple[Key, int]],
        added: list[tuple[int, Key]],
        seen: dict[int, tuple[float, float]],
    ) -> bytes | None:
        """The head blob of one report (None if it has no labelled value); new series are
        inserted on ``conn`` and listed in ``added`` (to forget if the transaction fails)."""
        known = self.ids.setdefault(host_id, {})
        flat: list[int] = []
        for key, v in values:
            sid = known.get(key)
            if sid is None:
                if len(known) >= self.max_per_host:
                    self.dropped[host_id] = self.dropped.get(host_id, 0) + 1
                    self.dropped_total += 1
                    continue
                cur = conn.execute(
                    "INSERT INTO series (host_id, metric, labels, first, last)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (host_id, key[0], labels_json(*key), ts, ts),
                )
                sid = int(cur.lastrowid or 0)
                known[key] = sid
                added.append((host_id, key))
            flat += (sid, v)
            lo_hi = seen.get(sid)
            if lo_hi is None:
                seen[sid] = (ts, ts)
            elif not lo_hi[0] <= ts <= lo_hi[1]:
                seen[sid] = (min(lo_hi[0], ts), max(lo_hi[1], ts))
        return _encode(flat) if flat else None

    def forget(self, added: Iterable[tuple[int, Key]]) -> None:
        """Undo the ids of a rolled-back transaction."""
        for host_id, key in added:
            self.ids.get(host_id, {}).pop(key, None)

    def merge_seen(self, seen: dict[int, tuple[float, float]]) -> None:
        for sid, (lo, hi) in seen.items():
            prev = self.seen.get(sid)
            self.seen[sid] = (lo, hi) if prev is None else (min(prev[0], lo), max(prev[1], hi))

    def write_seen(self, conn: sqlite3.Connection) -> None:
        """Move first/last seen into ``series`` (in the caller's transaction)."""
        if self.seen:
            conn.executemany(
                "UPDATE series SET first = min(first, ?), last = max(last, ?) WHERE id = ?",
                [(lo, hi, sid) for sid, (lo, hi) in self.seen.items()],
            )
            self.seen = {}

    def forget_host(self, host_id: int) -> None:
        for sid in self.ids.pop(host_id, {}).values():
            self.seen.pop(sid, None)
        self.dropped.pop(host_id, None)

    def count(self, host_id: int) -> int:
        return len(self.ids.get(host_id, {}))
