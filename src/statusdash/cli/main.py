"""The ``statusdash`` command: one Typer app, one module per command group.

Expected failures end at the error boundary (``cli/boundary.py``), which every group, this root
included, runs behind: one line on stderr, exit 1 (2 for usage). The command modules import
nothing heavy at module level, so ``statusdash hosts ls --help`` loads no HTTP client, schema
or server code.
"""

from __future__ import annotations

import typer

from statusdash import __version__
from statusdash.cli import (
    agent,
    alerts,
    certs,
    db,
    enroll,
    history,
    hosts,
    keys,
    login,
    maintenance,
    server,
    services,
    tui,
)
from statusdash.cli.boundary import Boundary

app = typer.Typer(
    name="statusdash",
    cls=Boundary,
    rich_markup_mode=None,  # plain help, as every group (boundary.group): Rich costs start-up
    help="Terminal-first monitoring: server, agent, certificates and TUI in one command.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(server.app, name="server")
app.add_typer(agent.app, name="agent")
app.add_typer(hosts.app, name="hosts")
app.add_typer(keys.app, name="keys")
app.add_typer(certs.app, name="certs")
app.add_typer(alerts.app, name="alerts")
app.add_typer(services.app, name="services")
app.add_typer(db.app, name="db")
app.add_typer(tui.app, name="tui")
app.add_typer(enroll.app, name="enroll")
app.add_typer(maintenance.app, name="maintenance")
app.command("login")(login.login)
app.command("history")(history.history)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"statusdash {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="print the version"
    ),
) -> None:
    """statusdash."""


def main() -> None:
    app()
