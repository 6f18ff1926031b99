"""``statusdash hosts tag`` / ``hosts ls --tag`` / tags in ``ls --json`` and ``show`` against a
real server; bad input is one line and exit 1; ``agent run --tag`` puts tags on the report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from statusdash.cli.main import app
from statusdash.schema import HostSummary
from tests.conftest import Live, make_report

runner = CliRunner()


@pytest.fixture
def env(live_server: Live, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Live:
    monkeypatch.chdir(tmp_path)  # no stray .env
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("STATUSDASH_SERVER", live_server.url)
    monkeypatch.setenv("STATUSDASH_TOKEN", live_server.token())
    web = make_report("web-1", tags={"role": "web", "dc": "fra"})
    db = make_report("db-1", tags={"role": "db", "dc": "fra"})
    assert live_server.agent("web-1").post("/api/metrics/report", json=web).status_code == 200
    assert live_server.agent("db-1").post("/api/metrics/report", json=db).status_code == 200
    return live_server


def ls(*args: str) -> list[HostSummary]:
    r = runner.invoke(app, ["hosts", "ls", "--json", *args])
    assert r.exit_code == 0, r.output
    return [HostSummary.model_validate(h) for h in json.loads(r.stdout)]


def test_tag_ls_and_show(env: Live) -> None:
    assert {h.host: h.tags for h in ls()} == {
        "db-1": {"dc": "fra", "role": "db"},
        "web-1": {"dc": "fra", "role": "web"},
    }
    assert [h.host for h in ls("--tag", "role=db")] == ["db-1"]
    assert [h.host for h in ls("--tag", "dc=fra", "--tag", "role=web")] == ["web-1"]

    r = runner.invoke(app, ["hosts", "tag", "web-1", "role=db", "dc=", "owner=ops"])
    assert r.exit_code == 0, r.output
    assert "role=db (operator)" in r.stdout and "blocked: dc" in r.stdout
    assert [h.host for h in ls("--tag", "role=db")] == ["db-1", "web-1"]
    assert [h.host for h in ls("--tag", "dc=fra")] == ["db-1"]

    table = runner.invoke(app, ["hosts", "ls", "--tag", "owner=ops"], env={"COLUMNS": "160"})
    assert table.exit_code == 0 and "owner=ops,role=db" in table.stdout
    assert "db-1" not in table.stdout
    empty = runner.invoke(app, ["hosts", "ls", "--tag", "owner=nobody"])
    assert empty.exit_code == 0 and "no host has the tags owner=nobody" in empty.output

    show = runner.invoke(app, ["hosts", "show", "web-1"])
    assert show.exit_code == 0, show.output
    assert "tag role=db  from operator (agent said web)" in show.stdout
    assert "tag dc blocked by the server" in show.stdout
    detail = json.loads(runner.invoke(app, ["hosts", "show", "web-1", "--json"]).stdout)
    assert detail["tags"]["owner"] == {"value": "ops", "source": "operator", "agent_value": None}

    r = runner.invoke(app, ["hosts", "tag", "web-1", "--rm", "dc", "--rm", "role", "--json"])
    assert r.exit_code == 0, r.output
    body = json.loads(r.stdout)
    assert body["tags"]["dc"] == {"value": "fra", "source": "agent"}
    assert body["tags"]["role"]["source"] == "agent" and body["tags_blocked"] == []


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["hosts", "tag", "web-1", "role"], "must be KEY=VALUE"),
        (["hosts", "tag", "web-1", "Role=db"], "tag key 'Role'"),
        (["hosts", "tag", "web-1", "role=" + "x" * 129], "at most 128"),
        (["hosts", "tag", "web-1"], "nothing to change"),
        (["hosts", "tag", "web-1", "--rm", "9x"], "--rm: tag key '9x'"),
        (["hosts", "tag", "nope-9", "a=b"], "no host named 'nope-9'"),
        (["hosts", "ls", "--tag", "role"], "must be KEY=VALUE"),
        (["hosts", "ls", "--tag", "role="], "the value is empty"),
    ],
)
def test_bad_input_is_one_line_and_exit_1(env: Live, args: list[str], words: str) -> None:
    r = runner.invoke(app, args)
    assert r.exit_code == 1, r.output
    assert words in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_agent_dry_run_puts_tags_on_the_report(tmp_path: Path) -> None:
    r = runner.invoke(
        app,
        ["agent", "run", "--dry-run", "--host-id", "db-1", "--tag", "role=db", "--tag", "dc=fra"],
    )
    assert r.exit_code == 0, r.output
    report = json.loads(r.stdout)
    assert report["tags"] == {"dc": "fra", "role": "db"}
    bad = runner.invoke(app, ["agent", "run", "--dry-run", "--host-id", "db-1", "--tag", "x"])
    assert bad.exit_code == 2 and "--tag" in bad.stderr
