"""Issue 11, item 19: one formatter (``statusdash.units``) for the CLI and the TUI, plurals,
certificate serials with their leading zeros, and boolean options shown as flags."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from typer.main import get_command
from typer.testing import CliRunner

from statusdash import units
from statusdash.cli.main import app
from statusdash.pki.check import load_cert
from statusdash.tui import fmt

runner = CliRunner()
FACTOR = {p: units.BASE**i for i, p in enumerate(units.PREFIXES)}
SIZE = re.compile(r"^(?P<num>[0-9.]+(?:e\+[0-9]+)?)(?P<prefix>[KMGTPEZY]?)$")


def _parse(text: str) -> float:
    """``units.size``'s text back to bytes."""
    m = SIZE.match(text)
    assert m is not None, text
    return float(m["num"]) * FACTOR[m["prefix"]]


@given(st.integers(min_value=1, max_value=2**80))
def test_size_round_trips_within_its_precision(n: int) -> None:
    """Two significant digits at least: back within 5.2 % (one decimal of 0.98 at worst)."""
    text = units.size(n)
    assert len(text) <= 4 or "e+" in text
    assert math.isclose(_parse(text), n, rel_tol=0.052)


@given(st.integers(min_value=0, max_value=2**70), st.integers(min_value=0, max_value=2**70))
def test_size_keeps_the_order(a: int, b: int) -> None:
    lo, hi = sorted((a, b))
    assert _parse(units.size(lo)) <= _parse(units.size(hi))


@given(st.integers(min_value=0, max_value=2**64))
def test_a_rate_is_a_size_per_second(n: int) -> None:
    assert units.rate(n) == units.size(n) + "/s"
    assert units.value(n, "B/s") == units.rate(n)


@given(st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True)))
def test_the_tui_formats_through_units(v: float | None) -> None:
    """tui/fmt keeps no formatter of its own for loads, sizes or rates."""
    assert fmt.load(v) == units.load(v) == units.value(v, "load")
    assert fmt.rate_pair(v, v) == f"{units.size(v):>4}/{units.size(v):<4}"


@pytest.mark.parametrize(
    ("v", "unit", "text"),
    [
        (97.34, "%", "97.3%"),
        (1.5 * 2**20, "B/s", "1.5M/s"),
        (10 * 2**30, "B", "10GB"),
        (0.4234, "load", "0.42"),
        (123.4, "load", "123"),
        (1234, "count", "1,234"),
        (3.14159, "°C", "3.14 °C"),
        (None, "%", "-"),
    ],
)
def test_a_value_is_shown_in_its_unit(v: float | None, unit: str, text: str) -> None:
    assert units.value(v, unit) == text


def test_counts_take_their_plural() -> None:
    assert [units.count(n, "host") for n in (0, 1, 2)] == ["0 hosts", "1 host", "2 hosts"]
    assert units.count(12_345, "row") == "12,345 rows"


@given(st.integers(min_value=1, max_value=2**159))
def test_a_serial_is_fixed_width_hex(n: int) -> None:
    text = units.serial(n)
    assert len(text) == units.SERIAL_DIGITS and int(text, 16) == n
    assert text == text.lower()


def test_a_small_serial_keeps_its_leading_zeros() -> None:
    assert units.serial(0xAB) == "0" * 38 + "ab"


def test_the_certs_commands_print_the_padded_serial(tmp_path: Path) -> None:
    vault = str(tmp_path / "vault")
    assert runner.invoke(app, ["certs", "init", "--certs-dir", vault]).exit_code == 0
    r = runner.invoke(app, ["certs", "issue", "web-1", "--certs-dir", vault])
    assert r.exit_code == 0, r.output
    serial = units.serial(load_cert(tmp_path / "vault" / "clients" / "web-1.crt").serial_number)
    assert f"serial {serial}," in r.stdout
    r = runner.invoke(app, ["certs", "revoke", "--serial", serial, "--certs-dir", vault])
    assert r.exit_code == 0, r.output
    assert f"web-1 (serial {serial}) revoked" in r.stdout


def test_keys_revoke_counts_right(data_env: Path) -> None:
    for _ in range(2):
        assert runner.invoke(app, ["keys", "issue", "web-1"]).exit_code == 0
    assert runner.invoke(app, ["keys", "issue", "db-1"]).exit_code == 0
    r = runner.invoke(app, ["keys", "revoke", "web-1"])
    assert r.exit_code == 0 and r.stdout.strip() == "revoked 2 keys of web-1"
    r = runner.invoke(app, ["keys", "revoke", "db-1"])
    assert r.exit_code == 0 and r.stdout.strip() == "revoked 1 key of db-1"


def _commands(cmd: Any, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    found = [(path, cmd)]
    for name, sub in sorted(getattr(cmd, "commands", {}).items()):
        found += _commands(sub, (*path, name))
    return found


COMMANDS = _commands(get_command(app))


@pytest.mark.parametrize(
    ("path", "cmd"), COMMANDS, ids=[" ".join(p) or "statusdash" for p, _ in COMMANDS]
)
def test_boolean_options_are_flags_in_help(path: tuple[str, ...], cmd: Any) -> None:
    """No ``--json/--no-json``: each boolean is one flag, shown as the thing it turns on."""
    for param in getattr(cmd, "params", []):
        if getattr(param, "is_flag", False):
            assert not param.secondary_opts, (path, param.opts, param.secondary_opts)
    r = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "200"})
    assert r.exit_code == 0, r.output
    assert not re.search(r"--[a-z-]+/--no-", r.stdout), r.stdout
