"""Run the app under uvicorn: HTTPS with client certificates unless mTLS is switched off."""

from __future__ import annotations

import logging
from typing import Any

import uvicorn

from statusdash.errors import Invalid, StatusdashError
from statusdash.server.app import create_app
from statusdash.settings import Settings


class ServerConfigError(StatusdashError):
    """The server cannot start as configured (missing certificates and the like)."""


def uvicorn_config(settings: Settings, log_level: str = "info", **extra: Any) -> uvicorn.Config:
    """The uvicorn config for an app built from ``settings`` (TLS wiring included)."""
    try:
        app = create_app(settings)
    except Invalid as exc:  # a bad rules file or webhook list: one line, no traceback
        raise ServerConfigError(str(exc)) from exc
    kwargs: dict[str, Any] = {
        "host": settings.status_bind,
        "port": settings.status_port,
        "log_level": log_level,
        "access_log": False,
        "lifespan": "on",
        "timeout_keep_alive": 75,
        "server_header": False,
    }
    if settings.mtls_enabled:
        from statusdash.pki.check import PkiError
        from statusdash.server.mtls import mtls_setup

        try:
            kwargs.update(mtls_setup(settings, app))
        except (PkiError, FileNotFoundError, ValueError) as exc:
            raise ServerConfigError(
                f"mTLS is on but the certificates are not usable: {exc}"
                " (--insecure-http serves plain HTTP for a local test)"
            ) from exc
    kwargs.update(extra)
    return uvicorn.Config(app, **kwargs)


def serve(settings: Settings, log_level: str = "info") -> None:
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(message)s")
    config = uvicorn_config(settings, log_level)
    uvicorn.Server(config).run()
