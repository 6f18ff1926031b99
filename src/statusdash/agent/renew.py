"""Certificate renewal: at 2/3 of its life the agent asks the server to sign its key again.

The request goes over mTLS with the current certificate (``POST /api/enroll/renew``) and
carries a CSR for the agent's current key, so only the certificate file changes: one atomic
replace, never a moment where the key and the certificate on disk disagree. The new
certificate is loaded into the live TLS contexts (``tlsclient.reload_cert``): the push's next
connection presents it; the connection open now keeps the old one until it closes. A failure
is retried with backoff, sooner as the expiry nears; it runs in its own thread, so the
collection cadence never waits on it.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import httpx

from statusdash import __version__
from statusdash.agent.config import AgentConfig
from statusdash.backoff import Backoff
from statusdash.fsutil import atomic_write
from statusdash.tlsclient import client_context, reload_cert

if TYPE_CHECKING:
    from cryptography import x509

log = logging.getLogger("statusdash.agent.renew")

RENEW_AT = 2 / 3  # of the certificate's life
RETRY_BASE_S = 60.0
RETRY_MAX_S = 3600.0
CERT_FILE_MODE = 0o644


class RenewError(Exception):
    """The renewal failed; the message says why (the agent retries later)."""


@dataclass(frozen=True)
class Validity:
    not_before: float
    not_after: float
    serial: int

    @property
    def renew_at(self) -> float:
        return self.not_before + RENEW_AT * (self.not_after - self.not_before)


def _load(data: bytes) -> x509.Certificate:
    from cryptography import x509

    return x509.load_pem_x509_certificate(data)


def validity(cert: x509.Certificate) -> Validity:
    return Validity(
        cert.not_valid_before_utc.timestamp(), cert.not_valid_after_utc.timestamp(),
        cert.serial_number,
    )  # fmt: skip


class Renewer:
    """Renews ``cfg.cert`` in place when due; ``tick`` is called from the agent's loop."""

    def __init__(self, cfg: AgentConfig, *, clock: Callable[[], float] = time.time) -> None:
        if cfg.cert is None or cfg.key is None or not cfg.https:
            raise ValueError("renewal needs https and a client certificate and key")
        self.cfg = cfg
        self.cert_path, self.key_path = cfg.cert, cfg.key
        self._clock = clock
        self._backoff = Backoff(RETRY_BASE_S, RETRY_MAX_S)
        self._thread: threading.Thread | None = None
        self.current = validity(_load(self.cert_path.read_bytes()))
        self.next_try = self.current.renew_at
        self.renewals = 0

    @classmethod
    def for_config(cls, cfg: AgentConfig) -> Renewer | None:
        """A renewer for an agent that uses a certificate over https, else None."""
        if cfg.cert is None or cfg.key is None or not cfg.https:
            return None
        try:
            return cls(cfg)
        except (OSError, ValueError) as exc:
            log.warning("certificate renewal is off: cannot read %s: %s", cfg.cert, exc)
            return None

    def tick(self) -> None:
        """Start a renewal in the background when one is due (and none runs)."""
        if self._clock() < self.next_try or (self._thread and self._thread.is_alive()):
            return
        self._thread = threading.Thread(target=self._run, name="renew", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self.renew()
        except RenewError as exc:
            life = self.current.not_after - self.current.not_before
            delay = max(1.0, min(self._backoff.next_delay(), life / 10))
            self.next_try = self._clock() + delay
            left = self.current.not_after - self._clock()
            log.warning(
                "certificate renewal failed (%s); retrying in %.0f s, %.0f s before it expires",
                exc, delay, left,
            )  # fmt: skip

    def renew(self) -> Validity:
        """Renew now; RenewError if the server refuses or cannot be reached."""
        from cryptography.hazmat.primitives import serialization

        from statusdash.pki.ca import make_csr
        from statusdash.pki.check import PkiError, common_name, issued_by, load_cert, load_key

        try:
            key = load_key(self.key_path)
            csr = make_csr(key, self.cfg.host_id).decode()
            ca = load_cert(self.cfg.ca) if self.cfg.ca is not None else None
        except (OSError, PkiError, ValueError) as exc:
            raise RenewError(f"cannot read the key or CA: {exc}") from None
        pem = self._post(csr)
        try:
            cert = _load(pem)
        except ValueError:
            raise RenewError("the server's answer holds no certificate") from None
        if cert.public_key() != key.public_key() or common_name(cert) != self.cfg.host_id:
            raise RenewError("the server's certificate is not for this key and host")
        if ca is not None and not issued_by(cert, ca):
            raise RenewError("the server's certificate is not signed by the CA we trust")
        try:
            atomic_write(
                self.cert_path, cert.public_bytes(serialization.Encoding.PEM), CERT_FILE_MODE
            )
        except OSError as exc:
            raise RenewError(f"cannot write {self.cert_path}: {exc}") from None
        reload_cert(self.cert_path)
        self.current = validity(cert)
        self.next_try = self.current.renew_at
        self._backoff.reset()
        self.renewals += 1
        log.info(
            "certificate renewed: serial %x, valid until %s; the next connection presents it",
            cert.serial_number, cert.not_valid_after_utc.isoformat(timespec="seconds"),
        )  # fmt: skip
        return self.current

    def _post(self, csr: str) -> bytes:
        cfg = self.cfg
        try:
            ctx = client_context(cfg.ca, self.cert_path, self.key_path)
            headers = {"User-Agent": f"statusdash-agent/{__version__}"}
            with (
                httpx.Client(
                    base_url=cfg.server_url,
                    verify=ctx,
                    timeout=cfg.timeout_s,
                    headers=headers,
                    trust_env=False,
                ) as client,  # fmt: skip
                client.stream("POST", "/api/enroll/renew", json={"csr": csr}) as resp,
            ):
                body = b""
                for chunk in resp.iter_bytes():
                    body += chunk
                    if len(body) > cfg.response_max_bytes:
                        raise RenewError("the server's answer is too long")
        except (httpx.HTTPError, OSError) as exc:
            raise RenewError(f"{type(exc).__name__}: {exc}") from None
        try:
            data = json.loads(body)
        except ValueError:
            raise RenewError(f"HTTP {resp.status_code}: not JSON") from None
        if resp.status_code != 200 or not isinstance(data, dict):
            detail = data.get("detail") if isinstance(data, dict) else None
            raise RenewError(f"HTTP {resp.status_code}: {detail}")
        certificate = data.get("certificate")
        if not isinstance(certificate, str):
            raise RenewError("the server's answer holds no certificate")
        return certificate.encode()
