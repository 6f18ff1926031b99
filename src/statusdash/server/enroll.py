"""Enrollment: bootstrap tokens, CSRs signed by our CA, approvals and renewals (docs/trust.md).

A token reads ``sdt_<token_id>_<secret>``; only a SHA-256 of the secret is stored (256 bits of
entropy: a fast hash is enough). The operator's side is ``server/enroll_admin.py``; the server
reads the tables on every request, so a new or revoked token counts at once. Every check and
the use it consumes happen in one write transaction, and the certificate is signed inside it:
a refused or failed request consumes nothing and issues nothing.
"""

from __future__ import annotations

import fnmatch
import hashlib
import hmac
import logging
import secrets
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from statusdash import hostid
from statusdash.errors import Invalid, StatusdashError
from statusdash.server.db import connect
from statusdash.server.tags import apply_token_tags

if TYPE_CHECKING:
    from cryptography import x509

T = TypeVar("T")
PREFIX = "sdt"
log = logging.getLogger("statusdash.enroll")


class Refused(StatusdashError):
    """An enrollment or renewal the server will not serve; ``status`` is its HTTP answer."""

    def __init__(self, status: int, detail: str, error: str) -> None:
        super().__init__(detail)
        self.status = status
        self.error = error


@dataclass(frozen=True)
class Outcome:
    """What the agent gets: a certificate, or a request id to poll while it waits."""

    status: str  # "issued" or "pending"
    host: str
    request_id: str
    certificate: str | None = None
    serial: str | None = None
    detail: str = ""


def token_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


# --- the server's side ------------------------------------------------------------------------
class Enroller:
    """Serves ``/api/enroll``: checks tokens and CSRs, signs, keeps the pending requests."""

    def __init__(self, db_path: Path, vault: Path, cert_days: int, pending_max: int) -> None:
        self.db_path = db_path
        self.vault = vault
        self.cert_days = cert_days
        self.pending_max = pending_max

    def ca_pem(self) -> str:
        from statusdash.pki.vault import paths

        p = paths(self.vault).ca_cert
        if not p.exists():
            raise Refused(503, "this server has no CA certificate", "no_ca")
        return p.read_text()

    def _txn(self) -> sqlite3.Connection:
        conn = connect(self.db_path)
        conn.execute("BEGIN IMMEDIATE")
        return conn

    def enroll(self, token: str, csr_pem: str, address: str) -> Outcome:
        """Check the token and the CSR, consume one use, and sign or queue for approval."""
        csr, host = _parse_csr(csr_pem)
        key = _key_of(csr)
        conn = self._txn()
        try:
            row = self._token(conn, token)
            pattern = str(row["hosts"])
            if not fnmatch.fnmatchcase(host, pattern):
                raise Refused(
                    403,
                    f"host {host!r} is outside this token's hosts {pattern!r}",
                    "host_not_allowed",
                )
            seen = "SELECT 1 FROM enroll_requests WHERE key_sha256 = ?"
            if conn.execute(seen, (key,)).fetchone():
                raise Refused(409, "this key was enrolled already: a replayed request", "replay")
            reason = _vault_call(lambda: self._held_by_other(host, key))
            if reason:  # a newer request of the host replaces one that waits (an agent rerun)
                conn.execute(
                    "UPDATE enroll_requests SET state = 'superseded', decided_at = ?"
                    " WHERE host = ? AND state IN ('pending', 'approved')",
                    (time.time(), host),
                )
                waiting = conn.execute(
                    "SELECT count(*) FROM enroll_requests WHERE state = 'pending'"
                ).fetchone()[0]
                if waiting >= self.pending_max:
                    raise Refused(
                        429,
                        f"{waiting} enrollments wait for approval already (ENROLL_PENDING_MAX)",
                        "too_many_pending",
                    )
            request_id = secrets.token_urlsafe(24)
            conn.execute(
                "UPDATE enroll_tokens SET uses = uses + 1 WHERE token_id = ?", (row["token_id"],)
            )
            conn.execute(
                "INSERT INTO enroll_requests (request_id, host, token_id, key_sha256, csr, state,"
                " reason, address, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    request_id,
                    host,
                    row["token_id"],
                    key,
                    csr_pem,
                    "pending" if reason else "approved",
                    reason,
                    address[:64],
                    time.time(),
                ),
            )
            if reason:
                conn.execute("COMMIT")
                log.warning("enrollment of %s waits for approval: %s", host, reason)
                return Outcome("pending", host, request_id, detail=reason)
            out = self._issue(conn, request_id, host, csr_pem)
            conn.execute("COMMIT")
            return out
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        finally:
            conn.close()

    def poll(self, request_id: str) -> Outcome:
        """A waiting request: still pending, or (approved) signed now, or the certificate."""
        conn = self._txn()
        try:
            row = conn.execute(
                "SELECT host, state, csr, certificate, serial, reason FROM enroll_requests"
                " WHERE request_id = ?",
                (request_id,),
            ).fetchone()
            if row is None:
                raise Refused(404, "no such enrollment request", "not_found")
            host, state, csr_pem, cert, serial, reason = row
            if state == "pending":
                conn.execute("COMMIT")
                return Outcome("pending", host, request_id, detail=reason)
            if state == "issued":
                conn.execute("COMMIT")
                return Outcome("issued", host, request_id, cert, serial)
            if state != "approved":  # superseded by a newer request of the host
                raise Refused(409, f"a newer enrollment of {host!r} replaced this one", state)
            out = self._issue(conn, request_id, host, csr_pem)
            conn.execute("COMMIT")
            return out
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        finally:
            conn.close()

    def renew(self, host: str, serial: int, csr_pem: str) -> Outcome:
        """A new certificate for the caller's host, for the CSR's key (the same or a new one),
        if the caller holds the key of the host's current certificate and is not revoked.

        The presented certificate may be one that a renewal already replaced (same key): an
        agent whose answer was lost, or that could not write it, must be able to try again.
        """
        from cryptography.hazmat.primitives import serialization

        csr, cn = _parse_csr(csr_pem)
        if cn != host:
            detail = f"the CSR names {cn!r}; this certificate is {host!r}"
            raise Refused(403, detail, "host_mismatch")
        if serial in _vault_call(lambda: self._revoked()):
            raise Refused(401, f"certificate of {host} has been revoked", "revoked")
        if not _vault_call(lambda: self._holds_current_key(host, serial)):
            raise Refused(
                409,
                f"only the key of {host}'s current certificate can renew; this certificate"
                " was replaced by one for another key",
                "not_current",
            )
        cert = _sign(self.vault, csr, host, self.cert_days)
        pem = cert.public_bytes(serialization.Encoding.PEM).decode()
        log.info("renewed the certificate of %s (serial %x)", host, cert.serial_number)
        return Outcome("issued", host, "", pem, f"{cert.serial_number:x}")

    def _revoked(self) -> set[int]:
        from statusdash.pki.vault import revoked_serials

        return revoked_serials(self.vault)

    def _holds_current_key(self, host: str, serial: int) -> bool:
        from cryptography.hazmat.primitives.asymmetric import ec

        from statusdash.pki.ca import key_fingerprint
        from statusdash.pki.check import load_cert
        from statusdash.pki.vault import paths

        p = paths(self.vault)
        if not p.client_cert(host).exists():
            return False
        current = load_cert(p.client_cert(host))
        if current.serial_number == serial:
            return True
        retired = p.retired_dir / f"{host}.{serial:x}.crt"
        if not retired.exists():
            return False
        keys = [current.public_key(), load_cert(retired).public_key()]
        if not all(isinstance(k, ec.EllipticCurvePublicKey) for k in keys):
            return False
        return len({key_fingerprint(k) for k in keys}) == 1  # type: ignore[arg-type]

    # --- helpers -------------------------------------------------------------------------------
    def _token(self, conn: sqlite3.Connection, token: str) -> sqlite3.Row:
        parts = token.strip().split("_", 2)
        if len(parts) != 3 or parts[0] != PREFIX or not parts[1] or not parts[2]:
            raise Refused(401, "not an enrollment token (sdt_...)", "token_refused")
        conn.row_factory = sqlite3.Row
        row = conn.execute("SELECT * FROM enroll_tokens WHERE token_id = ?", (parts[1],)).fetchone()
        conn.row_factory = None
        ok = hmac.compare_digest(token_hash(parts[2]), row["secret_hash"] if row else "0" * 64)
        if row is None or not ok:
            raise Refused(401, "unknown enrollment token", "token_refused")
        if row["revoked_at"] is not None:
            raise Refused(401, "this enrollment token was revoked", "token_refused")
        if time.time() >= row["expires_at"]:
            raise Refused(401, "this enrollment token has expired", "token_refused")
        if row["uses"] >= row["uses_max"]:
            raise Refused(
                401, f"this enrollment token is used up ({row['uses_max']} uses)", "token_refused"
            )
        return row  # type: ignore[no-any-return]

    def _held_by_other(self, host: str, key: str) -> str:
        """Why ``host`` needs an approval: its current valid certificate has another key."""
        from cryptography.hazmat.primitives.asymmetric import ec

        from statusdash.pki.ca import key_fingerprint
        from statusdash.pki.check import load_cert, utcnow
        from statusdash.pki.vault import paths, revoked_serials

        current = paths(self.vault).client_cert(host)
        if not current.exists():
            return ""
        cert = load_cert(current)
        if utcnow() > cert.not_valid_after_utc or cert.serial_number in revoked_serials(self.vault):
            return ""
        pub = cert.public_key()
        if isinstance(pub, ec.EllipticCurvePublicKey) and key_fingerprint(pub) == key:
            return ""
        return (
            f"{host} holds a valid certificate (serial {cert.serial_number:x}, until"
            f" {cert.not_valid_after_utc:%Y-%m-%d}) for another key"
        )

    def _issue(self, conn: sqlite3.Connection, request_id: str, host: str, csr_pem: str) -> Outcome:
        from cryptography.hazmat.primitives import serialization

        csr, _ = _parse_csr(csr_pem)
        cert = _sign(self.vault, csr, host, self.cert_days)
        pem = cert.public_bytes(serialization.Encoding.PEM).decode()
        serial = f"{cert.serial_number:x}"
        conn.execute(
            "UPDATE enroll_requests SET state = 'issued', certificate = ?, serial = ?,"
            " decided_at = coalesce(decided_at, ?) WHERE request_id = ?",
            (pem, serial, time.time(), request_id),
        )
        row = conn.execute(
            "SELECT t.tags FROM enroll_requests r JOIN enroll_tokens t ON t.token_id = r.token_id"
            " WHERE r.request_id = ?",
            (request_id,),
        ).fetchone()
        if row is not None:  # the token's tags become server tags of the host (server/tags.py)
            apply_token_tags(conn, host, row[0])
        log.info("enrolled %s: certificate serial %s", host, serial)
        return Outcome("issued", host, request_id, pem, serial)


def _vault_call(fn: Callable[[], T]) -> T:
    """A read of the vault; a vault this server cannot read is a 503, not a 500."""
    from statusdash.pki.check import PkiError

    try:
        return fn()
    except PkiError as exc:
        raise Refused(503, f"this server cannot sign: {exc}", "no_ca") from None


def _sign(
    vault: Path, csr: x509.CertificateSigningRequest, host: str, days: int
) -> x509.Certificate:
    from statusdash.pki.ca import sign_csr

    return _vault_call(lambda: sign_csr(vault, csr, host, days))


def _key_of(csr: x509.CertificateSigningRequest) -> str:
    from cryptography.hazmat.primitives.asymmetric import ec

    from statusdash.pki.ca import key_fingerprint

    pub = csr.public_key()
    assert isinstance(pub, ec.EllipticCurvePublicKey)  # load_csr refuses any other key
    return key_fingerprint(pub)


def _parse_csr(pem: str) -> tuple[x509.CertificateSigningRequest, str]:
    """The CSR (signature and key checked) and the host id its CN asks for; Invalid if unfit."""
    from cryptography.x509.oid import NameOID

    from statusdash.pki.ca import load_csr

    try:
        csr = load_csr(pem.encode())
    except (ValueError, UnicodeEncodeError) as exc:
        raise Invalid(f"csr: {exc}") from None
    names = csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    host = str(names[0].value) if len(names) == 1 else ""
    if not hostid.is_valid(host):
        raise Invalid(f"csr: the subject CN {host!r} is not a valid host id")
    return csr, host
