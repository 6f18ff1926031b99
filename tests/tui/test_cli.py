"""``statusdash tui``: credentials and TLS problems are one line and an exit code, never a trace."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from statusdash.cli import tui
from tests.conftest import Live, make_report

runner = CliRunner()


pytestmark = pytest.mark.usefixtures("client_env")


def test_without_credentials_says_how_to_get_some() -> None:
    result = runner.invoke(tui.app, ["--server", "http://127.0.0.1:9"])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "statusdash login" in lines[0] and "Traceback" not in result.output


def test_cert_without_key_is_a_usage_error(tmp_path: Path) -> None:
    cert = tmp_path / "viewer.crt"
    cert.write_text("x")
    result = runner.invoke(tui.app, ["--server", "https://127.0.0.1:9", "--cert", str(cert)])
    assert result.exit_code == 2 and "--cert needs --key" in result.output


def test_unreadable_tls_files_fail_before_the_screen(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STATUSDASH_TOKEN", "t")
    result = runner.invoke(
        tui.app, ["--server", "https://127.0.0.1:9", "--ca", "/nonexistent/ca.crt"]
    )
    assert result.exit_code == 1 and "CA certificate /nonexistent/ca.crt: No such" in result.output


def test_the_cli_source_reads_a_real_server(
    live_server: Live, monkeypatch: pytest.MonkeyPatch
) -> None:
    with live_server.agent("web-1") as agent:
        assert agent.post("/api/metrics/report", json=make_report("web-1")).status_code == 200
    monkeypatch.setenv("STATUSDASH_TOKEN", live_server.token())
    source = tui.api_source(live_server.url, None, None, None)
    try:
        source.prefetch()  # the first answer comes from the early fetch, then from new requests
        assert [h.host for h in source.hosts()] == ["web-1"]
        assert [h.host for h in source.hosts()] == ["web-1"]
        assert source.sentiment().hosts.total == 1
    finally:
        source.close()
