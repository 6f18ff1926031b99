"""``GET /api/agents`` and ``statusdash agent status``: version, spool backlog, certificate's
end and "behind", from the reports' ``agent`` section and the mTLS peer certificate."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from typer.testing import CliRunner

from statusdash import __version__, wire
from statusdash.cli.main import app
from statusdash.pki.check import load_cert
from statusdash.schema import version_tuple
from tests.conftest import Live, TlsLive, make_report


def post(live: Live, host: str, **extra: Any) -> None:
    with live.agent(host) as c:
        resp = c.post("/api/metrics/report", json=make_report(host, **extra))
        assert resp.status_code == 200, resp.text


def test_agents_lists_version_backlog_and_behind(live_server: Live) -> None:
    post(live_server, "old-1", agent={"version": "0.0.9", "spool_backlog": 5})
    post(live_server, "new-1", agent={"version": __version__, "spool_backlog": 0})
    post(live_server, "mute-1")  # an agent too old to send the section
    with live_server.reader() as r:
        body = r.get("/api/agents").json()
    assert body["server_version"] == __version__
    by_host = {a["host"]: a for a in body["agents"]}
    assert by_host["old-1"]["version"] == "0.0.9" and by_host["old-1"]["behind"] is True
    assert by_host["old-1"]["spool_backlog"] == 5 and by_host["old-1"]["status"] == "up"
    assert by_host["new-1"]["behind"] is False
    assert by_host["mute-1"]["version"] is None and by_host["mute-1"]["behind"] is None
    assert by_host["old-1"]["cert_not_after"] is None  # an API key has no certificate


def test_agents_is_denied_without_a_reader_credential(live_server: Live) -> None:
    import httpx

    assert httpx.get(f"{live_server.url}/api/agents").status_code == 401
    with live_server.agent("web-1") as c:  # an agent's key reads nothing
        resp = c.get("/api/agents")
    assert resp.status_code in (401, 403) and "detail" in resp.json()


def test_cert_not_after_comes_from_the_mtls_peer(tls_server: TlsLive) -> None:
    with tls_server.client("web-1") as c:
        report = make_report("web-1", agent={"version": __version__, "spool_backlog": 1})
        assert c.post("/api/metrics/report", json=report).status_code == 200
    with tls_server.client("viewer") as c:
        agent = c.get("/api/agents").json()["agents"][0]
    end = load_cert(tls_server.vault / "clients" / "web-1.crt").not_valid_after_utc
    assert datetime.fromisoformat(agent["cert_not_after"]) == end


def test_the_agent_section_is_bounded() -> None:
    now = datetime.now(UTC)
    for bad, field in (
        ({"version": "x" * 65}, "agent.version"),
        ({"version": "1", "spool_backlog": -1}, "agent.spool_backlog"),
        ({"version": "1", "cert_not_after": "2030-01-01T00:00:00"}, "agent.cert_not_after"),
        ({"spool_backlog": 1}, "agent.version"),
    ):
        with pytest.raises(wire.WireError) as err:
            wire.decode_report(json.dumps(make_report(agent=bad)), now=now, max_age=timedelta(1))
        assert err.value.path == field


def test_version_order() -> None:
    assert version_tuple("0.1.10") > version_tuple("0.1.9") > version_tuple("0.1")
    assert version_tuple("1.2rc1") == (1, 2) and version_tuple("dev") == ()


def test_agent_status_cli(
    live_server: Live, tmp_path: Any, monkeypatch: pytest.MonkeyPatch, client_env: None
) -> None:
    post(live_server, "old-1", agent={"version": "0.0.9", "spool_backlog": 5})
    env = {"STATUSDASH_SERVER": live_server.url, "STATUSDASH_TOKEN": live_server.token()}
    result = CliRunner().invoke(app, ["agent", "status", "--json"], env=env)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["agents"][0]["spool_backlog"] == 5
    table = CliRunner().invoke(app, ["agent", "status"], env=env)
    assert table.exit_code == 0, table.output
    row = next(line for line in table.stdout.splitlines() if "old-1" in line)
    assert "0.0.9" in row and "yes" in row and " 5 " in row
    none = CliRunner().invoke(app, ["agent", "status"], env={"STATUSDASH_SERVER": live_server.url})
    assert none.exit_code == 1 and "not logged in" in none.stderr
