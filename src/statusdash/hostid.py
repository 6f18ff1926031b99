"""The host-id rule, in one place: what a host id is, and how a machine name becomes one.

A host id is 1-63 characters of lowercase letters, digits, ``.``, ``_`` and ``-``, starting with
a letter or a digit. It is the certificate CN, the key of every stored row and a path component
of the agent's certificate files, so every part of statusdash checks it with ``is_valid`` (a full
match: a trailing newline is not a host id) and derives a default with ``from_hostname``.
Pure standard library, so the agent can import it.
"""

from __future__ import annotations

import re
import socket

MAX_LEN = 63
PATTERN = r"^[a-z0-9][a-z0-9._-]{0,62}$"
_RE = re.compile(r"[a-z0-9][a-z0-9._-]{0,62}")
_INVALID_RUN = re.compile(r"[^a-z0-9._-]+")
FALLBACK = "localhost"


def is_valid(name: str) -> bool:
    """True if ``name`` is a host id as a whole (no trailing newline, no surrounding space)."""
    return _RE.fullmatch(name) is not None


def from_hostname(hostname: str | None = None) -> str:
    """A machine name (this machine's by default) made a valid host id.

    Lower-cased; every run of characters a host id cannot hold becomes one ``-``; leading
    ``.``, ``_`` and ``-`` are dropped, it is cut to 63 characters and trailing ``-``, ``.`` and
    ``_`` are dropped. "My Host!!" becomes ``my-host``. A name with nothing left is ``localhost``.
    """
    name = (hostname if hostname is not None else socket.gethostname()).strip().lower()
    name = _INVALID_RUN.sub("-", name).lstrip("._-")[:MAX_LEN].rstrip("._-")
    return name if is_valid(name) else FALLBACK


def check(name: str) -> str:
    """``name`` if it is a host id; otherwise ``ValueError`` saying what a host id is."""
    if not is_valid(name):
        raise ValueError(
            f"{name!r} is not a valid host id: 1-63 lowercase letters, digits, '.', '_' or '-',"
            " starting with a letter or digit"
        )
    return name
