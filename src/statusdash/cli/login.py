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
from statusdash.durations import humanize


def login(
    server: ServerOpt = None,
    ca: CaOpt = None,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="read the password from standard input")
    ] = False,
) -> None:
    """Log in as the reader (admin) and keep the token for later commands."""
    import sys

    from statusdash.cli.common import resolve_ca, server_url, settings
    from statusdash.client import ApiClient, TokenStore

    s = settings()
    store = TokenStore.default()
    url = server_url(s, server, store)
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
    previous = store.entry(url)
    trust = resolve_ca(s, ca, previous.ca if previous else None)
    with ApiClient(url, ca=trust) as client:
        tok = client.login(password)
    path = store.save(url, tok.access_token, tok.expires_in, trust, make_default=True)
    ttl = humanize(tok.expires_in)
    typer.echo(f"logged in to {url}; token kept in {path} for {ttl}")
    if trust is not None and url.startswith("https://"):
        typer.echo(f"  trusting {trust.absolute()} for {url} from any directory", err=True)
