"""``statusdash maintenance add|ls|rm``: windows during which the alerts of hosts with a tag
are kept but not sent."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import typer

from statusdash import durations
from statusdash.cli.boundary import fail, group
from statusdash.cli.common import Connection, JsonOpt, echo, print_json, print_table, reader

app = group(help="Maintenance windows: hold back the notifications of hosts with a tag.")


def _start(text: str | None) -> str | None:
    if text is None:
        return None
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        fail(
            f"--start: {text!r} is not a time; write e.g. 2026-12-24T22:00 (UTC) or with +01:00", 2
        )
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).isoformat()


@app.command("add")
@reader
def add(
    conn: Connection,
    tag: Annotated[str, typer.Option("--tag", help="KEY=VALUE: hosts with this tag")],
    for_: Annotated[str, typer.Option("--for", help="how long: 30m, 2h, 1d")] = "2h",
    start: Annotated[
        str | None, typer.Option("--start", help="ISO time it begins (default now; UTC if bare)")
    ] = None,
    reason: Annotated[str, typer.Option("--reason", help="why, for the others")] = "",
    as_json: JsonOpt = False,
) -> None:
    """Open (or plan) a maintenance window: alerts are kept, notices wait until it ends."""
    key, sep, value = tag.partition("=")
    if not sep or not key or not value:
        fail(f"--tag: {tag!r} is not KEY=VALUE, e.g. role=db", 2)
    try:
        seconds = durations.parse(for_)
    except ValueError as exc:
        fail(f"--for: {exc}", 2)
    body: dict[str, Any] = {"tag": tag, "for": seconds, "reason": reason}
    if start is not None:
        body["start"] = _start(start)
    with conn.client() as client:
        made = client.request("POST", "/api/maintenance", json=body)
    if as_json:
        print_json(made)
        return
    echo(f"maintenance {made['id']}: {made['tag']} from {made['starts_at']} to {made['ends_at']}")


@app.command("ls")
@reader
def ls(conn: Connection, as_json: JsonOpt = False) -> None:
    """Maintenance windows open or planned, soonest first."""
    with conn.client() as client:
        rows = client.request("GET", "/api/maintenance")
    if as_json:
        print_json(rows)
        return
    if not rows:
        typer.echo("no maintenance windows open or planned")
        return
    columns = ("ID", "TAG", "FROM", "TO", "ACTIVE", "BY", "REASON")
    print_table(
        columns,
        (
            (
                str(w["id"]),
                w["tag"],
                w["starts_at"],
                w["ends_at"],
                "yes" if w["active"] else "planned",
                w["created_by"],
                w["reason"],
            )
            for w in rows
        ),
        width=200,
    )


@app.command("rm")
@reader
def rm(
    conn: Connection,
    window_id: Annotated[int, typer.Argument(help="window id (from maintenance ls)", min=1)],
    as_json: JsonOpt = False,
) -> None:
    """End or cancel a window now; held-back notices of alerts still firing are sent."""
    with conn.client() as client:
        w = client.request("DELETE", f"/api/maintenance/{window_id}")
    if as_json:
        print_json(w)
        return
    echo(f"ended maintenance {window_id} ({w['tag']})")
