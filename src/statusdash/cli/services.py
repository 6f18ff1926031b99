"""``statusdash services ls``: the service health map from ``GET /api/services``."""

from __future__ import annotations

import typer

from statusdash import units
from statusdash.cli.boundary import group
from statusdash.cli.common import (
    Connection,
    JsonOpt,
    age,
    print_listing,
    print_table,
    reader,
)

app = group(help="Service health, from the agents' checks and events.")
MARK = {"healthy": "●", "unhealthy": "✗", "unknown": "?"}


@app.callback()
def _group() -> None:
    """Service health, from the agents' checks and events."""


@app.command("ls")
@reader
def ls(conn: Connection, as_json: JsonOpt = False) -> None:
    """Every service with its status (healthy, unhealthy, unknown) and last check."""
    with conn.client() as client:
        rows = client.services()

    def table() -> None:
        columns = ("", "HOST", "SERVICE", "STATUS", "CHECKED", "ERROR")
        print_table(
            columns,
            (
                (
                    MARK[s.status.value],
                    s.host or "-",
                    s.name,
                    s.status.value,
                    f"{age(s.last_check)} ago" if s.last_check else "-",
                    s.error or "",
                )
                for s in rows
            ),
            width=200,
        )
        typer.echo(units.count(len(rows), "service"))

    print_listing(rows, as_json, "no service has reported yet", table, by_alias=True)
