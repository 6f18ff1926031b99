"""Server-side mutual TLS under uvicorn: who is on the other end of each connection.

No ASGI server hands the client certificate to the app (see shared/design/facts.md), so our
protocol classes read it once per connection, after the handshake, and expose it through the
ASGI TLS extension (``scope["extensions"]["tls"]["client_cert_chain"]``). :func:`peer_identity`
turns that into (cn, role, serial), cached per connection. :class:`RevocationWatcher` keeps the
CRL in the running context fresh and holds the denylist that the auth dependency checks on
every request (TLS does not re-check kept-alive connections). :class:`ServerTLS` bundles it all,
and :func:`mtls_setup` wires it into the app made by ``create_app``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import ssl
from collections import deque
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

from statusdash import pki
from statusdash.server.context import attach, context_of
from statusdash.settings import Settings

if TYPE_CHECKING:
    from fastapi import FastAPI

log = logging.getLogger("statusdash.tls")

_IDENTITY_KEY = "statusdash.peer_identity"  # per-connection cache inside the TLS extension dict
_MISSING = object()
_TLS_VERSIONS = {"TLSv1.2": 0x0303, "TLSv1.3": 0x0304}


class TlsSetupError(pki.PkiError, ValueError):
    """The server cannot serve mTLS with what is in the vault; the message says what to run."""


@dataclass(frozen=True, slots=True)
class PeerIdentity:
    """A verified client certificate: CN (host id), role (agent, viewer or '' if none), serial."""

    cn: str
    role: str
    serial: int


# --- the SSL context ---------------------------------------------------------------------------
def build_server_context(
    vault: Path | str,
    *,
    on_refused: Callable[[str], None] | None = None,
    refresh_crl: bool = True,
    crl_validity: timedelta = pki.CRL_VALIDITY,
    refresh_margin: timedelta = pki.CRL_REFRESH_MARGIN,
) -> ssl.SSLContext:
    """The server context: our cert, our CA as trust, client certs optional but checked + CRL.

    CERT_OPTIONAL lets token readers in without a certificate on the same port, while a
    certificate that is presented and fails (other CA, expired, revoked, no clientAuth) is
    refused at the handshake. The CRL is re-issued first if it is near its nextUpdate and the
    CA key is here: with CRL checking on, a missing or expired CRL would refuse every client.
    Refused handshakes are logged with OpenSSL's reason and passed to ``on_refused``.
    """
    p = pki.paths(vault)
    for path, fix in (
        (p.ca_cert, "statusdash certs init"),
        (p.server_cert, "statusdash certs server --san <name-or-ip> ..."),
        (p.server_key, "statusdash certs server --san <name-or-ip> ... --force"),
    ):
        if not path.exists():
            raise TlsSetupError(f"mTLS needs {path}, which is missing: run `{fix}`")
    if refresh_crl and p.ca_key.exists() and pki.crl_needs_refresh(vault, refresh_margin):
        renewed = pki.reissue_crl(vault, crl_validity)
        log.info("CRL re-issued, valid until %s", f"{renewed:%Y-%m-%d %H:%M} UTC")
    try:
        next_update = pki.load_crl(vault).next_update_utc
    except pki.PkiError as exc:
        raise TlsSetupError(f"{exc}; without a CRL every client certificate is refused") from None
    if next_update is not None and next_update <= pki.utcnow():
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


class MTLSHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, plus the client certificate in every request's scope."""

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
        info = pki.parse_client_cert(pem.encode("ascii"))
    except (ValueError, UnicodeEncodeError):
        return None
    return PeerIdentity(info.cn, info.role or "", info.serial)


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


# --- revocation --------------------------------------------------------------------------------
def _file_sig(path: Path) -> tuple[int, int, int] | None:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return (st.st_ino, st.st_mtime_ns, st.st_size)


class RevocationWatcher:
    """Keeps the CRL in the running SSL contexts fresh, and the denylist of revoked serials.

    A newly loaded CRL only applies to new handshakes; connections opened before a revocation
    stay up, which is why the app must check :meth:`is_revoked` on every request. With the CA
    key on this host, the CRL is re-issued when less than ``refresh_margin`` is left.
    """

    def __init__(
        self,
        vault: Path | str,
        *,
        interval_s: float = 2.0,
        crl_validity: timedelta = pki.CRL_VALIDITY,
        refresh_margin: timedelta = pki.CRL_REFRESH_MARGIN,
        reissue: bool = True,
    ) -> None:
        self.vault = Path(vault)
        self.paths = pki.paths(vault)
        self.interval_s = interval_s
        self.crl_validity = crl_validity
        self.refresh_margin = refresh_margin
        self.reissue = reissue
        self.reloads = 0
        self.next_update: datetime | None = None
        self._contexts: list[ssl.SSLContext] = []
        self._denylist: frozenset[int] = frozenset()
        self._seen: tuple[object, object] | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def denylist(self) -> frozenset[int]:
        return self._denylist

    def is_revoked(self, serial: int) -> bool:
        """True if ``serial`` is revoked; a set lookup, cheap enough for every request."""
        return serial in self._denylist

    def attach(self, ctx: ssl.SSLContext) -> None:
        """Reload the CRL into ``ctx`` from now on (it must already trust our CA)."""
        self._contexts.append(ctx)
        self._seen = None

    def check_now(self) -> bool:
        """Reload CRL and denylist if their files changed; re-issue a CRL near expiry.

        Blocking file I/O: call it from a thread (``run`` does). Returns True if it reloaded.
        On error the previous denylist stays (it never shrinks on a bad read); an unreadable or
        forged CRL is re-issued from ``ca/revoked.json`` when the CA key is here.
        """
        can_reissue = self.reissue and self.paths.ca_key.exists()
        try:
            reloaded = self._reload_if_changed()
        except pki.PkiError as exc:
            if not can_reissue:
                raise
            log.error("bad CRL, re-issuing it from %s: %s", self.paths.revoked_db, exc)
            reloaded, self.next_update = False, None
        if can_reissue and self._needs_refresh():
            next_update = pki.reissue_crl(self.vault, self.crl_validity)
            log.info("CRL re-issued, valid until %s", f"{next_update:%Y-%m-%d %H:%M} UTC")
            reloaded = self._reload_if_changed() or reloaded
        if self.next_update is not None and self.next_update <= pki.utcnow():
            log.error(
                "the CRL %s expired at %s: every client certificate is refused until it is"
                " re-issued (`statusdash certs crl` on the CA host)",
                self.paths.crl,
                self.next_update,
            )
        return reloaded

    def _needs_refresh(self) -> bool:
        if self.next_update is None:
            return True
        return self.next_update - pki.utcnow() < self.refresh_margin

    def _reload_if_changed(self) -> bool:
        sig = (_file_sig(self.paths.crl), _file_sig(self.paths.revoked_db))
        if sig == self._seen:
            return False
        # Under the CA lock: `revoke` writes revoked.json and then the CRL; reading between the
        # two would load the old CRL and remember the new signature of the pair.
        with pki.locked(self.paths):
            sig = (_file_sig(self.paths.crl), _file_sig(self.paths.revoked_db))
            crl = pki.load_crl(self.vault)  # signature-checked; raises PkiError
            denied = pki.revoked_serials(self.vault)
        for ctx in self._contexts:
            ctx.load_verify_locations(cafile=self.paths.crl)
        self._denylist = frozenset(denied | self._denylist)
        self.next_update = crl.next_update_utc
        self._seen = sig
        self.reloads += 1
        log.info("CRL loaded: %d revoked serials, next update %s", len(denied), self.next_update)
        return True

    async def run(self) -> None:
        """Check every ``interval_s`` until cancelled; errors are logged, never fatal."""
        while True:
            try:
                await asyncio.to_thread(self.check_now)
            except (pki.PkiError, OSError, ssl.SSLError) as exc:
                log.error("revocation check failed (keeping the previous denylist): %s", exc)
            except Exception:  # a dead watcher would silently stop revocations
                log.exception("revocation check failed (keeping the previous denylist)")
            await asyncio.sleep(self.interval_s)

    def start(self) -> None:
        """Start :meth:`run` as a task of the running loop (idempotent)."""
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self.run(), name="statusdash-revocation-watcher")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[RevocationWatcher]:
        """Run the watcher for the duration of the block (the app's lifespan)."""
        self.start()
        try:
            yield self
        finally:
            await self.stop()


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
    except pki.PkiError as exc:
        raise TlsSetupError(str(exc)) from None
    ctx = context_of(app)
    ctx.auth.peer_identity = peer_identity
    ctx.auth.is_revoked = server_tls.watcher.is_revoked
    attach(app, replace(ctx, tls=server_tls))
    return server_tls.uvicorn_kwargs()
