"""Escape and control sequences in data are shown, never executed."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from statusdash import safetext

HOSTILE = [
    "\x1b]0;owned\x07",  # OSC: window title
    "\x1b]52;c;ZWNobyBwd25lZA==\x07",  # OSC 52: clipboard write
    "\x1b[2J\x1b[H",  # CSI: clear screen, home
    "\x9b31m",  # C1 CSI
    "evil\u202etxt.exe",  # bidi override
    "nul\x00bell\x07del\x7f",
]


def test_hostile_sequences_lose_every_control_character() -> None:
    for text in HOSTILE:
        out = safetext.printable(text)
        assert "\x1b" not in out and "\x07" not in out and "\x9b" not in out
        assert "\u202e" not in out and "\x00" not in out and "\x7f" not in out
        assert safetext.is_clean(out)
    assert safetext.printable("\x1b[2J") == "\\x1b[2J"
    assert safetext.printable("a\u202eb") == "a\\u202eb"


def test_ordinary_text_is_kept_as_it_is() -> None:
    for text in ["postgres", "nginx: worker", "Débian 12 — ünïcode ✓", "a\tb\nc", "[/x] [link=y]"]:
        assert safetext.printable(text) == text
        assert safetext.is_clean(text)


def test_one_line_escapes_line_breaks() -> None:
    assert safetext.one_line("Traceback\n  File\r\tx") == "Traceback\\x0a  File\\x0d\\x09x"
    assert "\n" not in safetext.one_line("a\u2028b\nc")


@given(st.text())
def test_no_control_character_survives(text: str) -> None:
    out = safetext.one_line(text)
    assert not any(ord(ch) < 0x20 or 0x7F <= ord(ch) <= 0x9F for ch in out)
    assert safetext.is_clean(safetext.printable(text))
