"""Host tags: what the agent declares, overlaid by what the server sets (docs/tags.md).

The effective tags of a host are its newest report's ``tags`` with the server's tags on top: a
server tag (set by ``hosts tag`` or by the enrollment token the host came with) replaces the
agent's value for its key, and one with an empty value removes the key. So a host cannot move
itself out of a rule or into a maintenance window that the server's tags decide.

``Tags`` keeps the server's tags in memory (loaded at start, written through on change); ``of``
is a dictionary lookup, computed once per report and host, so the alert path can call it freely.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from statusdash import tagtext
from statusdash.server.db import connect

if TYPE_CHECKING:
    from statusdash.server.cache import LatestCache
    from statusdash.server.context import Alerting

OPERATOR = "operator"
TOKEN = "token"  # noqa: S105  (the tag source, not a secret)
AGENT = "agent"
_EMPTY: Mapping[str, str] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class ServerTag:
    value: str  # empty: the key is blocked
    source: str  # operator or token
    set_by: str
    set_at: float


class Tags:
    """Server tags in memory, the effective tags of each host, and their changes."""

    def __init__(self, db_path: Path, cache: LatestCache) -> None:
        self.db_path = db_path
        self.cache = cache
        self._server: dict[str, dict[str, ServerTag]] = {}
        self._memo: dict[str, tuple[object, int, Mapping[str, str]]] = {}
        self._version = 0
        self._lock = asyncio.Lock()

    # --- reading -------------------------------------------------------------------------------
    def load(self) -> None:
        """Read every server tag (at start-up)."""
        self._server = _read(self.db_path, None)
        self._version += 1

    def reload_host(self, host: str) -> None:
        """Read one host's server tags again (after an enrollment wrote them)."""
        found = _read(self.db_path, host).get(host)
        if found:
            self._server[host] = found
        else:
            self._server.pop(host, None)
        self._version += 1

    def agent_tags(self, host: str) -> Mapping[str, str]:
        st = self.cache.get(host)
        return st.latest.tags if st is not None else _EMPTY

    def server_tags(self, host: str) -> Mapping[str, ServerTag]:
        return self._server.get(host, {})

    def of(self, host: str) -> Mapping[str, str]:
        """The host's effective tags (read-only, sorted by key)."""
        agent = self.agent_tags(host)
        memo = self._memo.get(host)
        if memo is not None and memo[0] is agent and memo[1] == self._version:
            return memo[2]
        merged = dict(agent)
        for key, tag in self._server.get(host, {}).items():
            if tag.value:
                merged[key] = tag.value
            else:
                merged.pop(key, None)
        result: Mapping[str, str] = MappingProxyType(dict(sorted(merged.items())))
        self._memo[host] = (agent, self._version, result)
        return result

    def matches(self, host: str, want: Mapping[str, str]) -> bool:
        """True if the host's effective tags hold every ``key=value`` of ``want``."""
        return tagtext.matches(self.of(host), want)

    def explain(self, host: str) -> dict[str, Any]:
        """Effective tags with their source, and the agent keys the server blocks."""
        agent = self.agent_tags(host)
        server = self._server.get(host, {})
        tags: dict[str, dict[str, str]] = {}
        for key, value in self.of(host).items():
            tag = server.get(key)
            tags[key] = {"value": value, "source": tag.source if tag else AGENT}
            if tag is not None and key in agent and agent[key] != value:
                tags[key]["agent_value"] = agent[key]
        blocked = sorted(k for k, t in server.items() if not t.value)
        return {"tags": tags, "blocked": blocked, "agent": dict(sorted(agent.items()))}

    # --- writing -------------------------------------------------------------------------------
    async def update(
        self, host: str, put: Mapping[str, str], remove: Iterable[str], by: str
    ) -> None:
        """Set server tags (an empty value blocks the key) and drop others, stored first."""
        put = tagtext.check_tags(put, allow_empty=True)
        gone = sorted({tagtext.check_key(k) for k in remove} - set(put))
        async with self._lock:
            after = {k: v.value for k, v in self._server.get(host, {}).items() if k not in gone}
            after.update(put)
            if len(after) > tagtext.MAX_TAGS:
                raise tagtext.TagError(
                    f"{host} would have {len(after)} server tags; at most {tagtext.MAX_TAGS}"
                )
            now = time.time()
            await asyncio.to_thread(_write, self.db_path, host, put, gone, OPERATOR, by, now)
            mine = self._server.setdefault(host, {})
            for key in gone:
                mine.pop(key, None)
            for key, value in put.items():
                mine[key] = ServerTag(value, OPERATOR, by, now)
            if not mine:
                del self._server[host]
            self._version += 1

    async def forget(self, host: str) -> None:
        """Delete every server tag of ``host`` (``hosts rm --purge``)."""
        async with self._lock:
            await asyncio.to_thread(_delete, self.db_path, host)
            self._server.pop(host, None)
            self._memo.pop(host, None)
            self._version += 1


def selector(want: Mapping[str, str], tags: Tags) -> Callable[[str], bool]:
    """A predicate over host names: the hosts whose effective tags match ``want``."""
    return lambda host: tags.matches(host, want)


def connect_alerting(alerting: Alerting, tags: Tags) -> None:
    """Let the alert engine judge a rule that targets tags only on hosts that match."""
    alerting.service.engine.matches = tags.matches
    alerting.service.tags_of = tags.of


def apply_token_tags(conn: sqlite3.Connection, host: str, token_tags: str) -> None:
    """Inside an enrollment's transaction: the token's tags become server tags of ``host``."""
    try:
        tags = json.loads(token_tags or "{}")
    except ValueError:
        return
    if not isinstance(tags, dict) or not tags:
        return
    now = time.time()
    for key, value in tags.items():
        conn.execute(
            "INSERT INTO host_tags (host, key, value, source, set_by, set_at)"
            " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (host, key) DO UPDATE SET"
            " value = excluded.value, source = excluded.source, set_by = excluded.set_by,"
            " set_at = excluded.set_at",
            (host, str(key), str(value), TOKEN, "enrollment", now),
        )


def _read(db_path: Path, host: str | None) -> dict[str, dict[str, ServerTag]]:
    conn = connect(db_path)
    try:
        sql = "SELECT host, key, value, source, set_by, set_at FROM host_tags"
        rows = (
            conn.execute(sql + " WHERE host = ?", (host,)).fetchall()
            if host is not None
            else conn.execute(sql).fetchall()
        )
    finally:
        conn.close()
    out: dict[str, dict[str, ServerTag]] = {}
    for h, key, value, source, set_by, set_at in rows:
        out.setdefault(h, {})[key] = ServerTag(value, source, set_by, set_at)
    return out


def _write(
    db_path: Path,
    host: str,
    put: Mapping[str, str],
    gone: list[str],
    source: str,
    by: str,
    now: float,
) -> None:
    conn = connect(db_path)
    try:
        conn.execute("BEGIN IMMEDIATE")
        for key in gone:
            conn.execute("DELETE FROM host_tags WHERE host = ? AND key = ?", (host, key))
        for key, value in put.items():
            conn.execute(
                "INSERT INTO host_tags (host, key, value, source, set_by, set_at)"
                " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (host, key) DO UPDATE SET"
                " value = excluded.value, source = excluded.source,"
                " set_by = excluded.set_by, set_at = excluded.set_at",
                (host, key, value, source, by[:255], now),
            )
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    finally:
        conn.close()


def _delete(db_path: Path, host: str) -> None:
    conn = connect(db_path)
    try:
        conn.execute("DELETE FROM host_tags WHERE host = ?", (host,))
    finally:
        conn.close()
