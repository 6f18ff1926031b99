"""The fleet's tag filter and group-by, free of Textual (docs/tui.md, docs/tags.md).

A filter word ``key=value`` matches a host whose effective tag ``key`` is exactly ``value``;
every other word is looked for in the host's name, OS, status and tags, as before. Grouping by a
tag key orders the hosts by that tag's value (hosts without it last), keeping the sort inside
each group, and puts a section row above each group.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from statusdash.schema import HostSummary
from statusdash.tagtext import show

NO_TAG = "(none)"


@dataclass(frozen=True, slots=True)
class Section:
    """A group's header row in the fleet table."""

    key: str
    value: str | None  # None: the hosts without the tag
    count: int

    @property
    def label(self) -> str:
        return f"{self.key}={self.value}" if self.value is not None else f"{self.key} {NO_TAG}"


Line = str | Section  # a host id, or a section row


@dataclass(frozen=True, slots=True)
class Filter:
    tags: dict[str, str]
    words: list[str]

    @classmethod
    def parse(cls, text: str) -> Filter:
        tags: dict[str, str] = {}
        words: list[str] = []
        for word in text.split():
            key, sep, value = word.partition("=")
            if sep and key:
                tags[key.lower()] = value
            else:
                words.append(word.lower())
        return cls(tags, words)

    def __bool__(self) -> bool:
        return bool(self.tags or self.words)

    def matches(self, h: HostSummary) -> bool:
        if any(h.tags.get(k) != v for k, v in self.tags.items()):
            return False
        if not self.words:
            return True
        alert = " alert" if h.alerts_active else ""
        hay = f"{h.host} {h.os} {h.status.value}{alert} {show(h.tags)}".lower()
        return all(word in hay for word in self.words)


def tag_keys(hosts: Iterable[HostSummary]) -> list[str]:
    """Every tag key some host has, sorted."""
    return sorted({k for h in hosts for k in h.tags})


def next_group(current: str | None, keys: list[str]) -> str | None:
    """The group-by after ``current``: none, then each key in turn, then none again."""
    if not keys:
        return None
    if current not in keys:
        return keys[0]
    i = keys.index(current) + 1
    return keys[i] if i < len(keys) else None


def group_order(hosts: list[HostSummary], key: str) -> list[HostSummary]:
    """``hosts`` (already sorted) ordered by their ``key`` value, the untagged last (stable)."""
    return sorted(hosts, key=lambda h: (key not in h.tags, h.tags.get(key, "")))


def lines(hosts: list[HostSummary], key: str | None) -> list[Line]:
    """The table's rows: the hosts, with a section row before each group when grouping."""
    if key is None:
        return [h.host for h in hosts]
    out: list[Line] = []
    current: tuple[bool, str] | None = None
    start = 0
    for h in hosts:
        value = h.tags.get(key)
        mark = (value is None, value or "")
        if mark != current:
            _close(out, start)
            out.append(Section(key, value, 0))
            start, current = len(out) - 1, mark
        out.append(h.host)
    _close(out, start)
    return out


def _close(out: list[Line], start: int) -> None:
    """Give the section at ``start`` the count of the hosts after it."""
    if out and isinstance(out[start], Section):
        s = out[start]
        assert isinstance(s, Section)
        out[start] = Section(s.key, s.value, len(out) - start - 1)
