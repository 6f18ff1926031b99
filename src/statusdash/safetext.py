"""Text from agents and services is data: made harmless before any terminal sees it.

A process name, a service's error or a host's OS string can hold escape sequences (a window
title, a clipboard write, a screen clear) or bidi overrides that reorder what an operator reads.
``printable`` shows each such character as a visible escape (``\\x1b``, ``\\u202e``) instead, so
the text is neither executed nor silently lost; ``one_line`` does the same to line breaks and
tabs, for table cells. Rich markup is a separate matter: render data with ``rich.text.Text(s)``,
never inside a markup string. Pure standard library, so every layer can import it.
"""

from __future__ import annotations

import re

# C0 controls but tab and newline, DEL, C1 controls; bidi embeddings, overrides and isolates;
# the line and paragraph separators (they break a line where a terminal does not expect it).
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_UNSAFE_LINE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def _escape(m: re.Match[str]) -> str:
    code = ord(m.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str) -> str:
    """``text`` with every control and bidi character shown as an escape; tab and newline kept."""
    return _UNSAFE.sub(_escape, text)


def one_line(text: str) -> str:
    """``text`` for one line of a table: newline, carriage return and tab escaped as well."""
    return _UNSAFE_LINE.sub(_escape, text)


def is_clean(text: str) -> bool:
    """True if ``printable`` would leave ``text`` as it is."""
    return _UNSAFE.search(text) is None
