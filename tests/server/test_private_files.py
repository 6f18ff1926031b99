"""Issue 10 items 5 and 21: the real server process, its open-file limit and its private files.

Every process here runs from this checkout with a permissive umask (022) and a low soft
RLIMIT_NOFILE, as a careless shell would start it; what it leaves behind must be 0600 in 0700.
"""

from __future__ import annotations

import json
import os
import resource
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.conftest import ADMIN_PASSWORD, JWT_SECRET, free_port, make_report

SRC = Path(__file__).resolve().parents[2] / "src"
LOW_SOFT_LIMIT = 256


def env_for(data_dir: Path, port: int = 5000) -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": str(SRC),
        "STATUS_ADMIN_PASSWORD": ADMIN_PASSWORD,
        "STATUS_JWT_SECRET": JWT_SECRET,
        "STATUS_DATA_DIR": str(data_dir),
        "STATUS_PORT": str(port),
        "STATUS_BIND": "127.0.0.1",
        "DB_SYNCHRONOUS": "NORMAL",
    }


def careless_shell() -> None:
    """In the child: umask 022 and a low soft open-file limit."""
    os.umask(0o022)
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(LOW_SOFT_LIMIT, hard), hard))


def cli(cwd: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "statusdash.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=careless_shell,
    )


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@dataclass
class ServerProcess:
    proc: subprocess.Popen[str]
    url: str
    data_dir: Path


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    root = tmp_path_factory.mktemp("private")
    data_dir = root / "data"
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "statusdash.cli", "server", "run", "--insecure-http"],
        cwd=root,
        env=env_for(data_dir, port),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=careless_shell,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        assert proc.poll() is None, f"server exited: {proc.stdout.read() if proc.stdout else ''}"
        assert time.monotonic() < deadline, "server did not answer /health"
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.1)
    try:
        yield ServerProcess(proc, url, data_dir)
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def test_the_server_raises_its_soft_open_file_limit_to_the_hard_limit(
    server: ServerProcess,
) -> None:
    limits = Path(f"/proc/{server.proc.pid}/limits").read_text()
    line = next(ln for ln in limits.splitlines() if ln.startswith("Max open files"))
    soft, hard = line.split()[3:5]
    _, our_hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert hard == ("unlimited" if our_hard == resource.RLIM_INFINITY else str(our_hard))
    assert soft == hard, line
    if int(hard) > LOW_SOFT_LIMIT:
        assert int(soft) > LOW_SOFT_LIMIT


def test_the_database_its_wal_and_shm_are_private_while_the_server_runs(
    server: ServerProcess,
) -> None:
    db = server.data_dir / "statusdash.db"
    key = cli(server.data_dir.parent, env_for(server.data_dir), "keys", "issue", "web-1", "--json")
    assert key.returncode == 0, key.stderr
    api_key = json.loads(key.stdout)["key"]
    r = httpx.post(
        f"{server.url}/api/metrics/report",
        json=make_report("web-1"),
        headers={"X-API-Key": api_key},
        timeout=10,
    )
    assert r.status_code == 200, r.text
    files = [db, db.with_name("statusdash.db-wal"), db.with_name("statusdash.db-shm")]
    assert all(p.exists() for p in files)
    assert {p.name: oct(mode(p)) for p in files} == {p.name: "0o600" for p in files}
    assert mode(server.data_dir) == 0o700


def test_backups_and_restores_are_private(server: ServerProcess, tmp_path: Path) -> None:
    env = env_for(server.data_dir)
    out = cli(tmp_path, env, "db", "backup", "--json")
    assert out.returncode == 0, out.stderr
    copy = Path(json.loads(out.stdout)["path"])
    assert (mode(copy), mode(copy.parent)) == (0o600, 0o700)
    elsewhere = tmp_path / "restored"
    renv = env_for(elsewhere)
    first = cli(tmp_path, renv, "db", "restore", str(copy), "--yes")
    assert first.returncode == 0, first.stderr
    again = cli(tmp_path, renv, "db", "restore", str(copy), "--yes")  # saves a pre-restore copy
    assert again.returncode == 0, again.stderr
    made = sorted(p for p in elsewhere.iterdir())
    assert any(".pre-restore-" in p.name for p in made), made
    assert {p.name: oct(mode(p)) for p in made} == {p.name: "0o600" for p in made}
    assert mode(elsewhere) == 0o700


def test_make_setup_makes_an_existing_env_private_before_filling_secrets(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("STATUS_JWT_SECRET=__GENERATE__\nSTATUS_DATA_DIR=data\n")
    env_file.chmod(0o644)
    out = subprocess.run(
        [sys.executable, "-m", "statusdash.devtools", "setup"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(SRC)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert mode(env_file) == 0o600
    assert "__GENERATE__" not in env_file.read_text()
    kept = tmp_path / "kept"
    kept.mkdir()
    (kept / ".env").write_text("STATUS_JWT_SECRET=already-set\n")
    (kept / ".env").chmod(0o644)
    subprocess.run(
        [sys.executable, "-m", "statusdash.devtools", "setup"],
        cwd=kept,
        env={**os.environ, "PYTHONPATH": str(SRC)},
        capture_output=True,
        timeout=60,
        check=True,
    )
    assert mode(kept / ".env") == 0o600
