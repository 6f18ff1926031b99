"""The server's domain errors beyond the root three (``statusdash.errors``), HTTP-free.

Services raise these; ``server/errors.py`` maps each to its status and error code at the route
edge, so a service never decides how a failure is answered.
"""

from __future__ import annotations

from statusdash.errors import Invalid, StatusdashError


class MalformedBody(Invalid):
    """A request body that is not JSON at all (400 ``malformed_json``)."""


class InvalidFields(Invalid):
    """Input that breaks the schema, with each offending field and its problem."""

    def __init__(self, message: str, fields: list[dict[str, str]]) -> None:
        super().__init__(message)
        self.fields = fields


class HostMismatch(StatusdashError):
    """A caller speaking for a host other than its own identity (403 ``host_mismatch``)."""


class LimitExceeded(StatusdashError):
    """A per-host cap the request would pass (429 ``limit_exceeded``, naming ``limit``)."""

    def __init__(self, message: str, limit: str, maximum: int) -> None:
        super().__init__(message)
        self.limit = limit
        self.maximum = maximum
