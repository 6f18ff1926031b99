"""``statusdash tui``: the interactive dashboard (Textual), over the read API and its stream."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from statusdash.cli import common
from statusdash.cli.boundary import fail, group
from statusdash.cli.common import Connection, reader

if TYPE_CHECKING:
    from statusdash.tui.source import ApiSource

NO_TTY = "tui needs a terminal (stdout is not a TTY)"

app = group(
    help="The interactive dashboard: the whole fleet at a glance, live.",
    invoke_without_command=True,
    no_args_is_help=False,
)


def api_source(
    server: str | None, ca: Path | None, cert: Path | None, key: Path | None, timeout: float = 5.0
) -> ApiSource:
    """The TUI's data source with the reader's URL, CA and credentials, or a one-line failure.

    The TLS files are loaded here once, so a bad path fails before the screen opens rather
    than in the first worker.
    """
    from statusdash.client import TokenStore, tls_verify
    from statusdash.tui.source import ApiSource

    url, ca_path, creds = Connection(server, ca, cert, key).resolve()
    tls_verify(url, ca_path, creds.cert, creds.key)
    return ApiSource(
        url, ca=ca_path, credentials=creds, timeout=timeout, store=TokenStore.default()
    )


@app.callback(invoke_without_command=True)
@reader
def tui(
    conn: Connection,
    ctx: typer.Context,
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
    source = api_source(conn.server, conn.ca, conn.cert, conn.key)
    if not sys.stdout.isatty():
        # Checked after the connection options, so a wrong option is still named first; the
        # screen would otherwise write its escape codes into a file or a pipe.
        source.close()
        fail(NO_TTY)
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
