"""The PKI on real files: layout, key modes, roles, revocation, CRL lifetime, verification."""

from __future__ import annotations

import os
import stat
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from statusdash import pki


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def vault(tmp_path: Path) -> Path:
    v = tmp_path / "vault"
    pki.init_ca(v)
    pki.issue_server_cert(v, ["localhost", "127.0.0.1"])
    pki.issue_client_cert(v, "web01")
    pki.issue_client_cert(v, "ops", "viewer")
    return v


@pytest.fixture
def other_vault(tmp_path: Path) -> Path:
    v = tmp_path / "other"
    pki.init_ca(v)
    pki.issue_client_cert(v, "web01")
    return v


def test_layout_and_file_modes(vault: Path) -> None:
    p = pki.paths(vault)
    for key in (p.ca_key, p.server_key, p.client_key("web01"), p.client_key("ops")):
        assert mode(key) == 0o600, key
    for crt in (p.ca_cert, p.crl, p.server_cert, p.client_cert("web01")):
        assert mode(crt) == 0o644, crt
    assert mode(p.ca_dir) == 0o700
    assert not list(vault.rglob("*.tmp")), "no temporary files left behind"


def test_keys_are_0600_from_creation_whatever_the_umask(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_chmod(*_a: object, **_k: object) -> None:
        raise AssertionError("keys must be created 0600, not chmod-ed afterwards")

    monkeypatch.setattr(os, "chmod", no_chmod)
    monkeypatch.setattr(os, "fchmod", no_chmod)
    old = os.umask(0)
    try:
        pki.init_ca(tmp_path)
        issued = pki.issue_client_cert(tmp_path, "web01")
    finally:
        os.umask(old)
    assert mode(pki.paths(tmp_path).ca_key) == 0o600
    assert mode(issued.key_path) == 0o600


def test_keys_are_ecdsa_p256(vault: Path) -> None:
    key = serialization.load_pem_private_key(
        pki.paths(vault).client_key("web01").read_bytes(), None
    )
    assert key.curve.name == "secp256r1"  # type: ignore[union-attr]


def test_init_refuses_to_overwrite_without_force(vault: Path) -> None:
    p = pki.paths(vault)
    before = p.ca_cert.read_bytes(), p.ca_key.read_bytes()
    with pytest.raises(pki.PkiError, match=r"already exists.*--force"):
        pki.init_ca(vault)
    assert (p.ca_cert.read_bytes(), p.ca_key.read_bytes()) == before
    pki.init_ca(vault, force=True)
    assert p.ca_cert.read_bytes() != before[0]
    assert pki.verify_cert(vault, p.client_cert("web01")).problems  # old CA's cert is now foreign


def test_client_certificate_records_cn_role_and_client_eku(vault: Path) -> None:
    p = pki.paths(vault)
    cert = pki.load_cert(p.client_cert("ops"))
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "ops"
    assert pki.role_of(cert) == "viewer"
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    pem = p.client_cert("web01").read_bytes()
    der = pki.load_cert(p.client_cert("web01")).public_bytes(serialization.Encoding.DER)
    assert pki.parse_client_cert(pem) == pki.parse_client_cert(der)
    info = pki.parse_client_cert(der)
    assert (info.cn, info.role) == ("web01", "agent")
    assert info.serial == pki.load_cert(p.client_cert("web01")).serial_number


def test_server_certificate_has_sans_and_server_eku(vault: Path) -> None:
    cert = pki.load_cert(pki.paths(vault).server_cert)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH]
    with pytest.raises(pki.PkiError, match="--force"):
        pki.issue_server_cert(vault, ["localhost"])
    with pytest.raises(ValueError, match="neither a DNS name nor an IP"):
        pki.issue_server_cert(vault, ["bad name!"], force=True)


@pytest.mark.parametrize("name", ["Web01", "a" * 64, "../etc", "-web", "", "web 01"])
def test_client_names_must_be_host_ids(vault: Path, name: str) -> None:
    with pytest.raises(ValueError, match="host id"):
        pki.issue_client_cert(vault, name)


def test_unknown_role_refused(vault: Path) -> None:
    with pytest.raises(ValueError, match="role"):
        pki.issue_client_cert(vault, "web02", "admin")


def test_reissue_needs_force_and_retires_the_old_certificate(vault: Path) -> None:
    p = pki.paths(vault)
    old_serial = pki.load_cert(p.client_cert("web01")).serial_number
    with pytest.raises(pki.PkiError, match="already has a certificate"):
        pki.issue_client_cert(vault, "web01")
    new = pki.issue_client_cert(vault, "web01", force=True)
    assert new.serial != old_serial
    records = [r for r in pki.list_certs(vault) if r.name == "web01"]
    assert {(r.serial, r.retired) for r in records} == {(old_serial, True), (new.serial, False)}
    pki.revoke(vault, serial=old_serial)
    assert pki.revoked_serials(vault) == {old_serial}
    assert pki.verify_cert(vault, new.cert_path).ok


def test_list_certs(vault: Path) -> None:
    rows = {r.name: r for r in pki.list_certs(vault)}
    assert {n: r.role for n, r in rows.items()} == {
        "ca": "ca",
        "server": "server",
        "web01": "agent",
        "ops": "viewer",
    }
    assert all(r.status() == "valid" and not r.revoked for r in rows.values())
    assert rows["web01"].subject == "CN=web01,OU=agent,O=statusdash"


def test_verify_reports_each_problem(vault: Path, other_vault: Path) -> None:
    p = pki.paths(vault)
    now = pki.utcnow()
    expired = pki.issue_client_cert(
        vault, "old", not_before=now - timedelta(days=9), not_after=now - timedelta(days=1)
    )
    future = pki.issue_client_cert(
        vault, "new", not_before=now + timedelta(days=1), not_after=now + timedelta(days=9)
    )
    assert pki.verify_cert(vault, p.client_cert("web01")).ok
    assert pki.verify_cert(vault, p.server_cert).ok  # auto: checked as a server certificate

    def problems(path: Path, purpose: pki.Purpose = "auto") -> str:
        result = pki.verify_cert(vault, path, purpose)
        assert not result.ok
        return " | ".join(result.problems)

    assert "expired on" in problems(expired.cert_path)
    assert "not valid yet" in problems(future.cert_path)
    assert "not issued by our CA" in problems(pki.paths(other_vault).client_cert("web01"))
    assert "no clientAuth" in problems(p.server_cert, "client")
    pki.revoke(vault, "web01")
    assert "revoked" in problems(p.client_cert("web01"))
    with pytest.raises(pki.PkiError, match="not a certificate"):
        pki.verify_cert(vault, p.ca_key)


def test_revoke_updates_crl_and_survives_reissue(vault: Path) -> None:
    p = pki.paths(vault)
    serial = pki.load_cert(p.client_cert("web01")).serial_number
    n0 = pki.load_crl(vault).extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
    result = pki.revoke(vault, "web01")
    assert (result.name, result.serial, result.already) == ("web01", serial, False)
    crl = pki.load_crl(vault)
    assert crl.get_revoked_certificate_by_serial_number(serial) is not None
    assert crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number > n0
    pki.reissue_crl(vault)
    assert pki.load_crl(vault).get_revoked_certificate_by_serial_number(serial) is not None
    assert pki.revoke(vault, "web01").already
    assert pki.revoked_serials(vault) == {serial}
    assert {r.name for r in pki.list_certs(vault) if r.revoked} == {"web01"}
    with pytest.raises(pki.PkiError, match="no certificate"):
        pki.revoke(vault, "ghost")


def test_crl_last_update_increases_even_within_one_second(vault: Path) -> None:
    first = pki.load_crl(vault).last_update_utc
    pki.reissue_crl(vault)
    second = pki.load_crl(vault).last_update_utc
    pki.reissue_crl(vault)
    third = pki.load_crl(vault).last_update_utc
    assert first < second < third <= pki.utcnow()


def test_crl_refresh_margin(vault: Path) -> None:
    assert not pki.crl_needs_refresh(vault)  # a fresh CRL lasts 7 days
    next_update = pki.reissue_crl(vault, timedelta(days=1))
    assert pki.crl_needs_refresh(vault)  # < 2 days left
    assert not pki.crl_needs_refresh(vault, timedelta(hours=12))
    assert next_update - pki.utcnow() < timedelta(days=1, minutes=1)
    pki.paths(vault).crl.unlink()
    assert pki.crl_needs_refresh(vault)


def test_forged_crl_is_rejected(vault: Path, other_vault: Path) -> None:
    pki.paths(vault).crl.write_bytes(pki.paths(other_vault).crl.read_bytes())
    with pytest.raises(pki.PkiError, match="not signed by the CA"):
        pki.load_crl(vault)
    assert pki.crl_needs_refresh(vault)


def test_diagnose_client_cert(vault: Path, other_vault: Path) -> None:
    p, o = pki.paths(vault), pki.paths(other_vault)
    now = pki.utcnow()
    good = (p.ca_cert, p.client_cert("web01"), p.client_key("web01"))
    assert pki.diagnose_client_cert(*good) == []
    assert pki.diagnose_client_cert(*good, now=now + timedelta(days=400))[0].startswith(
        f"the client certificate {p.client_cert('web01')} expired on"
    )
    assert "not valid yet" in pki.diagnose_client_cert(*good, now=now - timedelta(days=1))[0]
    foreign = pki.diagnose_client_cert(p.ca_cert, o.client_cert("web01"), o.client_key("web01"))
    assert len(foreign) == 1 and "not issued by the CA" in foreign[0]
    mismatch = pki.diagnose_client_cert(p.ca_cert, p.client_cert("web01"), p.client_key("ops"))
    assert mismatch == [
        f"the key {p.client_key('ops')} does not match the certificate {p.client_cert('web01')}"
    ]
    server = pki.diagnose_client_cert(p.ca_cert, p.server_cert, p.server_key)
    assert len(server) == 1 and "clientAuth" in server[0]
    missing = pki.diagnose_client_cert(p.ca_cert, p.root / "nope.crt", p.client_key("web01"))
    assert missing and "cannot read" in missing[0]
