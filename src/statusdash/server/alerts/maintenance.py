"""Maintenance windows (one-off, per host tag, in the database) and quiet hours (recurring, per
host tag, in the rules file): while one covers a host, its alerts are recorded but not sent.

The alert service asks ``covering`` before it sends a notice; a notice held back stays in the
outbox (as a silenced one does), so when the window ends what is still firing is sent once,
and an alert that fired and resolved inside the window is never sent. docs/alerts.md,
"Maintenance windows and quiet hours".
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import TYPE_CHECKING, Any, Literal, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator

if TYPE_CHECKING:
    from statusdash.server.alerts.store import AlertStore

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
Day = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
ALL_DAYS: tuple[Day, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
TAG_KEY = re.compile(r"[a-z][a-z0-9_.-]{0,62}")
_HHMM = re.compile(r"([01]\d|2[0-3]):([0-5]\d)")


class TagLookup(Protocol):
    """What the server-side tags service (``server/tags.py``, ``ctx.tags``) gives us."""

    def of(self, host: str) -> Mapping[str, str]: ...

    def matches(self, host: str, want: Mapping[str, str]) -> bool: ...


class NoTags:
    """Before a tags service is attached: no host has a tag, so no window covers one."""

    def of(self, host: str) -> Mapping[str, str]:
        return {}

    def matches(self, host: str, want: Mapping[str, str]) -> bool:
        return not want


def parse_tag(text: str) -> tuple[str, str]:
    """``"role=db"`` as ``("role", "db")``; ValueError says what is wrong."""
    key, sep, value = text.partition("=")
    if not sep or not TAG_KEY.fullmatch(key) or not value or len(value) > 128:
        raise ValueError(f"{text[:80]!r} is not a tag: write KEY=VALUE, e.g. role=db")
    return key, value


@dataclass(frozen=True)
class Window:
    id: int
    tag: tuple[str, str]
    starts_at: datetime
    ends_at: datetime
    reason: str
    created_by: str

    def open_at(self, now: datetime) -> bool:
        return self.starts_at <= now < self.ends_at

    def describe(self) -> str:
        return f"maintenance #{self.id} {self.tag[0]}={self.tag[1]} until {self.ends_at:%H:%M} UTC"

    def as_json(self, now: datetime | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "tag": f"{self.tag[0]}={self.tag[1]}",
            "starts_at": self.starts_at.isoformat(),
            "ends_at": self.ends_at.isoformat(),
            "reason": self.reason,
            "created_by": self.created_by,
        }
        if now is not None:
            out["active"] = self.open_at(now)
        return out


class QuietHours(BaseModel):
    """``[[quiet]]`` in the rules file: days, from/to in a time zone, for hosts with tags."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    name: str = Field(default="", max_length=64)
    tags: dict[str, str] = Field(default_factory=dict, description="all must match; {}: all")
    days: list[Day] = Field(default_factory=lambda: list(ALL_DAYS))
    start: str = Field(alias="from", description="HH:MM, local to tz")
    end: str = Field(alias="to", description="HH:MM; before from: it ends the next day")
    tz: str = "UTC"

    @field_validator("start", "end")
    @classmethod
    def _hhmm(cls, v: str) -> str:
        if not _HHMM.fullmatch(v):
            raise ValueError("must be HH:MM, 00:00 to 23:59")
        return v

    @field_validator("tz")
    @classmethod
    def _zone(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{v!r} is not a time zone (e.g. UTC, Europe/Berlin)") from None
        return v

    @field_validator("tags")
    @classmethod
    def _tags(cls, v: dict[str, str]) -> dict[str, str]:
        for key, value in v.items():
            parse_tag(f"{key}={value}")
        return v

    def active(self, now: datetime) -> bool:
        """Whether ``now`` falls in these hours (a day's span past midnight counts as that day)."""
        local = now.astimezone(ZoneInfo(self.tz))
        at = local.time()
        start, end = (time(int(x[:2]), int(x[3:])) for x in (self.start, self.end))
        today = DAYS[local.weekday()] in self.days
        if start == end:
            return today
        if start < end:
            return today and start <= at < end
        yesterday = DAYS[(local - timedelta(days=1)).weekday()] in self.days
        return (today and at >= start) or (yesterday and at < end)

    def describe(self) -> str:
        label = self.name or ",".join(f"{k}={v}" for k, v in self.tags.items()) or "all hosts"
        return f"quiet hours {label} {self.start}-{self.end} {self.tz}"


class Maintenance:
    """The windows not yet over (in memory, loaded at start) and the rules file's quiet hours."""

    def __init__(self) -> None:
        self.windows: list[Window] = []
        self.quiet: list[QuietHours] = []
        self.tags: TagLookup = NoTags()

    def covering(self, host: str, now: datetime) -> str | None:
        """What holds ``host``'s notices back now (a description), or None."""
        for w in self.windows:
            if w.open_at(now) and self.tags.matches(host, dict([w.tag])):
                return w.describe()
        for q in self.quiet:
            if q.active(now) and self.tags.matches(host, q.tags):
                return q.describe()
        return None

    def expire(self, now: datetime) -> None:
        self.windows = [w for w in self.windows if w.ends_at > now]

    def upcoming(self, now: datetime) -> list[Window]:
        return sorted((w for w in self.windows if w.ends_at > now), key=lambda w: w.starts_at)


# --- the table (runs on the alert store's thread: ``store.call(add_window, store, ...)``) ------
def add_window(
    store: AlertStore,
    tag: tuple[str, str],
    starts: datetime,
    ends: datetime,
    reason: str,
    by: str,
    now: datetime,
) -> Window:
    cur = store.conn.execute(
        "INSERT INTO maintenance_windows (tag_key, tag_value, starts_at, ends_at, reason,"
        " created_by, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (tag[0], tag[1], starts.timestamp(), ends.timestamp(), reason, by, now.timestamp()),
    )
    return Window(int(cur.lastrowid or 0), tag, starts, ends, reason, by)


def load_windows(store: AlertStore, since: datetime) -> list[Window]:
    """The windows that end after ``since``."""
    rows = store.conn.execute(
        "SELECT id, tag_key, tag_value, starts_at, ends_at, reason, created_by"
        " FROM maintenance_windows WHERE ends_at > ? ORDER BY starts_at",
        (since.timestamp(),),
    ).fetchall()
    return [Window(r[0], (r[1], r[2]), _utc(r[3]), _utc(r[4]), r[5], r[6]) for r in rows]


def remove_window(store: AlertStore, window_id: int) -> bool:
    cur = store.conn.execute("DELETE FROM maintenance_windows WHERE id = ?", (window_id,))
    return cur.rowcount > 0


def prune_windows(store: AlertStore, before: datetime) -> None:
    store.conn.execute("DELETE FROM maintenance_windows WHERE ends_at < ?", (before.timestamp(),))


def _utc(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)
