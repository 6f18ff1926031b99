"""What the enrollment tests share: the operator's and the agent's commands, the tables."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from typer.testing import CliRunner

from statusdash.cli.main import app
from statusdash.pki.ca import make_csr
from statusdash.pki.check import load_cert
from tests.agent.agentproc import clean_env
from tests.conftest import TlsLive

STATUSDASH = [sys.executable, "-m", "statusdash.cli"]


def operator_env(live: TlsLive, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The server host's environment for ``statusdash enroll``: its data dir and vault."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("STATUS_DATA_DIR", str(live.settings.status_data_dir))
    monkeypatch.setenv("VAULT_PATH", str(live.vault))


def enroll_cli(*args: str) -> Any:
    result = CliRunner().invoke(app, ["enroll", *args])
    return result


def new_token(*args: str) -> dict[str, Any]:
    result = enroll_cli("token", "create", "--json", *args)
    assert result.exit_code == 0, result.output
    out: dict[str, Any] = json.loads(result.stdout)
    return out


def agent_enroll(
    live: TlsLive, workdir: Path, *args: str, timeout: float = 90, **env: str
) -> subprocess.CompletedProcess[str]:
    """``statusdash agent enroll`` in its own process (nothing of the test's environment)."""
    cmd = [*STATUSDASH, "agent", "enroll", "--server", live.url, *args]
    return subprocess.run(
        cmd, cwd=workdir, env={**clean_env(), **env}, capture_output=True, text=True,
        timeout=timeout,
    )  # fmt: skip


def csr_for(host: str) -> tuple[ec.EllipticCurvePrivateKey, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    return key, make_csr(key, host).decode()


def rows(db: Path, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with sqlite3.connect(db, timeout=10) as conn:
        return list(conn.execute(sql, params).fetchall())


def issued(db: Path) -> list[str]:
    """Hosts the server issued a certificate to by enrollment."""
    return [r[0] for r in rows(db, "SELECT host FROM enroll_requests WHERE state = 'issued'")]


def vault_certs(vault: Path) -> dict[str, int]:
    """Every client certificate in the vault (current and retired): file name -> serial."""
    clients = vault / "clients"
    found = sorted(clients.glob("*.crt")) + sorted((clients / "retired").glob("*.crt"))
    return {f.name: load_cert(f).serial_number for f in found}
