"""``statusdash certs``: exit codes, messages without tracebacks, and --json read back."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from statusdash.cli.certs import app
from statusdash.pki.ca import init_ca, issue_client_cert
from statusdash.pki.check import load_cert, utcnow
from statusdash.pki.vault import load_crl

runner = CliRunner()


def run(*args: str | Path) -> Result:
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    return result


@pytest.fixture
def vault(tmp_path: Path) -> Path:
    v = tmp_path / "vault"
    assert run("init", "--certs-dir", v).exit_code == 0
    assert run("server", "--san", "localhost", "--san", "10.0.0.5", "--certs-dir", v).exit_code == 0
    assert run("issue", "web01", "--certs-dir", v).exit_code == 0
    assert run("issue", "ops", "--role", "viewer", "--days", "30", "--certs-dir", v).exit_code == 0
    return v


def ls_json(vault: Path) -> dict[str, dict[str, object]]:
    result = run("ls", "--json", "--certs-dir", vault)
    assert result.exit_code == 0
    return {row["name"]: row for row in json.loads(result.stdout) if not row["retired"]}


def test_init_refuses_overwrite(vault: Path) -> None:
    ca = (vault / "ca" / "ca.crt").read_bytes()
    result = run("init", "--certs-dir", vault)
    assert result.exit_code == 1
    assert "already exists" in result.stderr and "--force" in result.stderr
    assert (vault / "ca" / "ca.crt").read_bytes() == ca
    assert run("init", "--force", "--certs-dir", vault).exit_code == 0
    assert (vault / "ca" / "ca.crt").read_bytes() != ca


def test_ls_json_round_trip(vault: Path) -> None:
    rows = ls_json(vault)
    assert {n: r["role"] for n, r in rows.items()} == {
        "ca": "ca",
        "server": "server",
        "ops": "viewer",
        "web01": "agent",
    }
    web01 = load_cert(vault / "clients" / "web01.crt")
    assert rows["web01"]["serial"] == f"{web01.serial_number:040x}"  # fixed width, zeros kept
    assert rows["web01"]["not_after"] == web01.not_valid_after_utc.isoformat()
    assert rows["web01"]["status"] == "valid"
    assert rows["web01"]["revoked"] is False
    ops_days = load_cert(vault / "clients" / "ops.crt").not_valid_after_utc - utcnow()
    assert timedelta(days=29) < ops_days <= timedelta(days=30)
    table = run("ls", "--certs-dir", vault).stdout
    assert "web01" in table and "agent" in table and f"{web01.serial_number:040x}" in table


def test_server_certificate_sans(vault: Path) -> None:
    result = run("verify", vault / "server" / "status.crt", "--json", "--certs-dir", vault)
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert data["ok"] is True and data["purpose"] == "server"
    cert = load_cert(vault / "server" / "status.crt")
    assert "10.0.0.5" in str(cert.extensions)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["issue", "Bad_Host"], "not a valid host id"),
        (["issue", "web02", "--role", "admin"], "admin"),
        (["issue", "web02", "--days", "0"], "--days"),
        (["server", "--san", "not a name", "--force"], "neither a DNS name nor an IP"),
        (["revoke"], "HOST or --serial"),
        (["revoke", "--serial", "xyz"], "hexadecimal"),
    ],
)
def test_usage_errors_exit_2(vault: Path, args: list[str], message: str) -> None:
    result = run(*args, "--certs-dir", vault)
    assert result.exit_code == 2
    assert message in result.stderr


def test_issue_twice_needs_force(vault: Path) -> None:
    result = run("issue", "web01", "--certs-dir", vault)
    assert result.exit_code == 1
    assert "already has a certificate" in result.stderr
    assert run("issue", "web01", "--force", "--certs-dir", vault).exit_code == 0
    listed = json.loads(run("ls", "--json", "--certs-dir", vault).stdout)
    retired = [r for r in listed if r["retired"]]
    assert [r["name"] for r in retired] == ["web01"]
    assert run("revoke", "--serial", retired[0]["serial"], "--certs-dir", vault).exit_code == 0
    assert ls_json(vault)["web01"]["revoked"] is False


def test_revoke_and_verify(vault: Path) -> None:
    crt = vault / "clients" / "web01.crt"
    ok = run("verify", crt, "--certs-dir", vault)
    assert ok.exit_code == 0 and ok.stdout.startswith("OK:")
    result = run("revoke", "web01", "--certs-dir", vault)
    assert result.exit_code == 0 and "revoked" in result.stdout
    assert ls_json(vault)["web01"]["revoked"] is True
    assert ls_json(vault)["web01"]["status"] == "revoked"
    bad = run("verify", crt, "--certs-dir", vault)
    assert bad.exit_code == 1
    assert "INVALID" in bad.stderr and "revoked" in bad.stderr
    as_json = run("verify", crt, "--json", "--certs-dir", vault)
    assert as_json.exit_code == 1
    assert json.loads(as_json.stdout)["problems"] == [
        f"revoked (serial {load_cert(crt).serial_number:x} is on the CRL)"
    ]
    assert "already revoked" in run("revoke", "web01", "--certs-dir", vault).stdout
    missing = run("revoke", "ghost", "--certs-dir", vault)
    assert missing.exit_code == 1 and "no certificate for 'ghost'" in missing.stderr


def test_verify_explains_why_not(vault: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    init_ca(other)
    issue_client_cert(other, "web01")
    now = utcnow()
    issue_client_cert(
        vault, "old", not_before=now - timedelta(days=3), not_after=now - timedelta(days=1)
    )
    cases = [
        (other / "clients" / "web01.crt", [], "not issued by our CA"),
        (vault / "clients" / "old.crt", [], "expired on"),
        (vault / "server" / "status.crt", ["--as", "client"], "no clientAuth"),
    ]
    for path, extra, why in cases:
        result = run("verify", path, *extra, "--certs-dir", vault)
        assert result.exit_code == 1, path
        assert why in result.stderr, result.stderr
    unreadable = run("verify", tmp_path / "nope.crt", "--certs-dir", vault)
    assert unreadable.exit_code == 1 and "cannot read" in unreadable.stderr
    garbage = run("verify", vault / "ca" / "revoked.json", "--certs-dir", vault)
    assert garbage.exit_code == 1 and "not a certificate" in garbage.stderr


def test_no_ca_yet_says_what_to_run(tmp_path: Path) -> None:
    result = run("issue", "web01", "--certs-dir", tmp_path / "empty")
    assert result.exit_code == 1
    assert "statusdash certs init" in result.stderr
    assert run("ls", "--json", "--certs-dir", tmp_path / "empty").stdout.strip() == "[]"


def test_crl_command_and_vault_from_env(
    vault: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)  # no stray .env from the project
    monkeypatch.setenv("VAULT_PATH", str(vault))
    before = load_crl(vault).next_update_utc
    result = run("crl", "--days", "1")
    assert result.exit_code == 0, result.stderr
    after = load_crl(vault).next_update_utc
    assert before is not None and after is not None and after < before
    assert "web01" in ls_json(vault)


def test_module_imports_no_heavy_dependencies() -> None:
    code = "import sys, statusdash.cli.certs; print('cryptography' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
