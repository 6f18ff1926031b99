"""The PKI on real files: layout, key modes, roles, revocation, CRL lifetime, verification."""

from __future__ import annotations

import os
import stat
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from statusdash.errors import StatusdashError
from statusdash.pki.ca import init_ca, issue_client_cert, issue_server_cert, reissue_crl, revoke
from statusdash.pki.check import (
    PkiError,
    Purpose,
    diagnose_client_cert,
    load_cert,
    parse_client_cert,
    role_of,
    utcnow,
)
from statusdash.pki.vault import (
    crl_needs_refresh,
    list_certs,
    load_crl,
    paths,
    revoked_serials,
    verify_cert,
)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def vault(tmp_path: Path) -> Path:
    v = tmp_path / "vault"
    init_ca(v)
    issue_server_cert(v, ["localhost", "127.0.0.1"])
    issue_client_cert(v, "web01")
    issue_client_cert(v, "ops", "viewer")
    return v


@pytest.fixture
def other_vault(tmp_path: Path) -> Path:
    v = tmp_path / "other"
    init_ca(v)
    issue_client_cert(v, "web01")
    return v


def test_layout_and_file_modes(vault: Path) -> None:
    p = paths(vault)
    for key in (p.ca_key, p.server_key, p.client_key("web01"), p.client_key("ops")):
        assert mode(key) == 0o600, key
    for crt in (p.ca_cert, p.crl, p.server_cert, p.client_cert("web01")):
        assert mode(crt) == 0o644, crt
    assert mode(p.ca_dir) == 0o700
    assert not list(vault.rglob("*.tmp")), "no temporary files left behind"


def test_keys_are_0600_from_creation_whatever_the_umask(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    created: dict[str, int] = {}
    real_open, real_chmod = os.open, os.chmod

    def recording_open(path: Any, flags: int, mode: int = 0o777, **kw: Any) -> int:
        if flags & os.O_CREAT:
            created[os.fspath(path)] = mode
        return real_open(path, flags, mode, **kw)

    def temp_only_chmod(path: Any, mode: int, **kw: Any) -> None:
        # fsutil re-applies the mode it created a temporary file with (the umask may have cut
        # bits); the file a reader sees is never chmod-ed, and never more open than created.
        name = Path(path).name
        assert name.startswith(".") and name.endswith(".tmp"), f"chmod of {path}"
        assert created[os.fspath(path)] == mode, f"{path} chmod-ed to {mode:o}"
        real_chmod(path, mode, **kw)

    def no_fchmod(*_a: object, **_k: object) -> None:
        raise AssertionError("keys must be created 0600, not chmod-ed afterwards")

    monkeypatch.setattr(os, "open", recording_open)
    monkeypatch.setattr(os, "chmod", temp_only_chmod)
    monkeypatch.setattr(os, "fchmod", no_fchmod)
    old = os.umask(0)
    try:
        init_ca(tmp_path)
        issued = issue_client_cert(tmp_path, "web01")
    finally:
        os.umask(old)
    assert mode(paths(tmp_path).ca_key) == 0o600
    assert mode(issued.key_path) == 0o600
    key_temps = [m for path, m in created.items() if ".key." in Path(path).name]
    assert key_temps and set(key_temps) == {0o600}  # created private, not made so afterwards


def test_keys_are_ecdsa_p256(vault: Path) -> None:
    key = serialization.load_pem_private_key(paths(vault).client_key("web01").read_bytes(), None)
    assert key.curve.name == "secp256r1"  # type: ignore[union-attr]


def test_pki_errors_are_domain_errors(tmp_path: Path) -> None:
    with pytest.raises(StatusdashError, match="certs init"):  # what the CLI boundary prints
        issue_client_cert(tmp_path, "web01")


def test_init_refuses_to_overwrite_without_force(vault: Path) -> None:
    p = paths(vault)
    before = p.ca_cert.read_bytes(), p.ca_key.read_bytes()
    with pytest.raises(PkiError, match=r"already exists.*--force"):
        init_ca(vault)
    assert (p.ca_cert.read_bytes(), p.ca_key.read_bytes()) == before
    init_ca(vault, force=True)
    assert p.ca_cert.read_bytes() != before[0]
    assert verify_cert(vault, p.client_cert("web01")).problems  # old CA's cert is now foreign


def test_client_certificate_records_cn_role_and_client_eku(vault: Path) -> None:
    p = paths(vault)
    cert = load_cert(p.client_cert("ops"))
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "ops"
    assert role_of(cert) == "viewer"
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    pem = p.client_cert("web01").read_bytes()
    der = load_cert(p.client_cert("web01")).public_bytes(serialization.Encoding.DER)
    assert parse_client_cert(pem) == parse_client_cert(der)
    info = parse_client_cert(der)
    assert (info.cn, info.role) == ("web01", "agent")
    assert info.serial == load_cert(p.client_cert("web01")).serial_number


def test_server_certificate_has_sans_and_server_eku(vault: Path) -> None:
    cert = load_cert(paths(vault).server_cert)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH]
    with pytest.raises(PkiError, match="--force"):
        issue_server_cert(vault, ["localhost"])
    with pytest.raises(ValueError, match="neither a DNS name nor an IP"):
        issue_server_cert(vault, ["bad name!"], force=True)


@pytest.mark.parametrize("name", ["Web01", "a" * 64, "../etc", "-web", "", "web 01"])
def test_client_names_must_be_host_ids(vault: Path, name: str) -> None:
    with pytest.raises(ValueError, match="host id"):
        issue_client_cert(vault, name)


def test_unknown_role_refused(vault: Path) -> None:
    with pytest.raises(ValueError, match="role"):
        issue_client_cert(vault, "web02", "admin")


def test_reissue_needs_force_and_retires_the_old_certificate(vault: Path) -> None:
    p = paths(vault)
    old_serial = load_cert(p.client_cert("web01")).serial_number
    with pytest.raises(PkiError, match="already has a certificate"):
        issue_client_cert(vault, "web01")
    new = issue_client_cert(vault, "web01", force=True)
    assert new.serial != old_serial
    records = [r for r in list_certs(vault) if r.name == "web01"]
    assert {(r.serial, r.retired) for r in records} == {(old_serial, True), (new.serial, False)}
    revoke(vault, serial=old_serial)
    assert revoked_serials(vault) == {old_serial}
    assert verify_cert(vault, new.cert_path).ok


def test_list_certs(vault: Path) -> None:
    rows = {r.name: r for r in list_certs(vault)}
    assert {n: r.role for n, r in rows.items()} == {
        "ca": "ca",
        "server": "server",
        "web01": "agent",
        "ops": "viewer",
    }
    assert all(r.status() == "valid" and not r.revoked for r in rows.values())
    assert rows["web01"].subject == "CN=web01,OU=agent,O=statusdash"


def test_verify_reports_each_problem(vault: Path, other_vault: Path) -> None:
    p = paths(vault)
    now = utcnow()
    expired = issue_client_cert(
        vault, "old", not_before=now - timedelta(days=9), not_after=now - timedelta(days=1)
    )
    future = issue_client_cert(
        vault, "new", not_before=now + timedelta(days=1), not_after=now + timedelta(days=9)
    )
    assert verify_cert(vault, p.client_cert("web01")).ok
    assert verify_cert(vault, p.server_cert).ok  # auto: checked as a server certificate

    def problems(path: Path, purpose: Purpose = "auto") -> str:
        result = verify_cert(vault, path, purpose)
        assert not result.ok
        return " | ".join(result.problems)

    assert "expired on" in problems(expired.cert_path)
    assert "not valid yet" in problems(future.cert_path)
    assert "not issued by our CA" in problems(paths(other_vault).client_cert("web01"))
    assert "no clientAuth" in problems(p.server_cert, "client")
    revoke(vault, "web01")
    assert "revoked" in problems(p.client_cert("web01"))
    with pytest.raises(PkiError, match="not a certificate"):
        verify_cert(vault, p.ca_key)


def test_revoke_updates_crl_and_survives_reissue(vault: Path) -> None:
    p = paths(vault)
    serial = load_cert(p.client_cert("web01")).serial_number
    n0 = load_crl(vault).extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
    result = revoke(vault, "web01")
    assert (result.name, result.serial, result.already) == ("web01", serial, False)
    crl = load_crl(vault)
    assert crl.get_revoked_certificate_by_serial_number(serial) is not None
    assert crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number > n0
    reissue_crl(vault)
    assert load_crl(vault).get_revoked_certificate_by_serial_number(serial) is not None
    assert revoke(vault, "web01").already
    assert revoked_serials(vault) == {serial}
    assert {r.name for r in list_certs(vault) if r.revoked} == {"web01"}
    with pytest.raises(PkiError, match="no certificate"):
        revoke(vault, "ghost")


def test_crl_last_update_increases_even_within_one_second(vault: Path) -> None:
    first = load_crl(vault).last_update_utc
    reissue_crl(vault)
    second = load_crl(vault).last_update_utc
    reissue_crl(vault)
    third = load_crl(vault).last_update_utc
    assert first < second < third <= utcnow()


def test_crl_refresh_margin(vault: Path) -> None:
    assert not crl_needs_refresh(vault)  # a fresh CRL lasts 7 days
    next_update = reissue_crl(vault, timedelta(days=1))
    assert crl_needs_refresh(vault)  # < 2 days left
    assert not crl_needs_refresh(vault, timedelta(hours=12))
    assert next_update - utcnow() < timedelta(days=1, minutes=1)
    paths(vault).crl.unlink()
    assert crl_needs_refresh(vault)


def test_forged_crl_is_rejected(vault: Path, other_vault: Path) -> None:
    paths(vault).crl.write_bytes(paths(other_vault).crl.read_bytes())
    with pytest.raises(PkiError, match="not signed by the CA"):
        load_crl(vault)
    assert crl_needs_refresh(vault)


def test_diagnose_client_cert(vault: Path, other_vault: Path) -> None:
    p, o = paths(vault), paths(other_vault)
    now = utcnow()
    good = (p.ca_cert, p.client_cert("web01"), p.client_key("web01"))
    assert diagnose_client_cert(*good) == []
    assert diagnose_client_cert(*good, now=now + timedelta(days=400))[0].startswith(
        f"the client certificate {p.client_cert('web01')} expired on"
    )
    assert "not valid yet" in diagnose_client_cert(*good, now=now - timedelta(days=1))[0]
    foreign = diagnose_client_cert(p.ca_cert, o.client_cert("web01"), o.client_key("web01"))
    assert len(foreign) == 1 and "not issued by the CA" in foreign[0]
    mismatch = diagnose_client_cert(p.ca_cert, p.client_cert("web01"), p.client_key("ops"))
    assert mismatch == [
        f"the key {p.client_key('ops')} does not match the certificate {p.client_cert('web01')}"
    ]
    server = diagnose_client_cert(p.ca_cert, p.server_cert, p.server_key)
    assert len(server) == 1 and "clientAuth" in server[0]
    missing = diagnose_client_cert(p.ca_cert, p.root / "nope.crt", p.client_key("web01"))
    assert missing and "cannot read" in missing[0]
