"""Sizes, rates, percentages and counts as people read them, in one place for the CLI and the TUI.

Binary units, as ``df -h`` does: ``88K`` is 88 KiB. Every formatter takes any value, however
large, negative or missing (``None``, NaN, infinity) and never raises: a report with a strange
number must not take a table down. Pure standard library, so ``hosts ls --help`` stays fast.
"""

from __future__ import annotations

import math

BASE = 1024.0
PREFIXES = ("", "K", "M", "G", "T", "P", "E", "Z", "Y")
UNKNOWN = "-"


def _finite(value: float | None) -> float | None:
    if value is None:
        return None
    try:
        v = float(value)
    except (OverflowError, TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def size(value: float | None, suffix: str = "") -> str:
    """A byte count with a unit that scales: ``0``, ``512``, ``88K``, ``1.2M``, ``3.4G``.

    Below 1 (and negative) is ``0``; past the last prefix the mantissa is shown in exponent form.
    """
    v = _finite(value)
    if v is None:
        return UNKNOWN
    if v < 1:
        return "0" + suffix
    for prefix in PREFIXES:
        if v < 999.5:
            if prefix == "" or v >= 9.95:
                return f"{v:.0f}{prefix}{suffix}"
            return f"{v:.1f}{prefix}{suffix}"
        if prefix != PREFIXES[-1]:
            v /= BASE
    return f"{v:.3g}{PREFIXES[-1]}{suffix}"


def rate(value: float | None) -> str:
    """Bytes per second: ``size`` with ``/s`` (``1.2M/s``)."""
    return size(value, "/s")


def percent(value: float | None) -> str:
    """A percentage without decimals (``23%``), or ``-`` when unknown."""
    v = _finite(value)
    return UNKNOWN if v is None else f"{round(v):d}%"


def count(n: int, noun: str, plural: str | None = None) -> str:
    """``1 host``, ``2 hosts``, ``0 hosts``, ``1,200 rows`` (``plural`` for nouns that do not
    take an ``s``)."""
    return f"{n:,} {noun if n == 1 else plural or noun + 's'}"


def load(value: float | None) -> str:
    """A load average with two decimals, fewer when large (``0.42``, ``12.3``, ``140``)."""
    v = _finite(value)
    if v is None:
        return UNKNOWN
    if abs(v) >= 100:
        return f"{v:.0f}"
    if abs(v) >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


SERIAL_DIGITS = 40  # hex digits of the largest X.509 serial (20 octets, RFC 5280)


def serial(number: int) -> str:
    """A certificate serial as fixed-width lower-case hex, leading zeros kept."""
    return f"{number:0{SERIAL_DIGITS}x}"


def value(v: float | None, unit: str) -> str:
    """A value of a history series in its catalogue unit: ``97.3%``, ``1.2M/s``, ``0.42``.

    ``%`` keeps one decimal (a chart's min and max are often close), ``B/s`` is ``rate``, ``B``
    is ``size`` with ``B``, ``load`` is ``load``, ``count`` has no decimals; any other unit follows
    the number.
    """
    x = _finite(v)
    if x is None:
        return UNKNOWN
    if unit == "%":
        return f"{x:.1f}%"
    if unit == "B/s":
        return rate(x)
    if unit == "B":
        return size(x, "B")
    if unit == "load":
        return load(x)
    if unit == "count":
        return f"{x:,.0f}"
    return f"{x:.3g} {unit}".rstrip()
