"""Reading and diagnosing one certificate: parse it, its role, its dates, its chain, its usage.

Nothing here needs the CA key or the vault: the agent diagnoses its own certificate with
``diagnose_client_cert``, the server reads its peers' with ``parse_client_cert``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal, NamedTuple, get_args

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from statusdash.errors import StatusdashError

Role = Literal["agent", "viewer"]
ROLES: tuple[str, ...] = get_args(Role)
Purpose = Literal["auto", "client", "server"]


class PkiError(StatusdashError):
    """A PKI operation cannot be done; the message says why and what to do."""


class ClientCertInfo(NamedTuple):
    cn: str
    role: str | None
    serial: int
    not_after: float | None = None  # the certificate's end, Unix time


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
    end = cert.not_valid_after_utc.timestamp()
    return ClientCertInfo(cn, role_of(cert), cert.serial_number, end)


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
