"""The root of statusdash's domain errors.

Every expected failure (a bad file, a refused certificate, an unreachable server, a missing
host) is a ``StatusdashError`` or a subclass of it. Domain code raises these and never an HTTP
error; the server's route edge maps them to a 4xx (``server/errors.py``) and the CLI has one
boundary that prints ``str(error)`` on one line and exits 1 (``cli/main.py``). Anything else
that escapes is a bug and is shown as one.
"""

from __future__ import annotations


class StatusdashError(Exception):
    """An expected failure, with a message for an operator: what went wrong and how to fix it."""


class NotFound(StatusdashError):
    """A named object (host, alert, key, certificate, job) does not exist."""


class Invalid(StatusdashError, ValueError):
    """Input that does not fit the rules (a setting, a file's content, an argument)."""


class Conflict(StatusdashError):
    """The operation contradicts the current state (it exists already, it is in use)."""
