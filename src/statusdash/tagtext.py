"""The host-tag rule, in one place: what a tag key and value are, and ``KEY=VALUE`` parsing.

A key is 1-63 characters of lowercase letters, digits, ``_``, ``.`` and ``-``, starting with a
letter; a value is at most 128 characters (an agent's at least one: an empty value only means
something on the server, where it blocks the key). At most 32 tags per source. Pure standard
library, so the agent, the wire contract, the CLI and the server all use it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from statusdash.errors import Invalid

KEY_LEN = 63
VALUE_LEN = 128
MAX_TAGS = 32
KEY_PATTERN = r"^[a-z][a-z0-9_.-]{0,62}\Z"  # ``\Z``: a trailing newline is not a key
_KEY = re.compile(KEY_PATTERN)


class TagError(Invalid):
    """A tag that breaks the rule; the message says which and why."""


def check_key(key: str) -> str:
    """``key`` if it is a tag key, else ``TagError`` saying what a key is."""
    if not _KEY.match(key):
        raise TagError(
            f"tag key {key!r}: 1-63 of a-z 0-9 _ . - starting with a letter (e.g. role, dc)"
        )
    return key


def check_value(key: str, value: str, *, allow_empty: bool = False) -> str:
    """``value`` if it is a tag value (empty only where ``allow_empty``), else ``TagError``."""
    if len(value) > VALUE_LEN:
        raise TagError(f"tag {key}: the value is {len(value)} characters; at most {VALUE_LEN}")
    if not value and not allow_empty:
        raise TagError(f"tag {key}: the value is empty")
    if any(c in value for c in "\n\r\t\0"):
        raise TagError(f"tag {key}: the value holds a control character")
    return value


def parse_pair(pair: str, *, allow_empty: bool = False) -> tuple[str, str]:
    """``"role=db"`` as ``("role", "db")``; ``TagError`` for anything else."""
    key, sep, value = pair.partition("=")
    if not sep:
        raise TagError(f"tag {pair!r} must be KEY=VALUE (e.g. role=db)")
    key, value = key.strip(), value.strip()
    return check_key(key), check_value(key, value, allow_empty=allow_empty)


def parse_pairs(pairs: Iterable[str], *, allow_empty: bool = False) -> dict[str, str]:
    """Several ``KEY=VALUE`` as a dict (a later key wins); at most ``MAX_TAGS`` keys."""
    out: dict[str, str] = {}
    for pair in pairs:
        key, value = parse_pair(pair, allow_empty=allow_empty)
        out[key] = value
    if len(out) > MAX_TAGS:
        raise TagError(f"{len(out)} tags; at most {MAX_TAGS}")
    return out


def check_tags(tags: Mapping[str, str], *, allow_empty: bool = False) -> dict[str, str]:
    """A mapping of tags checked key by key, as a new dict; ``TagError`` names the first bad one."""
    if len(tags) > MAX_TAGS:
        raise TagError(f"{len(tags)} tags; at most {MAX_TAGS}")
    return {
        check_key(k): check_value(k, v, allow_empty=allow_empty) for k, v in sorted(tags.items())
    }


def matches(tags: Mapping[str, str], want: Mapping[str, str]) -> bool:
    """True if ``tags`` holds every key of ``want`` with its value (an empty ``want`` matches)."""
    return all(tags.get(k) == v for k, v in want.items())


def show(tags: Mapping[str, str]) -> str:
    """Tags as ``k=v,k2=v2`` (sorted by key), as the CLI and the TUI print them."""
    return ",".join(f"{k}={v}" for k, v in sorted(tags.items()))
