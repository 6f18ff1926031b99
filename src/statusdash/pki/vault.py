"""The vault: where each file lives, the revocation record and the CRL, and what it holds.

Files keep the seed layout under the vault (``VAULT_PATH``, default ``vault/certs``):
``ca/ca.crt``, ``ca/ca.key``, ``ca/crl.pem``, ``ca/revoked.json`` (what the CRL is rebuilt
from), ``server/status.crt|.key``, ``clients/<name>.crt|.key`` and ``clients/retired/`` (rotated
certificates). Reading only: ``statusdash.pki.ca`` writes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import NamedTuple

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from statusdash.pki.check import (
    PkiError,
    Purpose,
    VerifyResult,
    check_cert,
    common_name,
    load_cert,
    role_of,
    utcnow,
)

CRL_REFRESH_MARGIN = timedelta(days=2)


class VaultPaths(NamedTuple):
    """Where each file of the vault lives."""

    root: Path
    ca_dir: Path
    ca_cert: Path
    ca_key: Path
    crl: Path
    revoked_db: Path
    server_cert: Path
    server_key: Path
    clients_dir: Path
    retired_dir: Path

    def client_cert(self, name: str) -> Path:
        return self.clients_dir / f"{name}.crt"

    def client_key(self, name: str) -> Path:
        return self.clients_dir / f"{name}.key"


def paths(vault: Path | str) -> VaultPaths:
    r = Path(vault)
    ca, server, clients = r / "ca", r / "server", r / "clients"
    return VaultPaths(
        r, ca, ca / "ca.crt", ca / "ca.key", ca / "crl.pem", ca / "revoked.json",
        server / "status.crt", server / "status.key", clients, clients / "retired",
    )  # fmt: skip


@dataclass(frozen=True)
class CertRecord:
    """One line of ``certs ls``; ``role`` is ca, server, agent, viewer or '?'."""

    name: str
    subject: str
    role: str
    serial: int
    not_before: datetime
    not_after: datetime
    revoked: bool
    retired: bool
    path: Path

    def status(self, now: datetime | None = None) -> str:
        now = now or utcnow()
        if self.revoked:
            return "revoked"
        if now > self.not_after:
            return "expired"
        if now < self.not_before:
            return "not-yet-valid"
        return "retired" if self.retired else "valid"


def read_revoked_db(p: VaultPaths) -> dict[str, object]:
    try:
        data = json.loads(p.revoked_db.read_text())
    except FileNotFoundError:
        return {"crl_number": 0, "revoked": []}
    except (OSError, ValueError) as exc:
        raise PkiError(f"cannot read {p.revoked_db}: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("revoked"), list):
        raise PkiError(f"{p.revoked_db} is not a revocation record")
    return data


def revoked_entries(db: dict[str, object]) -> list[dict[str, str]]:
    return db["revoked"]  # type: ignore[return-value]


def load_crl(vault: Path | str) -> x509.CertificateRevocationList:
    """The CRL, checked against the CA's signature; PkiError if missing, unreadable or forged."""
    p = paths(vault)
    try:
        crl = x509.load_pem_x509_crl(p.crl.read_bytes())
    except FileNotFoundError:
        raise PkiError(f"no CRL at {p.crl}: run `statusdash certs crl`") from None
    except (OSError, ValueError) as exc:
        raise PkiError(f"cannot read the CRL {p.crl}: {exc}") from None
    pub = load_cert(p.ca_cert).public_key()
    if not isinstance(pub, ec.EllipticCurvePublicKey) or not crl.is_signature_valid(pub):
        raise PkiError(f"{p.crl} is not signed by the CA in {p.ca_cert}")
    return crl


def crl_needs_refresh(
    vault: Path | str, margin: timedelta = CRL_REFRESH_MARGIN, *, now: datetime | None = None
) -> bool:
    """True if the CRL is missing, unreadable, or has less than ``margin`` left to nextUpdate."""
    try:
        next_update = load_crl(vault).next_update_utc
    except PkiError:
        return True
    return next_update is None or next_update - (now or utcnow()) < margin


def revoked_serials(vault: Path | str) -> set[int]:
    """Serials revoked in ``ca/revoked.json`` and in the (signature-checked) CRL."""
    p = paths(vault)
    out = {int(e["serial"], 16) for e in revoked_entries(read_revoked_db(p))}
    if p.crl.exists():
        out |= {r.serial_number for r in load_crl(vault)}
    return out


# --- listing and checking --------------------------------------------------------------------
def list_certs(vault: Path | str) -> list[CertRecord]:
    """The CA, the server certificate and every client certificate (retired ones too)."""
    p = paths(vault)
    revoked = revoked_serials(vault)
    found: list[tuple[str, str | None, Path, bool]] = []
    if p.ca_cert.exists():
        found.append(("ca", "ca", p.ca_cert, False))
    if p.server_cert.exists():
        found.append(("server", "server", p.server_cert, False))
    found += [(f.stem, None, f, False) for f in sorted(p.clients_dir.glob("*.crt"))]
    found += [(f.name.split(".")[0], None, f, True) for f in sorted(p.retired_dir.glob("*.crt"))]
    records = []
    for name, role, path, retired in found:
        cert = load_cert(path)
        records.append(
            CertRecord(
                name=name if role else common_name(cert) or name,
                subject=cert.subject.rfc4514_string(),
                role=role or role_of(cert) or "?",
                serial=cert.serial_number,
                not_before=cert.not_valid_before_utc,
                not_after=cert.not_valid_after_utc,
                revoked=cert.serial_number in revoked,
                retired=retired,
                path=path,
            )
        )
    return records


def verify_cert(
    vault: Path | str, path: Path, purpose: Purpose = "auto", *, now: datetime | None = None
) -> VerifyResult:
    """Does ``path`` chain to our CA, is it valid now, unrevoked, with the right EKU; why not."""
    p = paths(vault)
    cert = load_cert(path)
    if not p.ca_cert.exists():
        raise PkiError(f"no CA certificate at {p.ca_cert}: run `statusdash certs init`")
    return check_cert(cert, load_cert(p.ca_cert), revoked_serials(vault), path, purpose, now)
