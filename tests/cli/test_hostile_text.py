"""The reader CLI shows hostile agent text as visible escapes and literal markup (item 11)."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from statusdash.cli.main import app
from tests.conftest import Live
from tests.hostile import HOST, HOSTILE, MARKUP, SHOWN_ESCAPES, seed_hostile, unsafe

runner = CliRunner()


@pytest.fixture
def hostile(live_server: Live, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Live:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("STATUSDASH_SERVER", live_server.url)
    monkeypatch.setenv("STATUSDASH_TOKEN", live_server.token())
    seed_hostile(live_server)
    return live_server


def _run(*args: str) -> str:
    r = runner.invoke(app, list(args))
    assert r.exit_code == 0, r.output
    assert r.exception is None
    return r.stdout


def _flat(text: str) -> str:
    """The output without whitespace and, for a table, column by column, so folded cells read
    in one piece (each column's slice of every line, joined)."""
    lines = text.splitlines()
    names = lines[0].split() if lines and lines[0].lstrip().startswith("HOST") else []
    if not names:
        return "".join(text.split())
    starts = [0, *(lines[0].index(n) for n in names), 10**6]
    return "".join(
        "".join(line[a:b].strip() for line in lines[1:]) for a, b in itertools.pairwise(starts)
    )


def _shown(*prefixes: str) -> tuple[str, ...]:
    return tuple(p + SHOWN_ESCAPES + MARKUP for p in prefixes)


# Each shown escape and each markup tag, as it came (a table's cells fold, its columns joined
# back may run one cell into the next); whole fields in the lines of ``hosts show``.
PIECES: tuple[str, ...] = (r"\x1b]0;pwned\x07", r"\x1b]52;c;aGk=\x07", r"\x1b[2J", r"\x9b31m")
PIECES += (r"\x00", r"\u202e", "[/x]", "[bold]B[/bold]", "[link=https://e.example]L[/link]")


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("hosts", "show", HOST), _shown("os", "k", "/mnt", "refused", "msg", "svc", "boom")),
        (("services", "ls"), PIECES),
        (("alerts", "ls"), PIECES),
        (("hosts", "ls"), ()),
    ],
)
def test_tables_show_escapes_and_literal_markup(
    hostile: Live, args: tuple[str, ...], expected: tuple[str, ...]
) -> None:
    out = _run(*args)
    assert unsafe(out) == [], out
    flat = _flat(out)
    for text in expected:  # shown, and the markup printed as it came
        assert text in flat, (text, out)


@pytest.mark.parametrize(
    "args",
    [("hosts", "show", HOST, "--json"), ("services", "ls", "--json"), ("alerts", "ls", "--json")],
)
def test_json_keeps_the_data_intact(hostile: Live, args: tuple[str, ...]) -> None:
    out = _run(*args)
    assert unsafe(out) == []  # json.dumps escapes controls; the data is intact once parsed
    assert any(HOSTILE in s for s in _strings(json.loads(out)))


def _strings(data: Any) -> Iterator[str]:
    """Every string in a parsed JSON document."""
    if isinstance(data, str):
        yield data
    elif isinstance(data, dict):
        for v in data.values():
            yield from _strings(v)
    elif isinstance(data, list):
        for v in data:
            yield from _strings(v)
