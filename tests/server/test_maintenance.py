"""Maintenance windows and quiet hours per host tag (issue 16, item 7): a real server on
loopback, the CLI against it, a receiver for what is sent.

During a window an alert is recorded (``alerts ls`` marks it) but nothing is sent; when the
window ends, what is still firing is sent once; what fired and resolved inside it never is.

The host tags are the server-side tags (``PUT /api/hosts/{id}/tags``, ``ctx.tags``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from statusdash.server.alerts.maintenance import QuietHours
from statusdash.server.notify_apprise import parse_notify_urls
from tests.conftest import make_report
from tests.server.harness import FAST_RULES, Harness, cli_env, fetch_alerts, wait_for
from tests.server.receiver import Receiver, receiver

__all__ = ["receiver"]


TAGS = {"db-1": {"role": "db"}, "web-1": {"role": "web"}}


def start(alerting: Callable[..., Harness], rec: Receiver, rules: str = FAST_RULES) -> Harness:
    """A server whose db-1 and web-1 have reported (calm) and carry server tags ``TAGS``."""
    notify = parse_notify_urls(f"json://127.0.0.1:{rec.port}/chat")
    h = alerting(rules=rules, notify=notify, webhooks=[rec.url("/hook")])
    for host, tags in TAGS.items():
        hot(h, host, cpu=10)
        with h.live.reader() as r:
            put = r.put(f"/api/hosts/{host}/tags", json={"set": tags})
            assert put.status_code == 200, put.text
    return h


def hot(h: Harness, host: str, cpu: float = 97) -> None:
    with h.live.agent(host) as agent:
        r = agent.post("/api/metrics/report", json=make_report(host, cpu=cpu))
    assert r.status_code == 200, r.text


def sent(rec: Receiver, path: str = "/chat", rule: str = "cpu") -> list[str]:
    """The first words ("WARNING db-1") of what ``path`` got about ``rule`` (a host silent
    while the fake clock moves on goes offline: that is another rule)."""
    docs = [json.loads(b) for b in rec.seen(path)]
    return [d["message"].split(":")[0] for d in docs if f": {rule} on" in d["title"]]


def cli(env: dict[str, str], *args: str) -> Any:
    from statusdash.cli.main import app

    return CliRunner().invoke(app, list(args), env=env)


def test_a_window_sends_nothing_keeps_the_alert_and_sends_once_when_it_ends(
    alerting: Callable[..., Harness],
    receiver: Receiver,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    h = start(alerting, receiver)
    env = cli_env(h, tmp_path, monkeypatch)
    out = cli(env, "maintenance", "add", "--tag", "role=db", "--for", "2h", "--reason", "upgrade")
    assert out.exit_code == 0, out.output
    assert out.stdout.startswith("maintenance 1: role=db from ")
    hot(h, "db-1")  # in the window
    hot(h, "web-1")  # not in it
    wait_for(lambda: sent(receiver) == ["WARNING web-1"], what="web-1's notice")
    time.sleep(0.5)
    assert sent(receiver) == ["WARNING web-1"]  # nothing for db-1, on either kind of target
    assert [json.loads(b)["alert"]["host"] for b in receiver.seen("/hook")] == ["web-1"]
    alerts = {a["host"]: a for a in fetch_alerts(h.live)}
    assert set(alerts) == {"db-1", "web-1"}  # but db-1's alert is kept
    assert alerts["db-1"]["maintenance"].startswith("maintenance #1 role=db until ")
    assert alerts["web-1"]["maintenance"] is None
    listed = cli(env, "alerts", "ls")
    assert "firing (maintenance)" in listed.stdout
    shown = cli(env, "maintenance", "ls", "--json")
    [window] = json.loads(shown.stdout)
    assert (window["tag"], window["active"], window["reason"]) == ("role=db", True, "upgrade")
    out = cli(env, "maintenance", "rm", "1")  # the window ends: db-1 still fires, so it is sent
    assert out.exit_code == 0, out.output
    wait_for(lambda: len(sent(receiver)) == 2, what="db-1's notice after the window")
    time.sleep(0.5)
    assert sorted(sent(receiver)) == ["WARNING db-1", "WARNING web-1"]  # once
    assert cli(env, "maintenance", "ls").stdout.strip() == "no maintenance windows open or planned"
    assert "(maintenance)" not in cli(env, "alerts", "ls").stdout


def test_an_alert_that_fires_and_resolves_inside_a_window_is_never_sent(
    alerting: Callable[..., Harness], receiver: Receiver
) -> None:
    h = start(alerting, receiver)
    with h.live.reader() as r:
        made = r.post("/api/maintenance", json={"tag": "role=db", "for": "10m"})
        assert made.status_code == 201, made.text
    hot(h, "db-1")
    wait_for(lambda: fetch_alerts(h.live), what="the alert recorded")
    hot(h, "db-1", cpu=5)
    wait_for(lambda: not fetch_alerts(h.live), what="the alert resolved")
    h.clock.advance(11 * 60)  # the window is over
    time.sleep(0.5)  # a few checks pass
    assert sent(receiver) == [] and sent(receiver, "/hook") == []
    with h.live.reader() as r:
        assert r.get("/api/maintenance").json() == []
    assert not h.server.ctx.alerting.service.outbox


def test_a_planned_window_holds_nothing_until_it_starts_and_expires_by_itself(
    alerting: Callable[..., Harness], receiver: Receiver
) -> None:
    h = start(alerting, receiver)
    later = (datetime.now(UTC) + timedelta(hours=1)).replace(microsecond=0).isoformat()
    with h.live.reader() as r:
        made = r.post("/api/maintenance", json={"tag": "role=db", "for": "1h", "start": later})
        assert made.json()["active"] is False
    hot(h, "db-1")
    wait_for(lambda: sent(receiver) == ["WARNING db-1"], what="sent: the window is not open yet")
    h.clock.advance(3600 + 60)  # the window opens
    hot(h, "db-1", cpu=5)

    def db_calm() -> bool:
        return not [a for a in fetch_alerts(h.live) if a["host"] == "db-1"]

    wait_for(db_calm, what="db-1's alerts resolved")
    time.sleep(0.5)
    assert sent(receiver) == ["WARNING db-1"]  # the resolution waits for the window's end
    h.clock.advance(3600)  # it ends by itself
    wait_for(lambda: len(sent(receiver)) == 2, what="the resolution, after it")
    assert sent(receiver) == ["WARNING db-1", "RESOLVED db-1"]


def test_quiet_hours_in_the_rules_file_hold_back_their_hosts(
    alerting: Callable[..., Harness], receiver: Receiver
) -> None:
    rules = FAST_RULES + '[[quiet]]\nname = "nights"\ntags = {role = "db"}\nfrom = "00:00"\n'
    rules += 'to = "00:00"\ntz = "Europe/Berlin"\n'  # from = to: the whole of each day listed
    h = start(alerting, receiver, rules)
    hot(h, "db-1")
    hot(h, "web-1")
    wait_for(lambda: sent(receiver) == ["WARNING web-1"], what="web-1's notice")
    time.sleep(0.5)
    assert sent(receiver) == ["WARNING web-1"]
    db = next(a for a in fetch_alerts(h.live) if a["host"] == "db-1")
    assert db["maintenance"] == "quiet hours nights 00:00-00:00 Europe/Berlin"
    with h.live.reader() as r:
        [quiet] = r.get("/api/alerts/rules").json()["quiet"]
    assert quiet["tags"] == {"role": "db"} and quiet["from"] == "00:00"


def test_quiet_hours_across_midnight_in_a_time_zone() -> None:
    q = QuietHours.model_validate(
        {"days": ["fri"], "from": "22:00", "to": "06:00", "tz": "Europe/Berlin"}
    )
    berlin = {  # UTC times (CET is UTC+1 in December) and whether they are quiet
        datetime(2026, 12, 4, 20, 59, tzinfo=UTC): False,  # Fri 21:59 Berlin
        datetime(2026, 12, 4, 21, 0, tzinfo=UTC): True,  # Fri 22:00
        datetime(2026, 12, 5, 4, 59, tzinfo=UTC): True,  # Sat 05:59, Friday's night
        datetime(2026, 12, 5, 5, 0, tzinfo=UTC): False,  # Sat 06:00
        datetime(2026, 12, 5, 21, 30, tzinfo=UTC): False,  # Sat 22:30: not a listed day
    }
    assert {t: q.active(t) for t in berlin} == berlin


def test_bad_windows_are_refused_with_what_is_wrong(
    alerting: Callable[..., Harness],
    receiver: Receiver,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    h = start(alerting, receiver)
    with h.live.reader() as r:
        bad = r.post("/api/maintenance", json={"tag": "role", "for": "1h"})
        assert bad.status_code == 422 and "KEY=VALUE" in bad.text
        long = r.post("/api/maintenance", json={"tag": "role=db", "for": "1000d"})
        assert long.status_code == 422
        past = r.post(
            "/api/maintenance", json={"tag": "a=b", "for": "1h", "start": "2020-01-01T00:00Z"}
        )
        assert past.status_code == 409 and "already past" in past.json()["detail"]
        assert r.delete("/api/maintenance/99").status_code == 404
    env = cli_env(h, tmp_path, monkeypatch)
    out = cli(env, "maintenance", "add", "--tag", "nonsense")
    assert out.exit_code == 2 and "KEY=VALUE" in out.output
    out = cli(env, "maintenance", "add", "--tag", "a=b", "--start", "tomorrow")
    assert out.exit_code == 2 and "--start" in out.output
    out = cli(env, "maintenance", "rm", "42")
    assert out.exit_code == 1 and "no maintenance window with id 42" in out.output
    assert "Traceback" not in out.output
