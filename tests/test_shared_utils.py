"""The one home of each shared rule: host ids, durations, backoff, private atomic writes."""

from __future__ import annotations

import os
import random
import stat
from pathlib import Path

import pytest

from statusdash import backoff, durations, fsutil, hostid


@pytest.mark.parametrize(
    ("hostname", "expected"),
    [
        ("My Host!!", "my-host"),
        ("web-1.example.org", "web-1.example.org"),
        ("  DB_02  ", "db_02"),
        ("..._-x", "x"),
        ("!!!", "localhost"),
        ("", "localhost"),
        ("a" * 80, "a" * 63),
        ("a" * 62 + "!b", "a" * 62),
    ],
)
def test_from_hostname_always_gives_a_valid_id(hostname: str, expected: str) -> None:
    assert hostid.from_hostname(hostname) == expected
    assert hostid.is_valid(hostid.from_hostname(hostname))


@pytest.mark.parametrize("bad", ["web-1\n", " web-1", "Web-1", "-web", "", "a" * 64, "w/1"])
def test_is_valid_is_a_full_match(bad: str) -> None:
    assert not hostid.is_valid(bad)
    with pytest.raises(ValueError, match="not a valid host id"):
        hostid.check(bad)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90s", 90),
        ("500ms", 0.5),
        ("5m", 300),
        ("2h", 7200),
        ("30d", 2592000),
        ("1w", 604800),
        (" 1.5 h ", 5400),
        ("10", 10),
        (7, 7.0),
    ],
)
def test_durations_parse(text: str | int, seconds: float) -> None:
    assert durations.parse(text) == pytest.approx(seconds)


@pytest.mark.parametrize("bad", ["", "x", "-1s", "1y", "5m\n5m", "99999999999999999999d", "inf"])
def test_durations_refuse_with_a_reason(bad: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        durations.parse(bad)


def test_durations_bound_and_bare_unit() -> None:
    with pytest.raises(ValueError, match="too long"):
        durations.parse("999999999999d")
    with pytest.raises(ValueError):
        durations.parse("10", bare_unit=None)
    assert durations.is_duration("15m") and not durations.is_duration("15")
    assert [durations.humanize(s) for s in (5, 120, 7200, 86400 * 41)] == ["5s", "2m", "2h", "41d"]
    assert durations.humanize(None) == "-" and durations.humanize(float("inf")) == "-"


def test_backoff_doubles_to_its_cap_and_resets() -> None:
    b = backoff.Backoff(1.0, 8.0, jitter=False)
    assert [b.next_delay() for _ in range(6)] == [1, 2, 4, 8, 8, 8]
    b.reset()
    assert b.next_delay() == 1
    j = backoff.Backoff(2.0, 60.0, rng=random.Random(1))
    for n in range(1, 12):
        top = backoff.ceiling(n, 2.0, 60.0)
        assert top / 2 <= j.next_delay() <= top
    with pytest.raises(ValueError):
        backoff.Backoff(0, 1)


def test_atomic_write_is_private_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        target = tmp_path / "new" / "secret.json"
        fsutil.atomic_write(target, '{"a": 1}')
        fsutil.atomic_write(target, b"second")
    finally:
        os.umask(old)
    assert target.read_bytes() == b"second"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert stat.S_IMODE(target.parent.stat().st_mode) == 0o700
    assert [p.name for p in target.parent.iterdir()] == ["secret.json"]  # no temp file left
