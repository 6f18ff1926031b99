"""The read-only side of the PKI: parse and check certificates, read the vault, the CRL and the
revocation record. Nothing here needs the CA key.

:mod:`statusdash.pki` (which issues and revokes) re-exports all of it; the agent's diagnosis and
the server's TLS layer only need this module.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal, NamedTuple, get_args

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

Role = Literal["agent", "viewer"]
ROLES: tuple[str, ...] = get_args(Role)
Purpose = Literal["auto", "client", "server"]
CRL_REFRESH_MARGIN = timedelta(days=2)


class PkiError(Exception):
    """A PKI operation cannot be done; the message says why and what to do."""


class ClientCertInfo(NamedTuple):
    cn: str
    role: str | None
    serial: int


@dataclass(frozen=True)
class VerifyResult:
    """Outcome of a check: ``ok``, or the ``problems`` found, one sentence each."""

    path: Path
    subject: str
    role: str | None
    serial: int
    not_after: datetime
    purpose: str
    problems: list[str]

    @property
    def ok(self) -> bool:
        return not self.problems


def utcnow() -> datetime:
    return datetime.now(UTC)


def load_cert(path: Path) -> x509.Certificate:
    """A certificate from a PEM or DER file; PkiError if unreadable."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise PkiError(f"cannot read {path}: {exc.strerror or exc}") from None
    return parse_cert(data, str(path))


def parse_cert(data: bytes, what: str = "the data") -> x509.Certificate:
    try:
        if b"-----BEGIN" in data:
            return x509.load_pem_x509_certificate(data)
        return x509.load_der_x509_certificate(data)
    except ValueError:
        raise PkiError(f"{what} is not a certificate (PEM or DER)") from None


def load_key(path: Path) -> ec.EllipticCurvePrivateKey:
    """An unencrypted ECDSA private key from a PEM file; PkiError otherwise."""
    try:
        key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    except OSError as exc:
        raise PkiError(f"cannot read {path}: {exc.strerror or exc}") from None
    except (ValueError, TypeError):
        raise PkiError(f"{path} is not an unencrypted PEM private key") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise PkiError(f"{path} is not an ECDSA key")
    return key


def common_name(cert: x509.Certificate) -> str | None:
    attrs = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(attrs[0].value) if attrs else None


def role_of(cert: x509.Certificate) -> str | None:
    """The client role recorded in the subject OU (agent or viewer), or None."""
    for attr in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME):
        if attr.value in ROLES:
            return str(attr.value)
    return None


def parse_client_cert(data: bytes) -> ClientCertInfo:
    """(cn, role, serial) of a PEM or DER client certificate; ValueError if it has no CN."""
    try:
        cert = parse_cert(data, "the client certificate")
    except PkiError as exc:
        raise ValueError(str(exc)) from None
    cn = common_name(cert)
    if not cn:
        raise ValueError("the client certificate has no common name")
    return ClientCertInfo(cn, role_of(cert), cert.serial_number)


def ekus(cert: x509.Certificate) -> list[x509.ObjectIdentifier]:
    try:
        return list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
    except x509.ExtensionNotFound:
        return []


def time_problems(cert: x509.Certificate, what: str, now: datetime) -> list[str]:
    if now < cert.not_valid_before_utc:
        when = f"{cert.not_valid_before_utc:%Y-%m-%d %H:%M} UTC"
        return [f"{what} is not valid yet (valid from {when}; check the clocks)"]
    if now > cert.not_valid_after_utc:
        return [f"{what} expired on {cert.not_valid_after_utc:%Y-%m-%d %H:%M} UTC"]
    return []


def issued_by(cert: x509.Certificate, ca: x509.Certificate) -> bool:
    """True if ``ca`` signed ``cert`` (names match and the signature verifies)."""
    if cert.issuer != ca.subject:
        return False
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def check_cert(
    cert: x509.Certificate,
    ca: x509.Certificate,
    revoked: set[int],
    path: Path,
    purpose: Purpose = "auto",
    now: datetime | None = None,
) -> VerifyResult:
    """Chain, validity period, revocation, EKU and role of ``cert`` against ``ca``."""
    now = now or utcnow()
    usages = ekus(cert)
    if purpose == "auto":
        server_only = ExtendedKeyUsageOID.SERVER_AUTH in usages
        server_only &= ExtendedKeyUsageOID.CLIENT_AUTH not in usages
        purpose = "server" if server_only else "client"
    problems = time_problems(ca, "the CA certificate", now)
    if not issued_by(cert, ca):
        problems.append(
            f"not issued by our CA ({ca.subject.rfc4514_string()}); its issuer is"
            f" {cert.issuer.rfc4514_string()}"
        )
    problems += time_problems(cert, "the certificate", now)
    if cert.serial_number in revoked:
        problems.append(f"revoked (serial {cert.serial_number:x} is on the CRL)")
    want = (
        ExtendedKeyUsageOID.CLIENT_AUTH if purpose == "client" else ExtendedKeyUsageOID.SERVER_AUTH
    )
    if want not in usages:
        problems.append(f"no {purpose}Auth extended key usage: it cannot be used as a {purpose}")
    role = role_of(cert)
    if purpose == "client" and role is None:
        problems.append("no role (agent or viewer) in the subject OU")
    return VerifyResult(
        path=path,
        subject=cert.subject.rfc4514_string(),
        role=role,
        serial=cert.serial_number,
        not_after=cert.not_valid_after_utc,
        purpose=purpose,
        problems=problems,
    )


def diagnose_client_cert(
    ca_path: Path, cert_path: Path, key_path: Path, *, now: datetime | None = None
) -> list[str]:
    """Likely reasons a server refuses our client certificate; empty if none is visible here.

    An empty list with a refused handshake points at revocation, or at a server that trusts
    another CA than ``ca_path``: neither can be seen from the agent's side.
    """
    now = now or utcnow()
    try:
        cert = load_cert(cert_path)
    except PkiError as exc:
        return [f"client certificate: {exc}"]
    problems = time_problems(cert, f"the client certificate {cert_path}", now)
    try:
        ca = load_cert(ca_path)
    except PkiError as exc:
        problems.append(f"CA certificate: {exc}")
    else:
        problems += time_problems(ca, f"the CA certificate {ca_path}", now)
        if not issued_by(cert, ca):
            problems.append(
                f"{cert_path} was not issued by the CA in {ca_path} (issuer"
                f" {cert.issuer.rfc4514_string()}, CA {ca.subject.rfc4514_string()})"
            )
    try:
        key = load_key(key_path)
    except PkiError as exc:
        problems.append(f"private key: {exc}")
    else:
        if key.public_key() != cert.public_key():
            problems.append(f"the key {key_path} does not match the certificate {cert_path}")
    if ExtendedKeyUsageOID.CLIENT_AUTH not in ekus(cert):
        problems.append(
            f"{cert_path} lacks the clientAuth extended key usage (a server certificate?)"
        )
    return problems


# --- the vault ----------------------------------------------------------------------------------
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
