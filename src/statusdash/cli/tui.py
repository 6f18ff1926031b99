"""``statusdash tui``: the interactive dashboard (Textual), over the read API and its stream."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from statusdash.cli import common

if TYPE_CHECKING:
    from statusdash.tui.source import ApiSource

app = typer.Typer(
    help="The interactive dashboard: the whole fleet at a glance, live.",
    invoke_without_command=True,
    no_args_is_help=False,
    add_completion=False,
)


def api_source(
    server: str | None, ca: Path | None, cert: Path | None, key: Path | None, timeout: float = 5.0
) -> ApiSource:
    """The TUI's data source with the reader's URL, CA and credentials, or a one-line failure.

    Mirrors ``common.reader_client`` (which returns a single client): the TUI needs the pieces
    to open a pool of clients and the WebSocket stream with the same trust and credentials.
    """
    from statusdash.client import Credentials
    from statusdash.tls import httpx_verify
    from statusdash.tui.source import ApiSource

    s = common.settings()
    url = (server or s.server_url()).rstrip("/")
    if cert is not None and key is None:
        common.fail("--cert needs --key", 2)
    token = (
        s.statusdash_token.get_secret_value() if s.statusdash_token else common.stored_token(url)
    )
    if cert is None and not token:
        common.fail(
            f"not logged in to {url}: run `statusdash login --server {url}`, set"
            " STATUSDASH_TOKEN, or pass a viewer certificate with --cert/--key",
        )
    ca_path = common.resolve_ca(s, ca)
    creds = Credentials(token=None if cert else token, cert=cert, key=key)
    try:
        httpx_verify(url, ca_path, cert, key)  # load the TLS files now: fail here, not later
    except (OSError, ValueError) as exc:
        common.fail(f"cannot load TLS files: {exc}")
    return ApiSource(url, ca=ca_path, credentials=creds, timeout=timeout)


@app.callback(invoke_without_command=True)
def tui(
    ctx: typer.Context,
    server: common.ServerOpt = None,
    ca: common.CaOpt = None,
    cert: common.CertOpt = None,
    key: common.KeyOpt = None,
    interval: Annotated[
        float, typer.Option("--interval", min=0.2, max=60.0, help="seconds between polls")
    ] = 1.0,
    no_stream: Annotated[
        bool, typer.Option("--no-stream", help="poll only; do not open the live stream")
    ] = False,
) -> None:
    """Run the dashboard. Keys: ? lists them all; q quits."""
    if ctx.invoked_subcommand is not None:
        return
    source = api_source(server, ca, cert, key)
    source.prefetch()  # the first answer travels while Textual loads
    s = common.settings()

    from statusdash.tui.app import StatusdashApp
    from statusdash.tui.fmt import Thresholds

    thresholds = Thresholds(cpu=s.cpu_threshold, memory=s.memory_threshold, disk=s.disk_threshold)
    try:
        StatusdashApp(
            source, poll_interval=interval, thresholds=thresholds, stream=not no_stream
        ).run()
    finally:
        source.close()
