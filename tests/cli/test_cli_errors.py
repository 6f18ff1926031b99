"""Issue 11, item 16: the CLI says what is wrong, against a real TLS server on loopback.

A closed port, ``http://`` to the TLS server, each TLS file that cannot be loaded, a login
expired by a short TOKEN_TTL_S (stored, and given as STATUSDASH_TOKEN), a wrong password; and
the TUI's data source, which uses the same client, gets the same sentence.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner, Result

from statusdash.cli.main import app
from statusdash.client import Credentials, ServerUnreachable, TokenExpired
from statusdash.tui.source import ApiSource
from tests.conftest import (
    ADMIN_PASSWORD,
    Live,
    RunningServer,
    TlsLive,
    free_port,
    make_settings,
)

runner = CliRunner()
pytestmark = pytest.mark.usefixtures("client_env")
TTL_S = 5  # the shortest TOKEN_TTL_S the settings allow


def _line(result: Result) -> str:
    """The one stderr line of a failed command (exit 1, no traceback)."""
    stderr = result.stderr
    lines = stderr.strip().splitlines()
    assert result.exit_code == 1, stderr
    assert len(lines) == 1 and lines[0].startswith("statusdash: "), stderr
    return lines[0]


def _hosts(*args: str, bearer: str = "t") -> str:
    return _line(runner.invoke(app, ["hosts", "ls", *args], env={"STATUSDASH_TOKEN": bearer}))


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


def test_http_to_the_tls_server_says_it_speaks_https(tls_server: TlsLive) -> None:
    port = _port(tls_server.url)
    line = _hosts("--server", f"http://127.0.0.1:{port}")
    assert f"this server speaks HTTPS: use https://127.0.0.1:{port}" in line


def test_https_to_a_plain_http_server_says_so(live_server: Live) -> None:
    port = _port(live_server.url)
    line = _hosts("--server", f"https://127.0.0.1:{port}")
    assert f"plain HTTP, not HTTPS: use http://127.0.0.1:{port}" in line


def test_a_closed_port_says_nothing_listens() -> None:
    port = free_port()
    for scheme in ("http", "https"):
        line = _hosts("--server", f"{scheme}://127.0.0.1:{port}")
        assert f"nothing listens on 127.0.0.1:{port}" in line


def test_each_tls_file_that_cannot_be_loaded_is_named(tls_server: TlsLive, tmp_path: Path) -> None:
    clients = tls_server.vault / "clients"
    ca = tls_server.vault / "ca" / "ca.crt"
    url = ["--server", tls_server.url]
    missing = tmp_path / "missing.crt"
    assert f"CA certificate {missing}: No such file" in _hosts(*url, "--ca", str(missing))
    not_pem = clients / "viewer.key"
    assert f"CA certificate {not_pem}: no PEM certificate" in _hosts(*url, "--ca", str(not_pem))
    with_ca = [*url, "--ca", str(ca)]
    line = _hosts(*with_ca, "--cert", str(missing), "--key", str(clients / "viewer.key"))
    assert f"client certificate {missing}: No such file" in line
    line = _hosts(*with_ca, "--cert", str(clients / "viewer.crt"), "--key", str(missing))
    assert f"key {missing}: No such file" in line
    line = _hosts(
        *with_ca, "--cert", str(clients / "viewer.crt"), "--key", str(clients / "web-1.key")
    )
    assert f"key {clients / 'web-1.key'} does not belong to the client certificate" in line
    line = _hosts(*with_ca, "--cert", str(not_pem), "--key", str(not_pem))
    assert f"client certificate {not_pem}: no PEM certificate in it" in line


def test_a_damaged_token_file_is_named(tls_server: TlsLive, tmp_path: Path) -> None:
    store = tmp_path / "config" / "statusdash" / "token.json"
    store.parent.mkdir(parents=True)
    store.write_text("{not json")
    r = runner.invoke(app, ["hosts", "ls", "--server", tls_server.url])
    assert f"token file {store}: not valid JSON" in _line(r)


def test_a_wrong_password_names_no_username(tls_server: TlsLive) -> None:
    ca = str(tls_server.vault / "ca" / "ca.crt")
    args = ["login", "--server", tls_server.url, "--ca", ca, "--password-stdin"]
    line = _line(runner.invoke(app, args, input="not-the-password\n"))
    assert "wrong password" in line and "username" not in line


@pytest.fixture
def short_ttl_tls(tmp_path: Path, vault_template: Path) -> Iterator[TlsLive]:
    """The TLS server with the shortest token lifetime, so a test can watch a login expire."""
    import shutil

    vault = tmp_path / "vault"
    shutil.copytree(vault_template, vault)
    settings = make_settings(
        tmp_path / "data", mtls_enabled=True, vault_path=vault, token_ttl_s=TTL_S
    )
    server = RunningServer(settings).start()
    try:
        yield TlsLive(server, vault=vault)
    finally:
        server.stop()


def test_an_expired_login_says_it_expired(short_ttl_tls: TlsLive) -> None:
    live = short_ttl_tls
    ca = str(live.vault / "ca" / "ca.crt")
    login = ["login", "--server", live.url, "--ca", ca, "--password-stdin"]
    r = runner.invoke(app, login, input=ADMIN_PASSWORD + "\n")
    assert r.exit_code == 0, r.output
    with live.client(None) as http:
        form = {"username": "admin", "password": ADMIN_PASSWORD}
        env_token = http.post("/api/auth/token", data=form).json()["access_token"]
        assert runner.invoke(app, ["hosts", "ls", "--server", live.url]).exit_code == 0
        deadline = time.monotonic() + TTL_S + 30
        while http.get("/api/hosts", headers={"Authorization": f"Bearer {env_token}"}).is_success:
            assert time.monotonic() < deadline, "the token never expired"
            time.sleep(0.5)
    fix = f"run `statusdash login --server {live.url}`"
    stored = _line(runner.invoke(app, ["hosts", "ls", "--server", live.url]))
    assert f"the login to {live.url} expired" in stored and fix in stored
    given = _hosts("--server", live.url, "--ca", ca, bearer=env_token)  # the server's 401
    assert f"the login to {live.url} expired" in given and fix in given


def test_the_tui_source_gets_the_same_sentences(tls_server: TlsLive) -> None:
    """The TUI reads through the same client: its errors carry the same words."""
    port = _port(tls_server.url)
    source = ApiSource(f"http://127.0.0.1:{port}", credentials=Credentials(token="t"), timeout=5)
    try:
        with pytest.raises(ServerUnreachable, match="this server speaks HTTPS"):
            source.hosts()
    finally:
        source.close()
    closed = ApiSource(f"http://127.0.0.1:{free_port()}", credentials=Credentials(token="t"))
    try:
        with pytest.raises(ServerUnreachable, match=r"nothing listens on 127\.0\.0\.1"):
            closed.hosts()
    finally:
        closed.close()


def test_token_expired_is_still_an_api_error_for_the_tui() -> None:
    """The TUI treats a 401 as an auth failure: the translated error keeps status and detail."""
    exc = TokenExpired("https://h:443", "unauthorized", "token expired; run `statusdash login`")
    assert exc.status == 401 and exc.detail.startswith("token expired")
    assert (
        str(exc)
        == "the login to https://h:443 expired: run `statusdash login --server https://h:443`"
    )


def test_the_real_command_prints_one_line_without_a_traceback(tls_server: TlsLive) -> None:
    port = _port(tls_server.url)
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "statusdash.cli",
            "hosts",
            "ls",
            "--server",
            f"http://127.0.0.1:{port}",
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "STATUSDASH_TOKEN": "t"},
        timeout=60,
    )
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert out.stderr.strip() == (
        f"statusdash: cannot reach the server at http://127.0.0.1:{port}:"
        f" this server speaks HTTPS: use https://127.0.0.1:{port}"
    )
    assert httpx.URL(tls_server.url).scheme == "https"


def test_a_damaged_token_file_does_not_block_other_credentials(
    tls_server: TlsLive, tmp_path: Path
) -> None:
    store = tmp_path / "config" / "statusdash" / "token.json"
    store.parent.mkdir(parents=True)
    store.write_text("{not json")
    ca = str(tls_server.vault / "ca" / "ca.crt")
    clients = tls_server.vault / "clients"
    args = ["--server", tls_server.url, "--ca", ca]
    viewer = ["--cert", str(clients / "viewer.crt"), "--key", str(clients / "viewer.key")]
    r = runner.invoke(app, ["hosts", "ls", *args, *viewer])
    assert r.exit_code == 0, r.stderr


def test_an_unknown_log_level_is_a_usage_error_not_a_traceback() -> None:
    """``logging`` has no TRACE level: the choice is checked before the server starts."""
    r = runner.invoke(app, ["server", "run", "--insecure-http", "--log-level", "trace"])
    assert r.exit_code == 2 and "'trace' is not one of" in r.output
    assert r.exception is None or isinstance(r.exception, SystemExit)


def test_a_login_ended_by_a_new_password_says_so(tmp_path: Path) -> None:
    from pydantic import SecretStr

    settings = make_settings(tmp_path / "data")
    server = RunningServer(settings).start()
    try:
        login = ["login", "--server", server.url, "--password-stdin"]
        assert runner.invoke(app, login, input=ADMIN_PASSWORD + "\n").exit_code == 0
        assert runner.invoke(app, ["hosts", "ls"]).exit_code == 0
    finally:
        server.stop()
    other = settings.model_copy(update={"status_admin_password": SecretStr("another-password-456")})
    server = RunningServer(other).start()
    try:
        line = _line(runner.invoke(app, ["hosts", "ls"]))
        assert line == (
            f"statusdash: the login to {server.url} is no longer valid:"
            f" run `statusdash login --server {server.url}`"
        )
    finally:
        server.stop()
