"""The CLI's one error boundary, its connection options declared once, and its lazy imports."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from statusdash.cli.main import app
from statusdash.client import ApiError

runner = CliRunner()
READERS = (
    ["hosts", "ls"],
    ["hosts", "show"],
    ["history"],
    ["alerts", "ls"],
    ["alerts", "ack"],
    ["alerts", "silence"],
    ["alerts", "silences"],
    ["alerts", "test-notify"],
    ["services", "ls"],
    ["tui"],
)


pytestmark = pytest.mark.usefixtures("client_env")


def _cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "statusdash.cli", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=60,
    )


def _one_line(out: subprocess.CompletedProcess[str], *words: str) -> None:
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("statusdash: "), out.stderr
    assert "Traceback" not in out.stderr
    for word in words:
        assert word in lines[0], lines[0]


def test_a_data_dir_that_cannot_exist_is_one_line_naming_it() -> None:
    out = _cli("keys", "issue", "web-1", "--data-dir", "/proc/x")
    assert out.returncode == 1
    _one_line(out, "/proc/x")


def test_a_data_dir_that_is_a_file_is_one_line_naming_it(tmp_path: Path) -> None:
    afile = tmp_path / "data"
    afile.write_text("not a directory")
    out = _cli("keys", "issue", "web-1", "--data-dir", str(afile))
    assert out.returncode == 1
    _one_line(out, str(afile))


def test_a_bad_host_id_for_a_key_is_one_line_exit_1(tmp_path: Path) -> None:
    """server/keys.py raises errors.Invalid: the boundary's one line and exit 1 (no command-local
    exit 2; ``certs issue`` keeps its 2 for the PKI's plain ValueError)."""
    result = runner.invoke(app, ["keys", "issue", "Not A Host!", "--data-dir", str(tmp_path)])
    assert result.exit_code == 1
    assert result.stderr.startswith("statusdash: 'Not A Host!' is not a valid host id")
    assert len(result.stderr.strip().splitlines()) == 1 and result.stdout == ""


def test_a_certs_dir_that_cannot_be_made_is_one_line_naming_it(tmp_path: Path) -> None:
    afile = tmp_path / "certs"
    afile.write_text("")
    for certs_dir in ("/proc/x", str(afile / "vault")):
        out = _cli("certs", "init", "--certs-dir", certs_dir)
        assert out.returncode == 1
        _one_line(out, certs_dir)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads and writes whatever the mode says")
def test_a_certs_dir_without_permission_is_one_line_naming_it(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    out = _cli("certs", "init", "--certs-dir", str(locked / "vault"))
    assert out.returncode == 1
    _one_line(out, str(locked / "vault"), "Permission denied")


def test_an_unreachable_server_is_one_line() -> None:
    env = {"STATUSDASH_TOKEN": "t"}
    out = _cli("hosts", "ls", "--server", "http://127.0.0.1:9", **env)
    assert out.returncode == 1
    _one_line(out, "cannot reach the server at http://127.0.0.1:9")


def test_a_bad_setting_is_a_usage_error() -> None:
    out = _cli("hosts", "ls", STATUS_PORT="many", STATUSDASH_TOKEN="t")
    assert out.returncode == 2
    _one_line(out, "bad setting STATUS_PORT")


def test_unloadable_tls_files_are_one_line(tmp_path: Path) -> None:
    missing = tmp_path / "nope.crt"
    env = {"STATUSDASH_TOKEN": "t"}
    out = _cli("hosts", "ls", "--server", "https://127.0.0.1:9", "--ca", str(missing), **env)
    assert out.returncode == 1
    _one_line(out, "CA certificate", str(missing))  # names the file (issue 11, item 16)


@pytest.mark.parametrize("command", READERS, ids=" ".join)
def test_every_reader_command_shows_the_connection_options(command: list[str]) -> None:
    result = runner.invoke(app, [*command, "--help"], env={"COLUMNS": "120"})
    assert result.exit_code == 0, result.output
    for option in ("--server", "--ca", "--cert", "--key"):
        assert option in result.output


def test_the_connection_options_reach_the_command() -> None:
    result = runner.invoke(app, ["hosts", "ls", "--server", "http://127.0.0.1:9", "--json"])
    assert result.exit_code == 1
    assert "not logged in to http://127.0.0.1:9" in result.stderr
    result = runner.invoke(app, ["alerts", "ls", "--cert", "x.crt"])
    assert result.exit_code == 2 and "--cert needs --key" in result.stderr


def test_the_client_api_error_takes_the_server_order() -> None:
    err = ApiError(404, "not_found", "no host named 'x'")
    assert (err.status, err.code, err.detail) == (404, "not_found", "no host named 'x'")
    assert str(err) == "no host named 'x' (HTTP 404, not_found)"


PROBE = """
import json, sys
import statusdash.cli.main as m
if sys.argv[1] == "help":
    sys.argv = ["statusdash", "hosts", "ls", "--help"]
    try:
        m.app()
    except SystemExit:
        pass
sys.stderr.write(json.dumps(sorted(sys.modules)))
"""
OURS = ("httpx", "cryptography", "statusdash.server", "statusdash.schema", "statusdash.client")
THIRD = ("pydantic", "rich.table")


def _loaded(stage: str, names: tuple[str, ...]) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", PROBE, stage],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "100"},
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    return {n for n in json.loads(out.stderr) if n in names or n.startswith(names)}


def test_importing_the_cli_loads_nothing_heavy() -> None:
    assert _loaded("import", (*OURS, *THIRD)) == set()


def test_hosts_ls_help_loads_none_of_our_heavy_modules() -> None:
    """Typer 0.29 itself loads pydantic: it coerces parameters with it."""
    assert _loaded("help", (*OURS, "rich.table")) == set()
