"""Issuing and revoking: the CA, server and client certificates, the revocation record and CRL.

Keys are ECDSA P-256, created with mode 0600. A client's role is its subject OU (``agent`` or
``viewer``). Where the files live: ``statusdash.pki.vault``.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import ipaddress
import json
import os
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from statusdash import hostid
from statusdash.fsutil import PRIVATE_DIR, PRIVATE_FILE, atomic_write
from statusdash.pki.check import ROLES, PkiError, load_cert, load_key, utcnow
from statusdash.pki.vault import (
    VaultPaths,
    list_certs,
    paths,
    read_revoked_db,
    revoked_entries,
)

PUBLIC_FILE = 0o644
ORG = "statusdash"
CA_DAYS = 3650
SERVER_DAYS = 825
CLIENT_DAYS = 365
CRL_VALIDITY = timedelta(days=7)
BACKDATE = timedelta(minutes=5)  # tolerate small clock skew between the CA host and peers


@dataclass(frozen=True)
class IssuedCert:
    name: str
    role: str
    serial: int
    not_before: datetime
    not_after: datetime
    cert_path: Path
    key_path: Path


@dataclass(frozen=True)
class RevokeResult:
    name: str
    serial: int
    already: bool
    crl_next_update: datetime


# --- files ---------------------------------------------------------------------------------
def _write_cert(path: Path, cert: x509.Certificate) -> None:
    atomic_write(path, cert.public_bytes(serialization.Encoding.PEM), PUBLIC_FILE)


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    atomic_write(path, pem, PRIVATE_FILE)


@contextlib.contextmanager
def locked(p: VaultPaths) -> Iterator[None]:
    """Serialise changes to the CA: the CLI and a running server may both re-issue the CRL."""
    p.ca_dir.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR)
    fd = os.open(p.ca_dir / ".lock", os.O_RDWR | os.O_CREAT, PRIVATE_FILE)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _load_ca(p: VaultPaths) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    if not p.ca_cert.exists() or not p.ca_key.exists():
        raise PkiError(f"no CA in {p.ca_dir} (ca.crt and ca.key): run `statusdash certs init`")
    return load_cert(p.ca_cert), load_key(p.ca_key)


def _name(cn: str, ou: str | None = None) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORG)]
    if ou:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, ou))
    return x509.Name([*attrs, x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _key_usage(ca: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True, content_commitment=False, key_encipherment=False,
        data_encipherment=False, key_agreement=False, key_cert_sign=ca, crl_sign=ca,
        encipher_only=False, decipher_only=False,
    )  # fmt: skip


# --- issuing ---------------------------------------------------------------------------------
def init_ca(
    vault: Path | str, force: bool = False, days: int = CA_DAYS, cn: str = "statusdash CA"
) -> Path:
    """Create the CA key, certificate and an empty CRL; refuse to replace a CA without force."""
    p = paths(vault)
    if not force and (p.ca_cert.exists() or p.ca_key.exists()):
        raise PkiError(
            f"a CA already exists in {p.ca_dir}; refusing to overwrite it (every certificate it"
            " issued would stop working). Pass --force to replace it."
        )
    key = ec.generate_private_key(ec.SECP256R1())
    now = utcnow()
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(_name(cn))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(ca=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    with locked(p):
        _write_key(p.ca_key, key)
        _write_cert(p.ca_cert, cert)
        _write_revoked_db(p, {"crl_number": 0, "revoked": []})
        _reissue_crllocked(p, CRL_VALIDITY, None)
    return p.ca_cert


def _issue(
    p: VaultPaths,
    subject: x509.Name,
    eku: x509.ObjectIdentifier,
    days: int,
    not_before: datetime | None = None,
    not_after: datetime | None = None,
    san: list[x509.GeneralName] | None = None,
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    ca_cert, ca_key = _load_ca(p)
    now = utcnow()
    nb = not_before or now - BACKDATE
    na = not_after or now + timedelta(days=days)
    if na <= nb:
        raise ValueError("the certificate would expire before it becomes valid")
    key = ec.generate_private_key(ec.SECP256R1())
    return _build(ca_cert, ca_key, subject, eku, key.public_key(), nb, na, san), key


def _build(
    ca_cert: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    subject: x509.Name,
    eku: x509.ObjectIdentifier,
    public_key: ec.EllipticCurvePublicKey,
    nb: datetime,
    na: datetime,
    san: list[x509.GeneralName] | None = None,
) -> x509.Certificate:
    ca_ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    aki = x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca_cert.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(nb)
        .not_valid_after(na)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(ca=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([eku]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(aki, critical=False)
    )
    if san:
        builder = builder.add_extension(x509.SubjectAlternativeName(san), critical=False)
    return builder.sign(ca_key, hashes.SHA256())


def _parse_sans(sans: list[str]) -> list[x509.GeneralName]:
    out: list[x509.GeneralName] = []
    for raw in dict.fromkeys(s.strip() for s in sans):
        try:
            out.append(x509.IPAddress(ipaddress.ip_address(raw)))
            continue
        except ValueError:
            pass
        labels = raw.removeprefix("*.").split(".")
        if not all(lb and len(lb) <= 63 and lb.replace("-", "").isalnum() for lb in labels):
            raise ValueError(f"{raw!r} is neither a DNS name nor an IP address")
        if not raw.isascii():
            raise ValueError(f"{raw!r}: give internationalised names in their xn-- form")
        out.append(x509.DNSName(raw.lower()))
    if not out:
        raise ValueError("give at least one --san (a DNS name or an IP address)")
    return out


def issue_server_cert(
    vault: Path | str, sans: list[str], days: int = SERVER_DAYS, *, force: bool = False
) -> IssuedCert:
    """The server certificate (EKU serverAuth) for the DNS names and IPs clients connect to."""
    p = paths(vault)
    names = _parse_sans(sans)
    if p.server_cert.exists() and not force:
        raise PkiError(f"{p.server_cert} exists; pass --force to replace it")
    subject = _name(str(names[0].value), "server")
    cert, key = _issue(p, subject, ExtendedKeyUsageOID.SERVER_AUTH, days, san=names)
    _write_key(p.server_key, key)
    _write_cert(p.server_cert, cert)
    return _issued("server", "server", cert, p.server_cert, p.server_key)


def issue_client_cert(
    vault: Path | str,
    name: str,
    role: str = "agent",
    days: int = CLIENT_DAYS,
    *,
    force: bool = False,
    not_before: datetime | None = None,
    not_after: datetime | None = None,
) -> IssuedCert:
    """A client certificate: CN = host id, OU = role, EKU clientAuth.

    With ``force`` an existing certificate of that name is moved to ``clients/retired/`` (it
    stays valid until it expires or is revoked) and its old key is deleted from the vault.
    """
    if not hostid.is_valid(name):
        raise ValueError(
            f"{name!r} is not a valid host id (lowercase letters, digits, '.', '_', '-';"
            " at most 63 characters)"
        )
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    p = paths(vault)
    crt, key_path = p.client_cert(name), p.client_key(name)
    old = load_cert(crt) if crt.exists() else None
    if old is not None and not force:
        raise PkiError(
            f"{name} already has a certificate (serial {old.serial_number:x}, valid until"
            f" {old.not_valid_after_utc:%Y-%m-%d}); pass --force to issue a new one"
            " (the old one is retired, not revoked)"
        )
    eku = ExtendedKeyUsageOID.CLIENT_AUTH
    cert, key = _issue(p, _name(name, role), eku, days, not_before, not_after)
    if old is not None:
        p.retired_dir.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR)
        os.replace(crt, p.retired_dir / f"{name}.{old.serial_number:x}.crt")
    _write_key(key_path, key)
    _write_cert(crt, cert)
    return _issued(name, role, cert, crt, key_path)


def fingerprint_pem(pem: bytes) -> str:
    """A certificate's SHA-256 fingerprint (of its DER), lowercase hex: what enrollment pins."""
    return hashlib.sha256(ssl.PEM_cert_to_DER_cert(pem.decode("ascii"))).hexdigest()


def ca_fingerprint(vault: Path | str) -> str:
    """The fingerprint of the vault's CA certificate (``fingerprint_pem``)."""
    p = paths(vault)
    if not p.ca_cert.exists():
        raise PkiError(f"no CA certificate at {p.ca_cert}: run `statusdash certs init`")
    return fingerprint_pem(p.ca_cert.read_bytes())


def load_csr(pem: bytes) -> x509.CertificateSigningRequest:
    """A PEM CSR whose signature is good (its sender holds the key) for a P-256 key; else
    ``ValueError`` saying why."""
    try:
        csr = x509.load_pem_x509_csr(pem)
    except ValueError as exc:
        raise ValueError(f"the CSR cannot be read: {exc}") from None
    if not csr.is_signature_valid:
        raise ValueError("the CSR's signature is not valid")
    key = csr.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
        raise ValueError("the CSR's key must be ECDSA P-256")
    return csr


def make_csr(key: ec.EllipticCurvePrivateKey, name: str) -> bytes:
    """A PEM CSR for ``key`` asking for CN = ``name`` (the host side of enrollment)."""
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostid.check(name))])
    csr = x509.CertificateSigningRequestBuilder().subject_name(subject).sign(key, hashes.SHA256())
    return csr.public_bytes(serialization.Encoding.PEM)


def key_fingerprint(public_key: ec.EllipticCurvePublicKey) -> str:
    """SHA-256 of a public key's SubjectPublicKeyInfo, hex: tells two keys apart."""
    der = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(der).hexdigest()


def sign_csr(
    vault: Path | str,
    csr: x509.CertificateSigningRequest,
    name: str,
    days: int = CLIENT_DAYS,
    *,
    not_after: datetime | None = None,
) -> x509.Certificate:
    """An agent certificate for the CSR's key (the key never reaches us): CN = ``name`` whatever
    the CSR asks, OU agent, EKU clientAuth. It becomes ``clients/<name>.crt``; a certificate it
    replaces moves to ``clients/retired/`` (still valid until revoked or expired) and a vault
    key that does not belong to the new certificate is deleted."""
    hostid.check(name)
    public_key = csr.public_key()
    if not isinstance(public_key, ec.EllipticCurvePublicKey):
        raise ValueError("the CSR's key must be ECDSA P-256")
    p = paths(vault)
    ca_cert, ca_key = _load_ca(p)
    now = utcnow()
    na = not_after or now + timedelta(days=days)
    cert = _build(
        ca_cert, ca_key, _name(name, "agent"), ExtendedKeyUsageOID.CLIENT_AUTH, public_key,
        now - BACKDATE, na,
    )  # fmt: skip
    crt, key_path = p.client_cert(name), p.client_key(name)
    with locked(p):
        if crt.exists():
            old = load_cert(crt)
            p.retired_dir.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR)
            os.replace(crt, p.retired_dir / f"{name}.{old.serial_number:x}.crt")
        if key_path.exists() and key_fingerprint(load_key(key_path).public_key()) != (
            key_fingerprint(public_key)
        ):
            key_path.unlink()  # the host holds the only key of the new certificate
        _write_cert(crt, cert)
    return cert


def _issued(name: str, role: str, cert: x509.Certificate, crt: Path, key: Path) -> IssuedCert:
    nb, na = cert.not_valid_before_utc, cert.not_valid_after_utc
    return IssuedCert(name, role, cert.serial_number, nb, na, crt, key)


# --- revocation ------------------------------------------------------------------------------
def _write_revoked_db(p: VaultPaths, data: dict[str, object]) -> None:
    atomic_write(p.revoked_db, json.dumps(data, indent=1) + "\n", PUBLIC_FILE)


def revoke(
    vault: Path | str, name: str | None = None, *, serial: int | None = None
) -> RevokeResult:
    """Revoke the current certificate of ``name`` (or one of ours by ``serial``); new CRL."""
    p = paths(vault)
    if serial is None:
        if name is None or not p.client_cert(name).exists():
            raise PkiError(f"no certificate for {name!r} in {p.clients_dir}")
        serial = load_cert(p.client_cert(name)).serial_number
    else:
        match = [r for r in list_certs(vault) if r.serial == serial and r.role != "ca"]
        if not match:
            raise PkiError(f"no certificate with serial {serial:x} in {p.root}")
        name = match[0].name
    with locked(p):
        db = read_revoked_db(p)
        already = any(int(e["serial"], 16) == serial for e in revoked_entries(db))
        if not already:
            entry = {"serial": f"{serial:x}", "name": name, "revoked_at": utcnow().isoformat()}
            revoked_entries(db).append(entry)
            _write_revoked_db(p, db)
        next_update = _reissue_crllocked(p, CRL_VALIDITY, None)
    return RevokeResult(name, serial, already, next_update)


def reissue_crl(
    vault: Path | str, validity: timedelta = CRL_VALIDITY, *, now: datetime | None = None
) -> datetime:
    """Sign a fresh CRL from ``ca/revoked.json`` (needs ca.key); returns its nextUpdate."""
    p = paths(vault)
    with locked(p):
        return _reissue_crllocked(p, validity, now)


def _reissue_crllocked(p: VaultPaths, validity: timedelta, now: datetime | None) -> datetime:
    ca_cert, ca_key = _load_ca(p)
    db = read_revoked_db(p)
    db["crl_number"] = number = int(str(db.get("crl_number", 0))) + 1
    last = (now or utcnow()).replace(microsecond=0)
    next_update = last + validity
    if now is None:
        # Backdated like certificates (clock skew), and always after the previous lastUpdate:
        # OpenSSL uses the newest of the CRLs it has loaded, and a future one not at all.
        last -= BACKDATE
        with contextlib.suppress(ValueError, OSError):
            prev = x509.load_pem_x509_crl(p.crl.read_bytes()).last_update_utc
            last = max(last, prev + timedelta(seconds=1))
    next_update = max(next_update, last + timedelta(seconds=1))
    ca_ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca_cert.subject)
        .last_update(last)
        .next_update(next_update)
        .add_extension(x509.CRLNumber(number), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False
        )
    )
    for e in revoked_entries(db):
        when = min(datetime.fromisoformat(e["revoked_at"]), last)
        entry = x509.RevokedCertificateBuilder().serial_number(int(e["serial"], 16))
        builder = builder.add_revoked_certificate(entry.revocation_date(when).build())
    crl = builder.sign(ca_key, hashes.SHA256())
    _write_revoked_db(p, db)
    atomic_write(p.crl, crl.public_bytes(serialization.Encoding.PEM), PUBLIC_FILE)
    return next_update
