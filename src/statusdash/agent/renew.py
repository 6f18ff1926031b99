"""Certificate renewal: at 2/3 of its life the agent asks the server to sign its key again.

The request goes over mTLS with the current certificate (``POST /api/enroll/renew``) and
carries a CSR for the agent's current key, so only the certificate file changes: one atomic
replace, never a moment where the key and the certificate on disk disagree. The new
certificate is loaded into the live TLS contexts (``tlsclient.reload_cert``): the push's next
connection presents it; the connection open now keeps the old one until it closes.

The renewal itself (a CSR signed with the key, the answer checked) needs ``cryptography``,
~9 MB of resident memory the daemon would carry for months to use every few weeks, so it runs
in a short-lived child process (``python -m statusdash.agent.renew``), from a thread: the
collection cadence never waits on it. The daemon reads its certificate's dates with the
standard library alone. A failure is retried with backoff, sooner as the expiry nears.
"""

from __future__ import annotations

import json
import logging
import os
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from statusdash.agent.config import CONFIG_ENV, AgentConfig
from statusdash.backoff import Backoff
from statusdash.tlsclient import reload_cert

log = logging.getLogger("statusdash.agent.renew")

RENEW_AT = 2 / 3  # of the certificate's life
RETRY_BASE_S = 60.0
RETRY_MAX_S = 3600.0
CERT_FILE_MODE = 0o644
CHILD_GRACE_S = 30.0  # a child's start-up and key work, beyond its request's own timeouts


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


# --- the certificate's dates, standard library only -----------------------------------------
def _tlv(der: bytes, at: int) -> tuple[int, int, int]:
    """(tag, start of the value, end of the value) of the DER element at ``at``."""
    tag, size = der[at], der[at + 1]
    at += 2
    if size & 0x80:
        n = size & 0x7F
        size = int.from_bytes(der[at : at + n], "big")
        at += n
    if at + size > len(der):
        raise ValueError("truncated DER")
    return tag, at, at + size


def _time(tag: int, raw: bytes) -> float:
    text = raw.decode("ascii")
    fmt = "%y%m%d%H%M%SZ" if tag == 0x17 else "%Y%m%d%H%M%SZ"  # UTCTime or GeneralizedTime
    return datetime.strptime(text, fmt).replace(tzinfo=UTC).timestamp()


def validity_of(pem: bytes) -> Validity:
    """notBefore, notAfter and serial of a PEM certificate; ValueError if it is not one."""
    try:
        der = ssl.PEM_cert_to_DER_cert(pem.decode("ascii"))
        _, tbs, _ = _tlv(der, 0)  # Certificate
        _, at, _ = _tlv(der, tbs)  # TBSCertificate
        tag, start, end = _tlv(der, at)
        if tag == 0xA0:  # [0] version
            tag, start, end = _tlv(der, end)
        serial = int.from_bytes(der[start:end], "big")  # serialNumber
        for _ in range(3):  # signature, issuer, validity
            tag, start, end = _tlv(der, end)
        t1, s1, e1 = _tlv(der, start)
        t2, s2, e2 = _tlv(der, e1)
        return Validity(_time(t1, der[s1:e1]), _time(t2, der[s2:e2]), serial)
    except (IndexError, UnicodeError, ValueError) as exc:
        raise ValueError(f"not a certificate: {exc}") from None


# --- the daemon's side ------------------------------------------------------------------------
class Renewer:
    """Renews ``cfg.cert`` in place when due; ``tick`` is called from the agent's loop."""

    def __init__(self, cfg: AgentConfig, *, clock: Callable[[], float] = time.time) -> None:
        if cfg.cert is None or cfg.key is None or not cfg.https:
            raise ValueError("renewal needs https and a client certificate and key")
        self.cfg = cfg
        self.cert_path: Path = cfg.cert
        self._clock = clock
        self._backoff = Backoff(RETRY_BASE_S, RETRY_MAX_S)
        self._thread: threading.Thread | None = None
        self.current = validity_of(self.cert_path.read_bytes())
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
        """Renew now in a child process; RenewError saying why if it fails."""
        cfg = self.cfg
        env = {**os.environ, CONFIG_ENV: cfg.to_json()}
        limit = cfg.timeout_s * 3 + CHILD_GRACE_S  # connect, write, read; then start-up
        try:
            done = subprocess.run(
                [sys.executable, "-m", "statusdash.agent.renew"],
                env=env, capture_output=True, text=True, timeout=limit, check=False,
            )  # fmt: skip
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise RenewError(f"the renewal process failed: {exc}") from None
        if done.returncode != 0:
            lines = (done.stderr or "no message").strip().splitlines() or ["no message"]
            raise RenewError(lines[-1][:500])
        try:
            self.current = validity_of(self.cert_path.read_bytes())
        except (OSError, ValueError) as exc:
            raise RenewError(f"cannot read the renewed {self.cert_path}: {exc}") from None
        reload_cert(self.cert_path)
        self.next_try = self.current.renew_at
        self._backoff.reset()
        self.renewals += 1
        until = datetime.fromtimestamp(self.current.not_after, UTC).isoformat(timespec="seconds")
        log.info(
            "certificate renewed: serial %x, valid until %s; the next connection presents it",
            self.current.serial, until,
        )  # fmt: skip
        return self.current


# --- the child's side -------------------------------------------------------------------------
def renew_files(cfg: AgentConfig) -> str:
    """Post a CSR for the current key, check the answer, replace ``cfg.cert``; a summary line."""
    import httpx
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    from statusdash import __version__
    from statusdash.fsutil import atomic_write
    from statusdash.pki.ca import make_csr
    from statusdash.pki.check import PkiError, common_name, issued_by, load_cert, load_key
    from statusdash.tlsclient import client_context

    assert cfg.cert is not None and cfg.key is not None
    try:
        key = load_key(cfg.key)
        csr = make_csr(key, cfg.host_id).decode()
        ca = load_cert(cfg.ca) if cfg.ca is not None else None
        ctx = client_context(cfg.ca, cfg.cert, cfg.key)
    except (OSError, PkiError, ValueError) as exc:
        raise RenewError(f"cannot read the key, certificate or CA: {exc}") from None
    headers = {"User-Agent": f"statusdash-agent/{__version__}"}
    try:
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
    try:
        cert = x509.load_pem_x509_certificate(str(data.get("certificate")).encode())
    except ValueError:
        raise RenewError("the server's answer holds no certificate") from None
    if cert.public_key() != key.public_key() or common_name(cert) != cfg.host_id:
        raise RenewError("the server's certificate is not for this key and host")
    if ca is not None and not issued_by(cert, ca):
        raise RenewError("the server's certificate is not signed by the CA we trust")
    try:
        atomic_write(cfg.cert, cert.public_bytes(serialization.Encoding.PEM), CERT_FILE_MODE)
    except OSError as exc:
        raise RenewError(f"cannot write {cfg.cert}: {exc}") from None
    return f"renewed {cfg.cert}: serial {cert.serial_number:x}"


def main() -> int:
    """The child: ``python -m statusdash.agent.renew`` with the agent's configuration."""
    text = os.environ.pop(CONFIG_ENV, "")
    if not text:
        print("statusdash.agent.renew: started by the agent only", file=sys.stderr)
        return 2
    try:
        print(renew_files(AgentConfig.from_json(text)))
    except RenewError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
