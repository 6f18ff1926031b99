"""Revocation for the running server: the CRL in its SSL contexts kept fresh, and the denylist.

TLS checks the CRL at the handshake only; a kept-alive connection opened before a revocation
stays up, so the auth dependency asks :meth:`RevocationWatcher.is_revoked` on every request.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import ssl
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path

from statusdash.pki.ca import CRL_VALIDITY, locked, reissue_crl
from statusdash.pki.check import PkiError, utcnow
from statusdash.pki.vault import CRL_REFRESH_MARGIN, load_crl, paths, revoked_serials

log = logging.getLogger("statusdash.tls")


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
        crl_validity: timedelta = CRL_VALIDITY,
        refresh_margin: timedelta = CRL_REFRESH_MARGIN,
        reissue: bool = True,
    ) -> None:
        self.vault = Path(vault)
        self.paths = paths(vault)
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
        except PkiError as exc:
            if not can_reissue:
                raise
            log.error("bad CRL, re-issuing it from %s: %s", self.paths.revoked_db, exc)
            reloaded, self.next_update = False, None
        if can_reissue and self._needs_refresh():
            next_update = reissue_crl(self.vault, self.crl_validity)
            log.info("CRL re-issued, valid until %s", f"{next_update:%Y-%m-%d %H:%M} UTC")
            reloaded = self._reload_if_changed() or reloaded
        if self.next_update is not None and self.next_update <= utcnow():
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
        return self.next_update - utcnow() < self.refresh_margin

    def _reload_if_changed(self) -> bool:
        sig = (_file_sig(self.paths.crl), _file_sig(self.paths.revoked_db))
        if sig == self._seen:
            return False
        # Under the CA lock: `revoke` writes revoked.json and then the CRL; reading between the
        # two would load the old CRL and remember the new signature of the pair.
        with locked(self.paths):
            sig = (_file_sig(self.paths.crl), _file_sig(self.paths.revoked_db))
            crl = load_crl(self.vault)  # signature-checked; raises PkiError
            denied = revoked_serials(self.vault)
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
            except (PkiError, OSError, ssl.SSLError) as exc:
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
