"""What every reader command shares: finding the server, its CA and our credentials."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeVar

import typer

if TYPE_CHECKING:
    from statusdash.client import ApiClient, Credentials
    from statusdash.settings import Settings

T = TypeVar("T")

ServerOpt = Annotated[
    str | None, typer.Option("--server", help="server URL [env: STATUSDASH_SERVER]")
]
CaOpt = Annotated[Path | None, typer.Option("--ca", help="CA certificate to trust")]
CertOpt = Annotated[Path | None, typer.Option("--cert", help="viewer client certificate")]
KeyOpt = Annotated[Path | None, typer.Option("--key", help="key of --cert")]
JsonOpt = Annotated[bool, typer.Option("--json", help="print JSON instead of a table")]


def fail(message: str, code: int = 1) -> NoReturn:
    """One clear line on stderr and an exit code; never a traceback."""
    typer.echo(f"statusdash: {message}", err=True)
    raise typer.Exit(code)


def settings() -> Settings:
    from pydantic import ValidationError

    from statusdash.settings import load_settings

    try:
        return load_settings()
    except ValidationError as exc:
        first = exc.errors()[0]
        fail(f"bad setting {'.'.join(map(str, first['loc'])).upper()}: {first['msg']}", 2)


def token_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "statusdash" / "token.json"


def write_private(path: Path, text: str) -> None:
    """Write a file readable by its owner alone (mode 0600 from creation, never widened)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def save_token(server: str, token: str, expires_in: int) -> Path:
    path = token_path()
    data: dict[str, Any] = {}
    if path.exists():
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            data = {}
    data[server] = {"token": token, "expires_at": time.time() + expires_in}
    write_private(path, json.dumps(data, indent=2))
    return path


def stored_token(server: str) -> str | None:
    try:
        entry = json.loads(token_path().read_text()).get(server)
    except (OSError, ValueError, AttributeError):
        return None
    if not entry or entry.get("expires_at", 0) < time.time():
        return None
    token = entry.get("token")
    return token if isinstance(token, str) else None


def resolve_ca(s: Settings, ca: Path | None) -> Path | None:
    if ca is not None:
        return ca
    if s.statusdash_ca is not None:
        return s.statusdash_ca
    return s.ca_cert if s.ca_cert.exists() else None


def reader_credentials(
    server: str | None = None,
    ca: Path | None = None,
    cert: Path | None = None,
    key: Path | None = None,
) -> tuple[str, Path | None, Credentials]:
    """(server URL, CA to trust, credentials) for a reader, or a clear failure saying how."""
    from statusdash.client import Credentials

    s = settings()
    url = (server or s.server_url()).rstrip("/")
    if cert is not None and key is None:
        fail("--cert needs --key", 2)
    token = s.statusdash_token.get_secret_value() if s.statusdash_token else stored_token(url)
    if cert is None and not token:
        fail(
            f"not logged in to {url}: run `statusdash login --server {url}`, set"
            " STATUSDASH_TOKEN, or pass a viewer certificate with --cert/--key",
        )
    creds = Credentials(token=None if cert else token, cert=cert, key=key)
    return url, resolve_ca(s, ca), creds


def reader_client(
    server: str | None = None,
    ca: Path | None = None,
    cert: Path | None = None,
    key: Path | None = None,
    timeout: float = 10.0,
) -> ApiClient:
    """A client with the reader's credentials, or a clear failure saying how to get some."""
    from statusdash.client import ApiClient

    url, ca_path, creds = reader_credentials(server, ca, cert, key)
    try:
        return ApiClient(url, ca=ca_path, credentials=creds, timeout=timeout)
    except (OSError, ValueError) as exc:
        fail(f"cannot load TLS files: {exc}")


def call(fn: Callable[[], T]) -> T:
    """Run a client call, turning its errors into one line and exit code 1."""
    from statusdash.client import ClientError

    try:
        return fn()
    except ClientError as exc:
        fail(str(exc))


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
