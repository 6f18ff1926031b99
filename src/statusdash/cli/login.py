"""``statusdash login``: the admin password for a reader token, stored with mode 0600.

The TUI renews that token before it ends and stores each renewal in the same file
(``client.TokenStore``); a TUI whose login expired picks up the next ``statusdash login``.
"""

from __future__ import annotations

import os
from typing import Annotated

import typer

from statusdash.cli.boundary import fail
from statusdash.cli.common import CaOpt, ServerOpt


def login(
    server: ServerOpt = None,
    ca: CaOpt = None,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="read the password from standard input")
    ] = False,
) -> None:
    """Log in as the reader (admin) and keep the token for later commands."""
    import sys

    from statusdash.cli.common import resolve_ca, settings
    from statusdash.client import ApiClient, TokenStore

    s = settings()
    url = (server or s.server_url()).rstrip("/")
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    elif os.environ.get("STATUS_ADMIN_PASSWORD"):
        password = os.environ["STATUS_ADMIN_PASSWORD"]
    elif sys.stdin.isatty():
        password = typer.prompt("admin password", hide_input=True)
    elif s.status_admin_password is not None:
        password = s.status_admin_password.get_secret_value()
    else:
        fail("no password: use --password-stdin or run from a terminal", 2)
    with ApiClient(url, ca=resolve_ca(s, ca)) as client:
        tok = client.login(password)
    path = TokenStore.default().save(url, tok.access_token, tok.expires_in)
    typer.echo(f"logged in to {url}; token kept in {path} for {tok.expires_in // 60} minutes")
