"""``statusdash server run``: the FastAPI server under uvicorn, HTTPS with client certs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from statusdash.cli.common import fail

app = typer.Typer(help="Run the statusdash server.", no_args_is_help=True)


@app.command("run")
def run(
    bind: Annotated[str | None, typer.Option("--bind", help="address [env: STATUS_BIND]")] = None,
    port: Annotated[int | None, typer.Option("--port", help="port [env: STATUS_PORT]")] = None,
    data_dir: Annotated[
        Path | None, typer.Option("--data-dir", help="database dir [env: STATUS_DATA_DIR]")
    ] = None,
    certs_dir: Annotated[
        Path | None, typer.Option("--certs-dir", help="certificate vault [env: VAULT_PATH]")
    ] = None,
    insecure_http: Annotated[
        bool,
        typer.Option("--insecure-http", help="plain HTTP, no client certificates (testing only)"),
    ] = False,
    log_level: Annotated[str, typer.Option("--log-level")] = "info",
) -> None:
    """Serve ingest, the read API and the stream."""
    from pydantic import ValidationError

    from statusdash.server.runner import ServerConfigError, serve
    from statusdash.settings import MissingSecretError, load_settings

    try:
        settings = load_settings(
            status_bind=bind,
            status_port=port,
            status_data_dir=data_dir,
            vault_path=certs_dir,
            mtls_enabled=False if insecure_http else None,
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        fail(f"bad setting {'.'.join(map(str, first['loc'])).upper()}: {first['msg']}", 2)
    try:
        serve(settings, log_level=log_level)
    except (MissingSecretError, ServerConfigError) as exc:
        fail(str(exc))
