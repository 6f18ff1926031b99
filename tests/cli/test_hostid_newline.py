"""A host id with a trailing newline is refused at every entry point (item 18).

Python's ``re`` lets ``$`` match before a final newline, so ``"web-1\\n"`` slips through
``match``/``search`` with a ``^...$`` pattern; each entry point is tried with it for real.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from statusdash.cli.main import app
from statusdash.pki.ca import issue_client_cert
from tests.conftest import Live, make_report

BAD = "web-1\n"
runner = CliRunner()


@pytest.fixture
def cli_env(live_server: Live, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Live:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("STATUSDASH_SERVER", live_server.url)
    monkeypatch.setenv("STATUSDASH_TOKEN", live_server.token())
    with live_server.agent("web-1") as agent:
        assert agent.post("/api/metrics/report", json=make_report("web-1")).status_code == 200
    return live_server


def _refused(*args: str) -> str:
    """Run the CLI: it must fail with one ``statusdash:`` line on stderr, no traceback."""
    r = runner.invoke(app, list(args))
    assert r.exit_code in (1, 2), r.output
    assert r.exception is None or isinstance(r.exception, SystemExit), r.exception
    assert "Traceback" not in r.output
    return r.stderr


def test_hosts_show_refuses_it(cli_env: Live) -> None:
    assert "web-1" in runner.invoke(app, ["hosts", "show", "web-1"]).stdout  # the real one works
    err = _refused("hosts", "show", BAD)
    assert err.startswith("statusdash:") and err.count("\n") == 1, err


def test_alerts_silence_refuses_it(cli_env: Live) -> None:
    err = _refused("alerts", "silence", BAD, "--for", "1h")
    assert "host" in err
    with cli_env.reader() as r:
        assert r.get("/api/alerts/silences").json() == []  # nothing muted


def test_agent_run_refuses_it() -> None:
    err = _refused("agent", "run", "--host-id", BAD, "--dry-run")
    assert "not a valid host id" in err


def test_keys_issue_refuses_it(tmp_path: Path) -> None:
    err = _refused("keys", "issue", BAD, "--data-dir", str(tmp_path / "data"))
    assert "not a valid host id" in err


def test_certs_issue_and_pki_refuse_it(tmp_path: Path) -> None:
    from statusdash.pki.ca import init_ca

    vault = tmp_path / "vault"
    init_ca(vault)
    err = _refused("certs", "issue", BAD, "--certs-dir", str(vault))
    assert "not a valid host id" in err
    with pytest.raises(ValueError, match="not a valid host id"):
        issue_client_cert(vault, BAD, "agent")
    assert not any("\n" in p.name for p in vault.rglob("*"))  # no file named after it


@pytest.mark.parametrize(
    "path",
    ["/api/hosts/web-1%0A", "/api/hosts/web-1%0A/history?metric=cpu.percent&since=1h"],
)
def test_server_path_parameters_refuse_it(live_server: Live, path: str) -> None:
    with live_server.agent("web-1") as agent:
        assert agent.post("/api/metrics/report", json=make_report("web-1")).status_code == 200
    with live_server.reader() as r:
        assert r.get("/api/hosts/web-1").status_code == 200
        got = r.get(path)
    assert got.status_code == 422, got.text
    assert set(got.json()) >= {"error", "detail"}


def test_server_payloads_refuse_it(live_server: Live) -> None:
    with live_server.agent("web-1") as agent:
        report = agent.post("/api/metrics/report", json=make_report(BAD))
        event = {"type": "SYSTEM_SERVICE_HEALTHY", "payload": {"serviceName": "x", "host": BAD}}
        events = agent.post("/api/events", json=event)
    with live_server.reader() as r:
        silence = r.post("/api/alerts/silences", json={"host": BAD, "for": "1h"})
    for got in (report, events, silence):
        assert got.status_code == 422, got.text
        assert set(got.json()) >= {"error", "detail"}
