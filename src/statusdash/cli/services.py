"""``statusdash services ls``: the service health map from ``GET /api/services``."""

from __future__ import annotations

from datetime import UTC, datetime

import typer

from statusdash import units
from statusdash.cli.boundary import group
from statusdash.cli.common import Connection, JsonOpt, cell, print_json, reader
from statusdash.durations import humanize

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
    if as_json:
        print_json([s.model_dump(mode="json", by_alias=True) for s in rows])
        return
    if not rows:
        typer.echo("no service has reported yet")
        return
    from rich.console import Console
    from rich.table import Table

    now = datetime.now(UTC)
    t = Table(box=None, header_style="bold")
    for col in ("", "HOST", "SERVICE", "STATUS", "CHECKED", "ERROR"):
        t.add_column(col, overflow="fold")  # a long error folds rather than loses its end
    for s in rows:
        age = humanize((now - s.last_check).total_seconds()) + " ago" if s.last_check else "-"
        t.add_row(
            MARK[s.status.value],
            cell(s.host or "-"),
            cell(s.name),
            s.status.value,
            age,
            cell(s.error or ""),
        )
    Console(width=200).print(t)
    typer.echo(units.count(len(rows), "service"))
