"""What every reader command shares: the connection options, declared once, and our credentials.

A reader command takes a ``Connection`` as its first parameter and is decorated with
``@reader``: the decorator gives the command ``--server/--ca/--cert/--key`` (shown by its
``--help``) and hands it the ``Connection`` they make.
"""

from __future__ import annotations

import functools
import inspect
import json
import sys
import typing
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Concatenate, ParamSpec, TypeVar

import typer

from statusdash.cli.boundary import fail
from statusdash.durations import humanize
from statusdash.safetext import one_line

if TYPE_CHECKING:
    from rich.text import Text

    from statusdash.client import ApiClient, Credentials, TokenStore
    from statusdash.settings import Settings

P = ParamSpec("P")
R = TypeVar("R")

ServerOpt = Annotated[
    str | None,
    typer.Option("--server", help="server URL (env STATUSDASH_SERVER)"),
]
CaOpt = Annotated[
    Path | None,
    typer.Option("--ca", help="CA certificate to trust (env STATUSDASH_CA)"),
]
CertOpt = Annotated[Path | None, typer.Option("--cert", help="viewer client certificate")]
KeyOpt = Annotated[Path | None, typer.Option("--key", help="key of --cert")]
JsonOpt = Annotated[bool, typer.Option("--json", help="print JSON (for scripts)")]
CertsDirOpt = Annotated[
    Path | None,
    typer.Option("--certs-dir", help="certificate directory (env VAULT_PATH)"),
]
DataDirOpt = Annotated[
    Path | None, typer.Option("--data-dir", help="server data dir (env STATUS_DATA_DIR)")
]


def settings(**overrides: Any) -> Settings:
    """The settings (``overrides`` are flags that win when given); a bad one is a usage error."""
    from pydantic import ValidationError

    from statusdash.settings import load_settings

    try:
        return load_settings(**overrides)
    except ValidationError as exc:
        first = exc.errors()[0]
        fail(f"bad setting {'.'.join(map(str, first['loc'])).upper()}: {first['msg']}", 2)


@dataclass(frozen=True)
class Connection:
    """Where a reader finds the server and how it proves itself, as given on the command line."""

    server: str | None = None
    ca: Path | None = None
    cert: Path | None = None
    key: Path | None = None

    def resolve(self) -> tuple[str, Path | None, Credentials]:
        """(server URL, CA to trust, credentials), or a clear failure saying how to get some.

        The URL is normalized (``reach.normalize_url``), so any spelling of it finds its stored
        login, and the CA that login was made with is trusted when no other is given.
        """
        from statusdash.client import ClientError, Credentials, TokenStore

        s = settings()
        store = TokenStore.default()
        url = server_url(s, self.server, store)
        if self.cert is not None and self.key is None:
            fail("--cert needs --key", 2)
        token = s.statusdash_token.get_secret_value() if s.statusdash_token else None
        try:
            login = store.entry(url)
        except ClientError:  # a damaged token file matters only to who needs a stored login
            if token is None and self.cert is None:
                raise
            login = None
        if token is None and self.cert is None:
            if login is not None and login.expired:
                when = datetime.fromtimestamp(login.expires_at, UTC)
                fail(
                    f"the login to {url} expired {age(when)} ago:"
                    f" run `statusdash login --server {url}`"
                )
            if login is None:
                fail(
                    f"not logged in to {url}: run `statusdash login --server {url}`, set"
                    " STATUSDASH_TOKEN, or pass a viewer certificate with --cert/--key",
                )
            token = login.token
        creds = Credentials(token=None if self.cert else token, cert=self.cert, key=self.key)
        return url, resolve_ca(s, self.ca, login.ca if login else None), creds

    def client(self, timeout: float = 10.0) -> ApiClient:
        """A client of the read API with the reader's credentials."""
        from statusdash.client import ApiClient

        url, ca, creds = self.resolve()
        return ApiClient(url, ca=ca, credentials=creds, timeout=timeout)


_CONNECTION_PARAMS = (
    ("server", ServerOpt),
    ("ca", CaOpt),
    ("cert", CertOpt),
    ("key", KeyOpt),
)


def reader(fn: Callable[Concatenate[Connection, P], R]) -> Callable[P, R]:
    """Give a command the connection options; it receives them as its first argument."""
    hints = typing.get_type_hints(fn, include_extras=True)
    sig = inspect.signature(fn)
    own = [p.replace(annotation=hints[p.name]) for p in list(sig.parameters.values())[1:]]
    added = [
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=hint)
        for name, hint in _CONNECTION_PARAMS
    ]

    @functools.wraps(fn)
    def command(*args: P.args, **kwargs: P.kwargs) -> R:
        given: dict[str, Any] = {name: kwargs.pop(name) for name, _ in _CONNECTION_PARAMS}
        conn = Connection(**given)
        return fn(conn, *args, **kwargs)

    params = [*own, *added]
    command.__signature__ = sig.replace(parameters=params)  # type: ignore[attr-defined]
    command.__annotations__ = {p.name: p.annotation for p in params}
    return command


def server_url(s: Settings, given: str | None, store: TokenStore | None = None) -> str:
    """The server a reader means, normalized: ``--server``, else STATUSDASH_SERVER or
    PUBLIC_URL, else the server of the last ``statusdash login``, else this host's own server."""
    from statusdash.reach import normalize_url

    explicit = given or s.statusdash_server or s.public_url
    if not explicit and store is not None:
        explicit = store.default_server()
    return normalize_url(explicit or s.server_url())


def token_path() -> Path:
    from statusdash.client import TokenStore

    return TokenStore.default().path


def save_token(server: str, token: str, expires_in: int) -> Path:
    """Keep ``token`` for ``server`` in the token file (mode 0600, replaced atomically)."""
    from statusdash.client import TokenStore

    return TokenStore.default().save(server, token, expires_in)


def stored_token(server: str) -> str | None:
    from statusdash.client import TokenStore

    return TokenStore.default().load(server)


def resolve_ca(s: Settings, ca: Path | None, remembered: Path | None = None) -> Path | None:
    """The CA to trust: ``--ca``, STATUSDASH_CA, the one the stored login was made with, or
    VAULT_PATH/ca/ca.crt when it exists."""
    if ca is not None:
        return ca
    if s.statusdash_ca is not None:
        return s.statusdash_ca
    if remembered is not None:
        return remembered
    return s.ca_cert if s.ca_cert.exists() else None


def check_host(host: str) -> str:
    """``host`` if it is a valid host id, else a usage error (exit 2): before it goes in a URL."""
    from statusdash import hostid

    try:
        hostid.check(host)
    except ValueError as exc:
        fail(str(exc), 2)
    return host


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def print_listing(
    rows: Sequence[Any],
    as_json: bool,
    empty: str,
    table: Callable[[], None],
    *,
    by_alias: bool = False,
) -> None:
    """A list command's output: every row (a model) as JSON, ``empty`` when there is none, else
    ``table()``."""
    if as_json:
        print_json([r.model_dump(mode="json", by_alias=by_alias) for r in rows])
    elif not rows:
        typer.echo(empty)
    else:
        table()


def print_table(
    columns: Sequence[str], rows: Iterable[Sequence[str]], width: int | None = None
) -> None:
    """Rows under bold column titles, without a box; every cell is data (see ``cell``)."""
    from rich.console import Console
    from rich.table import Table

    t = Table(box=None, header_style="bold")
    for col in columns:
        t.add_column(col, overflow="fold")  # a long error folds rather than loses its end
    for row in rows:
        t.add_row(*(cell(v) for v in row))  # data: escaped, markup never interpreted
    Console(width=width).print(t)


def age(then: datetime | None) -> str:
    """How long ago ``then`` was (``3 min``), or ``-`` when it is unknown."""
    if then is None:
        return "-"
    return humanize((datetime.now(UTC) - then).total_seconds())


def cell(value: str) -> Text:
    """Data for a Rich table cell: controls shown as escapes, markup never interpreted."""
    from rich.text import Text

    return Text(one_line(value))


def echo(line: str) -> None:
    """Print one line holding data: its controls and line breaks shown as escapes, not run."""
    typer.echo(one_line(line))
