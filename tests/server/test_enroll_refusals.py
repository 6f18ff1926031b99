"""Tokens the server refuses (replayed, expired, used up, revoked, wrong pattern) issue nothing:
no certificate in the vault, no issued request in the database; bad bodies get a 4xx."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import TlsLive
from tests.server.enroll_helpers import (
    agent_enroll,
    csr_for,
    enroll_cli,
    issued,
    new_token,
    operator_env,
    rows,
    vault_certs,
)


@pytest.fixture
def live(tls_server: TlsLive, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> TlsLive:
    operator_env(tls_server, monkeypatch, tmp_path)
    return tls_server


def post(live: TlsLive, body: Any) -> httpx.Response:
    with live.client(None) as c:  # no client certificate: enrollment is anonymous
        return c.post("/api/enroll", json=body)


def _replayed(live: TlsLive) -> dict[str, Any]:
    t = new_token("--uses", "5")
    _, csr = csr_for("app-1")
    assert post(live, {"token": t["token"], "csr": csr}).status_code == 200
    return {"token": t["token"], "csr": csr}  # the same request again


def _expired(live: TlsLive) -> dict[str, Any]:
    t = new_token()
    db = live.settings.db_path
    import sqlite3

    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE enroll_tokens SET expires_at = ?", (time.time() - 1,))
    return {"token": t["token"], "csr": csr_for("app-1")[1]}


def _used_up(live: TlsLive) -> dict[str, Any]:
    t = new_token("--uses", "1")
    assert post(live, {"token": t["token"], "csr": csr_for("app-1")[1]}).status_code == 200
    return {"token": t["token"], "csr": csr_for("app-9")[1]}


def _revoked(live: TlsLive) -> dict[str, Any]:
    t = new_token()
    assert enroll_cli("token", "revoke", t["id"]).exit_code == 0  # no restart: seen at once
    return {"token": t["token"], "csr": csr_for("app-1")[1]}


def _wrong_pattern(live: TlsLive) -> dict[str, Any]:
    t = new_token("--hosts", "web-*")
    return {"token": t["token"], "csr": csr_for("app-1")[1]}


def _forged(live: TlsLive) -> dict[str, Any]:
    t = new_token()
    token_id = t["id"]
    return {"token": f"sdt_{token_id}_not-the-secret", "csr": csr_for("app-1")[1]}


CASES: dict[str, tuple[Callable[[TlsLive], dict[str, Any]], int, str]] = {
    "replayed": (_replayed, 409, "replayed"),
    "expired": (_expired, 401, "expired"),
    "used up": (_used_up, 401, "used up"),
    "revoked": (_revoked, 401, "revoked"),
    "wrong pattern": (_wrong_pattern, 403, "outside this token's hosts"),
    "forged": (_forged, 401, "unknown enrollment token"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_refused_tokens_issue_nothing(live: TlsLive, case: str) -> None:
    make, status, words = CASES[case]
    body = make(live)
    db = live.settings.db_path
    before_vault, before_issued = vault_certs(live.vault), issued(db)
    uses_before = rows(db, "SELECT token_id, uses FROM enroll_tokens")
    r = post(live, body)
    assert r.status_code == status, r.text
    assert words in r.json()["detail"] and set(r.json()) >= {"error", "detail"}
    assert vault_certs(live.vault) == before_vault
    assert issued(db) == before_issued
    assert rows(db, "SELECT token_id, uses FROM enroll_tokens") == uses_before


def test_the_agent_says_why_in_one_line(live: TlsLive, tmp_path: Path) -> None:
    t = new_token("--hosts", "web-*")
    out = agent_enroll(
        live, tmp_path, "--token", t["token"], "--host-id", "app-1",
        "--certs-dir", str(tmp_path / "c"), "--ca-fingerprint", t["ca_fingerprint"],
    )  # fmt: skip
    assert out.returncode == 1
    assert out.stderr.startswith("statusdash: the server refused the enrollment: host 'app-1'")
    assert len(out.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "c" / "clients").exists()


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"{not json", 400),
        (b"[]", 422),
        (b'{"token": "sdt_a_b"}', 422),
        (b'{"token": "sdt_a_b", "csr": "-----BEGIN CERTIFICATE REQUEST-----\\nAAAA"}', 422),
        (b'{"token": "x", "csr": "' + b"a" * 20000 + b'"}', 413),
    ],
)
def test_bad_bodies_are_4xx_json(live: TlsLive, body: bytes, status: int) -> None:
    new_token()
    with live.client(None) as c:
        r = c.post("/api/enroll", content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == status, r.text
    assert set(r.json()) >= {"error", "detail"}


def test_a_csr_for_a_bad_host_id_is_refused(live: TlsLive) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    t = new_token()
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Web 1")])
    csr = x509.CertificateSigningRequestBuilder().subject_name(name).sign(key, hashes.SHA256())
    pem = csr.public_bytes(serialization.Encoding.PEM).decode()
    r = post(live, {"token": t["token"], "csr": pem})
    assert r.status_code == 422 and "not a valid host id" in r.json()["detail"]
    assert rows(live.settings.db_path, "SELECT uses FROM enroll_tokens") == [(0,)]


def test_failures_are_throttled_like_logins(live: TlsLive) -> None:
    limit = live.settings.login_max_failures
    bad = {"token": "sdt_nope_nope", "csr": csr_for("app-1")[1]}
    codes = [post(live, bad).status_code for _ in range(limit)]
    assert codes == [401] * limit
    t = new_token()
    throttled = post(live, {"token": t["token"], "csr": csr_for("app-1")[1]})
    assert throttled.status_code == 429 and "Retry-After" in throttled.headers
    assert "failed logins or enrollments" in throttled.json()["detail"]
    assert issued(live.settings.db_path) == []


def test_enrollment_needs_the_servers_tls(live_server: Any) -> None:
    r = httpx.post(f"{live_server.url}/api/enroll", json={"token": "t", "csr": "c"})
    assert r.status_code == 503 and r.json()["error"] == "no_tls"
