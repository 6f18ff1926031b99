"""``statusdash server run``: the FastAPI server under uvicorn, HTTPS with client certs."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer

from statusdash.cli.boundary import group
from statusdash.cli.common import CertsDirOpt, DataDirOpt, settings

app = group(help="Run the statusdash server.")


class LogLevel(StrEnum):
    critical = "critical"
    error = "error"
    warning = "warning"
    info = "info"
    debug = "debug"


@app.command("run")
def run(
    bind: Annotated[str | None, typer.Option("--bind", help="address (env STATUS_BIND)")] = None,
    port: Annotated[int | None, typer.Option("--port", help="port (env STATUS_PORT)")] = None,
    data_dir: DataDirOpt = None,
    certs_dir: CertsDirOpt = None,
    insecure_http: Annotated[
        bool,
        typer.Option("--insecure-http", help="plain HTTP, no client certificates (testing only)"),
    ] = False,
    log_level: Annotated[
        LogLevel, typer.Option("--log-level", help="how much to log")
    ] = LogLevel.info,
) -> None:
    """Serve ingest, the read API and the stream.

    A missing secret or a bad configuration (MissingSecretError, ServerConfigError) is a
    StatusdashError: the boundary prints it on one line and exits 1.
    """
    from statusdash.server.runner import serve

    s = settings(
        status_bind=bind,
        status_port=port,
        status_data_dir=data_dir,
        vault_path=certs_dir,
        mtls_enabled=False if insecure_http else None,
    )
    serve(s, log_level=log_level.value)
