"""Host tags against a real server on loopback: agent tags arrive over mTLS, server tags win and
survive a restart, a host cannot unset a server tag, an enrollment token's tags become server
tags, ``?tag=`` filters the fleet, only readers may set tags, and rules target tags."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization

from statusdash.tlsclient import client_context
from tests.conftest import TlsLive, make_report
from tests.server.enroll_helpers import csr_for, new_token, operator_env
from tests.server.harness import Harness, fetch_alerts, wait_for

TAG_RULES = """
[rules.cpu]
threshold = 90
clear = 80
for = 0
tags = {role = "db"}
[rules.memory]
for = 0
[rules.disk]
for = 0
"""


def report(host: str, tags: dict[str, str] | None = None, **kw: Any) -> dict[str, Any]:
    return make_report(host, tags=tags or {}, **kw)


def put_tags(c: httpx.Client, host: str, **body: Any) -> httpx.Response:
    return c.put(f"/api/hosts/{host}/tags", json=body)


def test_agent_tags_arrive_and_server_tags_win_over_mtls(tls_server: TlsLive) -> None:
    live = tls_server
    with live.client("db-1") as agent, live.client("viewer") as viewer:
        sent = report("db-1", {"role": "db", "dc": "fra", "tier": "gold"})
        assert agent.post("/api/metrics/report", json=sent).status_code == 200
        (row,) = viewer.get("/api/hosts").json()
        assert row["tags"] == {"dc": "fra", "role": "db", "tier": "gold"}

        # The operator moves it to dc=ber and blocks "tier"; the agent's values no longer count.
        r = put_tags(viewer, "db-1", set={"dc": "ber", "tier": "", "owner": "ops"})
        assert r.status_code == 200, r.text
        assert r.json()["tags"]["dc"] == {
            "value": "ber",
            "source": "operator",
            "agent_value": "fra",
        }
        assert r.json()["tags_blocked"] == ["tier"]

        # The host keeps sending its own tags, and tries to unset the server's: it cannot.
        later = datetime.now(UTC) + timedelta(seconds=1)
        again = report("db-1", {"role": "db", "dc": "fra", "tier": "gold"}, at=later)
        assert agent.post("/api/metrics/report", json=again).status_code == 200
        (row,) = viewer.get("/api/hosts").json()
        assert row["tags"] == {"dc": "ber", "owner": "ops", "role": "db"}
        detail = viewer.get("/api/hosts/db-1").json()
        assert detail["tags"]["role"] == {"value": "db", "source": "agent", "agent_value": None}
        assert detail["tags"]["owner"]["source"] == "operator"
        assert detail["tags_blocked"] == ["tier"]
        assert detail["summary"]["tags"] == row["tags"]
        # An agent certificate may not set tags: not its own, not another host's.
        refused = put_tags(agent, "db-1", remove=["dc"])
        assert refused.status_code == 403 and "may not read" in refused.json()["detail"]
        with live.client(None) as anonymous:
            assert put_tags(anonymous, "db-1", remove=["dc"]).status_code == 401

    live.server.stop()  # server tags are stored: a restart keeps them
    live.server.start()
    with live.client("viewer") as viewer:
        assert viewer.get("/api/hosts/db-1").json()["summary"]["tags"] == {
            "dc": "ber", "owner": "ops", "role": "db",
        }  # fmt: skip
        # Removing a server tag gives the key back to the agent.
        r = put_tags(viewer, "db-1", remove=["dc", "tier"])
        assert r.status_code == 200
        assert viewer.get("/api/hosts").json()[0]["tags"] == {
            "dc": "fra", "owner": "ops", "role": "db", "tier": "gold",
        }  # fmt: skip


def test_bad_tags_are_4xx_naming_what_is_wrong(tls_server: TlsLive) -> None:
    live = tls_server
    with live.client("db-1") as agent, live.client("viewer") as viewer:
        bad_key = agent.post("/api/metrics/report", json=report("db-1", {"Role": "db"}))
        assert bad_key.status_code == 422 and "tags" in bad_key.text
        long = agent.post("/api/metrics/report", json=report("db-1", {"role": "x" * 129}))
        assert long.status_code == 422 and "tags" in long.text
        many = {f"k{i}": "v" for i in range(33)}
        assert agent.post("/api/metrics/report", json=report("db-1", many)).status_code == 422
        assert agent.post("/api/metrics/report", json=report("db-1", {"role": "x" * 128}))
        cases: list[tuple[dict[str, Any], str]] = [
            ({"set": {"Bad Key": "x"}}, "tag key"),
            ({"set": {"role": "y" * 129}}, "at most 128"),
            ({"remove": ["-x"]}, "tag key"),
            ({"sett": {}}, "sett"),
        ]
        for body, words in cases:
            r = put_tags(viewer, "db-1", **body)
            assert r.status_code == 422, (body, r.text)
            assert words in r.json()["detail"], r.text
        missing = put_tags(viewer, "nope-1", set={"a": "b"})
        assert missing.status_code == 404 and "db-1" in missing.json()["detail"]
        bad_filter = viewer.get("/api/hosts", params={"tag": "role"})
        assert bad_filter.status_code == 422 and "KEY=VALUE" in bad_filter.json()["detail"]


def test_tag_filter_is_an_and_of_every_tag(tls_server: TlsLive) -> None:
    live = tls_server
    with live.client("db-1") as db, live.client("web-1") as web, live.client("viewer") as v:
        db.post("/api/metrics/report", json=report("db-1", {"role": "db", "dc": "fra"}))
        web.post("/api/metrics/report", json=report("web-1", {"role": "web", "dc": "fra"}))

        def hosts(*tags: str) -> list[str]:
            r = v.get("/api/hosts", params=[("tag", t) for t in tags])
            assert r.status_code == 200, r.text
            return [h["host"] for h in r.json()]

        assert hosts("dc=fra") == ["db-1", "web-1"]
        assert hosts("dc=fra", "role=db") == ["db-1"]
        assert hosts("role=db", "dc=ber") == []
        put_tags(v, "web-1", set={"role": "db"})  # the server's tag is what the filter sees
        assert hosts("role=db") == ["db-1", "web-1"]
        put_tags(v, "db-1", set={"role": ""})
        assert hosts("role=db") == ["web-1"]


def test_enrollment_token_tags_become_server_tags(
    tls_server: TlsLive, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    live = tls_server
    operator_env(live, monkeypatch, tmp_path)
    t = new_token("--hosts", "db-*", "--tag", "role=db", "--tag", "maint=")
    assert t["tags"] == {"maint": "", "role": "db"}
    key, csr = csr_for("db-7")
    with live.client(None) as anon:
        r = anon.post("/api/enroll", json={"token": t["token"], "csr": csr})
    assert r.status_code == 200, r.text
    conn = sqlite3.connect(live.settings.db_path)
    stored = conn.execute("SELECT key, value, source FROM host_tags WHERE host = 'db-7'").fetchall()
    conn.close()
    assert sorted(stored) == [("maint", "", "token"), ("role", "db", "token")]

    (tmp_path / "db-7.crt").write_text(r.json()["certificate"])
    (tmp_path / "db-7.key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    ctx = client_context(live.vault / "ca" / "ca.crt", tmp_path / "db-7.crt", tmp_path / "db-7.key")
    with httpx.Client(base_url=live.url, verify=ctx, timeout=10) as agent:
        sent = report("db-7", {"role": "web", "maint": "yes", "dc": "fra"})
        assert agent.post("/api/metrics/report", json=sent).status_code == 200
    with live.client("viewer") as v:
        detail = v.get("/api/hosts/db-7").json()
    assert detail["summary"]["tags"] == {"dc": "fra", "role": "db"}
    assert detail["tags"]["role"]["source"] == "token"
    assert detail["tags_blocked"] == ["maint"]


def test_a_rule_with_tags_judges_only_matching_hosts(alerting: Callable[..., Harness]) -> None:
    h = alerting(rules=TAG_RULES)
    db, web = h.live.agent("db-1"), h.live.agent("web-1")
    assert db.post("/api/metrics/report", json=report("db-1", {"role": "db"}, cpu=97)).is_success
    assert web.post("/api/metrics/report", json=report("web-1", {}, cpu=97)).is_success
    firing = wait_for(lambda: [a for a in fetch_alerts(h.live) if a["state"] == "firing"])
    assert [(a["rule"], a["host"]) for a in firing] == [("cpu", "db-1")]

    with h.live.reader() as r:
        rules = r.get("/api/alerts/rules").json()
        assert rules["rules"]["cpu"]["tags"] == {"role": "db"}
        assert rules["rules"]["memory"]["tags"] == {}
        # The operator says web-1 is a db too: the rule now judges it; db-1's own claim is
        # blocked by a server tag, and its alert resolves with its next report.
        assert put_tags(r, "web-1", set={"role": "db"}).status_code == 200
        assert put_tags(r, "db-1", set={"role": ""}).status_code == 200
    later = datetime.now(UTC) + timedelta(seconds=1)
    db.post("/api/metrics/report", json=report("db-1", {"role": "db"}, cpu=97, at=later))
    web.post("/api/metrics/report", json=report("web-1", {}, cpu=97, at=later))

    def now_firing() -> list[tuple[str, str]]:
        out = [(a["rule"], a["host"]) for a in fetch_alerts(h.live) if a["state"] == "firing"]
        return out if out == [("cpu", "web-1")] else []

    assert wait_for(now_firing, what="only web-1 firing") == [("cpu", "web-1")]
    resolved = fetch_alerts(h.live, "resolved")
    assert [(a["rule"], a["host"]) for a in resolved] == [("cpu", "db-1")]


def test_a_bad_tags_value_in_the_rules_file_is_refused(tmp_path: Path) -> None:
    from statusdash.server.alerts.rules import RulesError, default_rules, load_rules

    path = tmp_path / "rules.toml"
    path.write_text('[rules.disk]\ntags = {Role = "db"}\n')
    with pytest.raises(RulesError, match=r"rules\.disk\.tags"):
        load_rules(path, default_rules())
    path.write_text('[rules.disk]\ntags = {role = "db"}\n')
    assert load_rules(path, default_rules()).spec("disk", "h").tags == (("role", "db"),)


def test_the_real_agent_sends_its_tags_over_mtls(tls_server: TlsLive, tmp_path: Path) -> None:
    import subprocess

    from tests.agent.agentproc import CLI, clean_env

    live = tls_server
    args = [
        *CLI, "--once", "--server", live.url, "--certs-dir", str(live.vault),
        "--host-id", "db-1", "--spool-dir", str(tmp_path / "spool"), "--tag", "role=db",
    ]  # fmt: skip
    env = {**clean_env(), "STATUSDASH_AGENT_TAGS": "ignored=by-the-option"}
    done = subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=90)
    assert done.returncode == 0, done.stderr
    env["STATUSDASH_AGENT_TAGS"] = "role=db dc=fra"  # the environment, when no --tag is given
    done = subprocess.run(
        args[:-2], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=90
    )
    assert done.returncode == 0, done.stderr
    with live.client("viewer") as v:
        assert v.get("/api/hosts").json()[0]["tags"] == {"dc": "fra", "role": "db"}
