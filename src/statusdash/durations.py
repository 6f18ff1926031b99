"""Durations, in one place: ``90s``, ``500ms``, ``5m``, ``2h``, ``30d``, ``1w`` to seconds and back.

Used by the rules file, ``services.yaml``, the history API's ``since``/``until``, ``alerts
silence --for`` and the TUI. Pure standard library, so the agent can import it.
"""

from __future__ import annotations

import math
import re

UNITS: dict[str, float] = {
    "ms": 0.001,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
    "d": 86400.0,
    "w": 7 * 86400.0,
}
# Past this no stored time can lie (a datetime's range is ~10,000 years): refuse, do not overflow.
MAX_SECONDS = 100 * 365 * 86400.0
_TEXT = re.compile(r"\s*(\d{1,15}(?:\.\d{1,9})?)\s*(ms|s|m|h|d|w)?\s*")


def parse(value: str | float | int, *, bare_unit: str | None = "s") -> float:
    """Seconds from a number or a text like ``90s``; ``ValueError`` saying why if it is not one.

    ``bare_unit`` is the unit of a number without one (``None``: a unit is required).
    """
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a duration")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        m = _TEXT.fullmatch(value)
        unit = m.group(2) or bare_unit if m else None
        if m is None or unit is None:
            example = "90s, 5m, 2h or 30d"
            raise ValueError(f"{value!r} is not a duration like {example}")
        seconds = float(m.group(1)) * UNITS[unit]
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"{value!r} is not a duration: it must be a finite number >= 0")
    if seconds > MAX_SECONDS:
        raise ValueError(f"{value!r} is too long a duration (at most 100 years)")
    return seconds


def is_duration(text: str) -> bool:
    """True if ``text`` is a duration with an explicit unit (``15m``), not a time or a number."""
    m = _TEXT.fullmatch(text)
    return m is not None and m.group(2) is not None


def humanize(seconds: float | None, *, empty: str = "-") -> str:
    """A short human duration: ``45s``, ``12m``, ``3h``, ``41d`` (the largest unit that fits)."""
    try:
        s = float(seconds) if seconds is not None else math.nan
    except OverflowError:  # an int past float's range
        return empty
    if not math.isfinite(s):
        return empty
    s = max(0.0, s)
    if s < 60:
        return f"{int(s)}s"
    if s < 3600:
        return f"{int(s // 60)}m"
    if s < 86400:
        return f"{int(s // 3600)}h"
    return f"{int(s // 86400)}d"
