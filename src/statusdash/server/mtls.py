"""Server-side mutual TLS under uvicorn: who is on the other end of each connection.

No ASGI server hands the verified client certificate to the app (uvicorn 0.54, hypercorn and
granian can demand one, but the app cannot see who it is), so our protocol classes read it once
per connection, after the handshake, and expose it through the ASGI TLS extension
(``scope["extensions"]["tls"]["client_cert_chain"]``). :func:`peer_identity` turns that into
(cn, role, serial), cached per connection. ``statusdash.server.revocation.RevocationWatcher``
keeps the CRL in the running context fresh and holds the denylist that the auth dependency checks
on every request (TLS does not re-check kept-alive connections). :class:`ServerTLS` bundles it
all, and :func:`mtls_setup` wires it into the app made by ``create_app``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import timedelta
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

from statusdash.pki.ca import CRL_VALIDITY, reissue_crl
from statusdash.pki.check import PkiError, parse_client_cert, utcnow
from statusdash.pki.vault import CRL_REFRESH_MARGIN, crl_needs_refresh, load_crl, paths
from statusdash.server.conns import GuardedHttpToolsProtocol
from statusdash.server.context import attach, context_of
from statusdash.server.revocation import RevocationWatcher
from statusdash.settings import Settings

if TYPE_CHECKING:
    from fastapi import FastAPI

log = logging.getLogger("statusdash.tls")

_IDENTITY_KEY = "statusdash.peer_identity"  # per-connection cache inside the TLS extension dict
_MISSING = object()
_TLS_VERSIONS = {"TLSv1.2": 0x0303, "TLSv1.3": 0x0304}


class TlsSetupError(PkiError, ValueError):
    """The server cannot serve mTLS with what is in the vault; the message says what to run."""


@dataclass(frozen=True, slots=True)
class PeerIdentity:
    """A verified client certificate: CN (host id), role (agent, viewer or '' if none), serial."""

    cn: str
    role: str
    serial: int
    not_after: float | None = None  # the certificate's end (agent status shows it)


# --- the SSL context ---------------------------------------------------------------------------
def build_server_context(
    vault: Path | str,
    *,
    on_refused: Callable[[str], None] | None = None,
    refresh_crl: bool = True,
    crl_validity: timedelta = CRL_VALIDITY,
    refresh_margin: timedelta = CRL_REFRESH_MARGIN,
) -> ssl.SSLContext:
    """The server context: our cert, our CA as trust, client certs optional but checked + CRL.

    CERT_OPTIONAL lets token readers in without a certificate on the same port, while a
    certificate that is presented and fails (other CA, expired, revoked, no clientAuth) is
    refused at the handshake. The CRL is re-issued first if it is near its nextUpdate and the
    CA key is here: with CRL checking on, a missing or expired CRL would refuse every client.
    Refused handshakes are logged with OpenSSL's reason and passed to ``on_refused``.
    """
    p = paths(vault)
    for path, fix in (
        (p.ca_cert, "statusdash certs init"),
        (p.server_cert, "statusdash certs server --san <name-or-ip> ..."),
        (p.server_key, "statusdash certs server --san <name-or-ip> ... --force"),
    ):
        if not path.exists():
            raise TlsSetupError(f"mTLS needs {path}, which is missing: run `{fix}`")
    if refresh_crl and p.ca_key.exists() and crl_needs_refresh(vault, refresh_margin):
        renewed = reissue_crl(vault, crl_validity)
        log.info("CRL re-issued, valid until %s", f"{renewed:%Y-%m-%d %H:%M} UTC")
    try:
        next_update = load_crl(vault).next_update_utc
    except PkiError as exc:
        raise TlsSetupError(f"{exc}; without a CRL every client certificate is refused") from None
    if next_update is not None and next_update <= utcnow():
        raise TlsSetupError(
            f"the CRL {p.crl} expired at {next_update:%Y-%m-%d %H:%M} UTC and the CA key is not"
            " here to re-issue it: every client certificate would be refused. Run"
            " `statusdash certs crl` on the CA host and copy ca/crl.pem here."
        )
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        ctx.load_cert_chain(p.server_cert, p.server_key)
        ctx.load_verify_locations(cafile=p.ca_cert)
        ctx.load_verify_locations(cafile=p.crl)
    except (ssl.SSLError, OSError) as exc:
        raise TlsSetupError(f"cannot load the server certificates from {p.root}: {exc}") from None
    ctx.verify_mode = ssl.CERT_OPTIONAL
    ctx.verify_flags |= ssl.VERIFY_CRL_CHECK_LEAF
    # No session resumption: a resumed session skips certificate and CRL checks.
    ctx.options |= ssl.OP_NO_TICKET
    ctx.num_tickets = 0
    ctx.sslobject_class = _refusal_logging_sslobject(on_refused)
    return ctx


def _refusal_logging_sslobject(on_refused: Callable[[str], None] | None) -> type[ssl.SSLObject]:
    """An SSLObject class that logs why a client certificate was refused.

    uvicorn closes such connections silently (the client only sees a disconnect), so this log
    line is the one place an operator can read "certificate revoked" or "certificate expired".
    """

    class _SSLObject(ssl.SSLObject):
        def do_handshake(self) -> None:
            try:
                super().do_handshake()
            except ssl.SSLCertVerificationError as exc:
                reason = exc.verify_message or exc.reason or str(exc)
                log.warning("TLS handshake refused (client certificate: %s)", reason)
                if on_refused is not None:
                    on_refused(reason)
                raise

    return _SSLObject


# --- protocol classes: the client certificate into the ASGI scope ------------------------------
def tls_extension(transport: asyncio.BaseTransport) -> dict[str, Any] | None:
    """The ASGI TLS extension for one connection, or None if it is not TLS."""
    ssl_object = transport.get_extra_info("ssl_object")
    if ssl_object is None:
        return None
    der = ssl_object.getpeercert(binary_form=True)
    return {
        "server_cert": None,
        "client_cert_chain": [ssl.DER_cert_to_PEM_cert(der)] if der else [],
        "client_cert_name": None,
        "client_cert_error": None,
        "tls_version": _TLS_VERSIONS.get(ssl_object.version() or ""),
        "cipher_suite": None,
    }


def _add_tls(scope: Mapping[str, Any], ext: dict[str, Any] | None) -> None:
    if ext is not None:
        # setdefault: once the server fills the extension natively, its version wins.
        cast(dict[str, Any], scope).setdefault("extensions", {}).setdefault("tls", ext)


class MTLSHttpToolsProtocol(GuardedHttpToolsProtocol):
    """The guarded httptools protocol, plus the client certificate in every request's scope."""

    _statusdash_tls: dict[str, Any] | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._statusdash_tls = tls_extension(transport)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        _add_tls(self.scope, self._statusdash_tls)


class MTLSWebSocketsProtocol(WebSocketsSansIOProtocol):
    """uvicorn's websockets-sansio protocol (its ``ws="auto"`` choice), plus the client cert."""

    _statusdash_tls: dict[str, Any] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._statusdash_tls = tls_extension(transport)

    async def run_asgi(self) -> None:
        _add_tls(self.scope, self._statusdash_tls)
        await super().run_asgi()


# --- identity ----------------------------------------------------------------------------------
@lru_cache(maxsize=1024)
def _identity_from_pem(pem: str) -> PeerIdentity | None:
    try:
        info = parse_client_cert(pem.encode("ascii"))
    except (ValueError, UnicodeEncodeError):
        return None
    return PeerIdentity(info.cn, info.role or "", info.serial, info.not_after)


def peer_identity(scope: Mapping[str, Any]) -> PeerIdentity | None:
    """The verified client certificate's identity for this request, or None if it has none.

    Cheap: parsed once per connection (cached in the connection's TLS extension dict, and by
    PEM). Does not check revocation: call :meth:`RevocationWatcher.is_revoked` too.
    """
    extensions = scope.get("extensions")
    tls = extensions.get("tls") if extensions else None
    if not tls:
        return None
    cached = tls.get(_IDENTITY_KEY, _MISSING)
    if cached is not _MISSING:
        return cast(PeerIdentity | None, cached)
    chain = list(tls.get("client_cert_chain") or ())
    identity = _identity_from_pem(chain[0]) if chain else None
    with contextlib.suppress(TypeError):
        tls[_IDENTITY_KEY] = identity
    return identity


# --- wiring ------------------------------------------------------------------------------------
class ServerTLS:
    """The server's mTLS kit: one SSL context, the protocol classes and the revocation watcher."""

    def __init__(self, vault: Path | str, *, watch_interval_s: float = 2.0) -> None:
        self.vault = Path(vault)
        self.refusals: deque[str] = deque(maxlen=100)  # latest handshake refusal reasons
        self.context = build_server_context(self.vault, on_refused=self.refusals.append)
        self.watcher = RevocationWatcher(self.vault, interval_s=watch_interval_s)
        self.watcher.attach(self.context)
        self.watcher.check_now()

    @classmethod
    def from_settings(cls, settings: Settings) -> ServerTLS | None:
        """The kit for ``settings.vault_path``, or None when MTLS_ENABLED is false."""
        return cls(settings.vault_path) if settings.mtls_enabled else None

    def uvicorn_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``uvicorn.Config``: the SSL context and our protocol classes."""
        return {
            "ssl_context_factory": self._context_factory,
            "http": MTLSHttpToolsProtocol,
            "ws": MTLSWebSocketsProtocol,
        }

    def _context_factory(
        self, config: Any, default: Callable[[], ssl.SSLContext]
    ) -> ssl.SSLContext:
        return self.context


def mtls_setup(settings: Settings, app: FastAPI) -> dict[str, Any]:
    """Wire mTLS into ``app`` and return the ``uvicorn.Config`` kwargs that serve it.

    Sets the context's ``auth.peer_identity`` and ``.is_revoked`` and attaches a context whose
    ``tls`` is the kit, so the lifespan runs its revocation watcher from start-up to shutdown.
    Raises TlsSetupError (a ValueError) with what to run if the vault is not usable.
    """
    try:
        server_tls = ServerTLS(settings.vault_path)
    except TlsSetupError:
        raise
    except PkiError as exc:
        raise TlsSetupError(str(exc)) from None
    ctx = context_of(app)
    ctx.auth.peer_identity = peer_identity
    ctx.auth.is_revoked = server_tls.watcher.is_revoked
    attach(app, replace(ctx, tls=server_tls))
    return server_tls.uvicorn_kwargs()
