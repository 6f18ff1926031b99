"""One outage, one page (issue 11, item 5a): notices grouped by rule and severity, as
Alertmanager's group_wait / group_interval, against a real server on loopback and a real
webhook receiver (tests/server/receiver.py). Grouping is off in the other tests (make_settings);
these turn it on with short intervals.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from statusdash.server.notify_apprise import parse_notify_urls
from statusdash.server.notify_group import GroupPolicy
from statusdash.settings import Settings
from tests.conftest import Live, free_port, make_report
from tests.server.harness import Harness, fetch_alerts, wait_for
from tests.server.receiver import Hook, Receiver, hook, receiver
from tests.server.test_hardening_alerts import alert, post_events, start_alerting

__all__ = ["hook", "receiver", "start_alerting"]


def policy(wait_s: float = 1.0, interval_s: float = 3.0, **over: Any) -> GroupPolicy:
    base: dict[str, Any] = {
        "wait_s": wait_s,
        "interval_s": interval_s,
        "by": ("rule", "severity"),
        "max_lines": 100,
        "max_alerts": 10_000,
    }
    base.update(over)
    return GroupPolicy(**base)


def report(h: Harness | Live, host: str, cpu: float = 10) -> None:
    live = h.live if isinstance(h, Harness) else h
    with live.agent(host) as agent:
        r = agent.post("/api/metrics/report", json=make_report(host, cpu=cpu))
    assert r.status_code == 200, r.text


def together(agents: dict[str, httpx.Client]) -> None:
    """Each host reports once, ten at a time (as a fleet coming back does)."""

    def one(host: str) -> None:
        r = agents[host].post("/api/metrics/report", json=make_report(host))
        assert r.status_code == 200, r.text

    with ThreadPoolExecutor(10) as pool:
        list(pool.map(one, agents))


def bodies(rec: Receiver, path: str = "/hook") -> list[dict[str, Any]]:
    return [json.loads(b) for b in rec.seen(path)]


def hosts_of(body: dict[str, Any]) -> list[str]:
    """The hosts a message tells of: its group's members, or its one alert."""
    return [a["host"] for a in alerts_of(body)]


def alerts_of(body: dict[str, Any]) -> list[dict[str, Any]]:
    if "alerts" in body:
        return [a["alert"] for a in body["alerts"]]
    return [body["alert"]]


def test_fifty_hosts_offline_together_are_one_page_and_one_resolution(
    alerting: Callable[..., Harness], receiver: Receiver
) -> None:
    h = alerting(webhooks=[receiver.url("/hook")], grouping=policy(wait_s=3.0, interval_s=3.0))
    hosts = [f"node-{i:02d}" for i in range(50)]
    agents = {host: h.live.agent(host) for host in hosts}  # made before: a client is slow to make
    together(agents)
    time.sleep(0.5)  # nothing to say yet: all are up
    assert receiver.seen("/hook") == []
    h.clock.advance(600)  # then silence: 60 intervals without a report, for every host
    wait_for(lambda: receiver.seen("/hook"), what="the page")
    time.sleep(3.5)  # past group_interval: still the one page
    [page] = bodies(receiver)
    assert page["event"] == "firing" and page["alert"] is None
    assert page["group"]["key"] == {"rule": "offline", "severity": "critical"}
    assert (page["group"]["firing"], page["group"]["sequence"]) == (50, 1)
    assert sorted(hosts_of(page)) == hosts == page["group"]["hosts"]
    head, *lines = page["text"].splitlines()
    assert head.startswith("CRITICAL rule=offline severity=critical: 50 firing on 50 hosts")
    assert len(lines) == 50 and all(line.startswith("CRITICAL node-") for line in lines)
    assert len(fetch_alerts(h.live)) == 50

    together(agents)  # the switch is back: every host reports again
    wait_for(lambda: len(receiver.seen("/hook")) == 2, what="the resolution")
    time.sleep(3.5)
    _, resolution = bodies(receiver)
    assert resolution["event"] == "resolved" and resolution["group"]["sequence"] == 2
    assert (resolution["group"]["resolved"], resolution["group"]["firing_in_all"]) == (50, 0)
    assert sorted(hosts_of(resolution)) == hosts
    assert resolution["text"].startswith("RESOLVED rule=offline severity=critical: 50 resolved")
    assert len(receiver.seen("/hook")) == 2
    wait_for(lambda: not h.server.ctx.alerting.service.outbox, what="the outbox empty")
    assert fetch_alerts(h.live) == []
    for client in agents.values():
        client.close()


def test_a_lone_alert_arrives_alone_after_group_wait_in_the_single_alert_shape(
    alerting: Callable[..., Harness], receiver: Receiver
) -> None:
    chat = parse_notify_urls(f"json://127.0.0.1:{receiver.port}/chat")  # an Apprise target
    h = alerting(
        webhooks=[receiver.url("/hook")], notify=chat, grouping=policy(wait_s=1.0, interval_s=3.0)
    )
    started = time.monotonic()
    report(h, "web-1", cpu=97)
    [body] = wait_for(lambda: bodies(receiver), what="the lone notice")
    paged = time.monotonic()
    assert paged - started >= 1.0  # it waited group_wait for company (none came)
    assert set(body) == {"source", "event", "title", "text", "alert", "sent_at"}
    assert body["event"] == "firing" and body["alert"]["host"] == "web-1"
    assert body["text"].startswith("WARNING web-1: CPU at 97%")
    chat_notice = wait_for(lambda: receiver.seen("/chat"), what="the Apprise notice")
    assert json.loads(chat_notice[0])["message"].startswith("WARNING web-1: CPU")
    # Its resolution is an update of the same group: group_interval after the page.
    report(h, "web-1", cpu=5)
    wait_for(lambda: len(receiver.seen("/hook")) == 2, what="the resolution")
    assert time.monotonic() - started >= 1.0 + 3.0  # group_interval after the page was sent
    resolved = bodies(receiver)[1]
    assert resolved["event"] == "resolved" and "group" not in resolved


def test_a_critical_from_another_host_is_not_held_behind_a_flood(
    start_alerting: Callable[..., Live], hook: Hook
) -> None:
    hook.gate.clear()  # the receiver holds every answer until the test lets go
    live = start_alerting(
        [hook.url("/hook")],
        max_event_alerts_per_host=1000,
        webhook_concurrency=1,  # one delivery at a time: arrival order is the queue's order
        grouping=policy(wait_s=0.5, interval_s=1.0, max_alerts=100),
    )
    assert post_events(live.agent("cache-1"), [alert("warm-up", "info")]).status_code == 200
    wait_for(lambda: hook.waiting == 1, what="the warm-up in flight")
    web = live.agent("web-1")
    for i in range(0, 300, 150):  # a flood: 300 warnings, more than the groups may buffer
        events = [alert(f"flood-{j}") for j in range(i, i + 150)]
        assert post_events(web, events).status_code == 200
    outbox = live.server.ctx.alerting.service.outbox
    wait_for(lambda: len(outbox) == 301, what="the flood in the outbox (and the warm-up)")
    assert post_events(live.agent("db-1"), [alert("db down", "critical")]).status_code == 200
    notifier = live.server.ctx.alerting.notifier
    wait_for(lambda: notifier._queue.qsize() == 2, what="both groups queued behind the warm-up")
    hook.gate.set()
    wait_for(lambda: not outbox, timeout=60, what="every notice delivered")
    messages = hook.bodies()
    assert hosts_of(messages[0]) == ["cache-1"]
    # db-1's critical got into a group although the flood filled them, and leaves first.
    assert messages[1]["alert"]["host"] == "db-1" and messages[1]["alert"]["severity"] == "critical"
    flood = [host for m in messages[2:] for host in hosts_of(m)]
    assert flood == ["web-1"] * 300
    assert len(messages) - 2 <= 10  # a few pages and updates, not 300
    subjects = [a["subject"] for m in messages[2:] for a in alerts_of(m)]
    assert sorted(subjects) == sorted(f"flood-{i}" for i in range(300))


def test_group_text_is_escaped_per_channel_names_the_authenticated_hosts_and_keeps_utf8(
    start_alerting: Callable[..., Live], hook: Hook
) -> None:
    html = parse_notify_urls(f"json://127.0.0.1:{hook.port}/html?format=html")
    live = start_alerting(
        [hook.url("/json")], notify=html, grouping=policy(wait_s=2.0, interval_s=30.0)
    )
    forged = "db-9: <!here> & disque plein ü\nCRITICAL fake-1: forged line"
    for agent in [live.agent("web-1"), live.agent("web-2")]:
        assert post_events(agent, [alert("disk", "critical", forged)]).status_code == 200
    wait_for(lambda: len(hook.requests) == 2, what="one message per target")
    time.sleep(0.5)
    assert len(hook.requests) == 2
    by_path = {p: (headers, body) for p, headers, body in hook.requests}
    doc = json.loads(by_path["/json"][1])
    assert sorted(hosts_of(doc)) == ["web-1", "web-2"] == doc["group"]["hosts"]
    assert "fake-1" not in doc["group"]["hosts"]
    lines = doc["text"].splitlines()
    assert len(lines) == 3  # the heading and one line per alert: a newline forges none
    assert lines[1].startswith("CRITICAL web-") and "\\x0aCRITICAL fake-1" in lines[1]
    rendered = json.loads(by_path["/html"][1])  # a target that renders HTML: escaped by Apprise
    assert rendered["message"].startswith("CRITICAL&nbsp;rule=event&nbsp;severity=critical")
    assert rendered["message"].endswith("See:&nbsp;statusdash&nbsp;alerts&nbsp;ls")
    assert "&lt;!here&gt;&nbsp;&amp;&nbsp;disque&nbsp;plein&nbsp;ü" in rendered["message"]
    assert "<!here>" not in rendered["message"]
    assert rendered["title"].startswith("statusdash: 2 firing") and rendered["type"] == "failure"


def test_a_failed_group_delivery_is_recorded_and_frees_its_alerts(
    start_alerting: Callable[..., Live],
) -> None:
    url = f"http://127.0.0.1:{free_port()}/gone/secret-path"  # nothing listens there
    live = start_alerting([url], grouping=policy(wait_s=2.0, interval_s=30.0))
    agents = [live.agent(host) for host in ("web-1", "web-2", "web-3")]  # made before: slow
    for agent in agents:
        assert post_events(agent, [alert("x", "critical")]).status_code == 200
    with live.reader() as r:
        rows = wait_for(lambda: r.get("/api/notifications/failures").json(), what="the failure")
    [row] = rows
    assert (row["event"], row["alert_id"], row["attempts"]) == ("firing", None, 2)
    assert "secret-path" not in json.dumps(row)
    outbox = live.server.ctx.alerting.service.outbox
    wait_for(lambda: not outbox, what="the group's alerts given up on, not in flight forever")


def test_group_settings_have_defaults_and_refuse_an_unknown_label() -> None:
    s = Settings(_env_file=None)
    assert (s.notify_group_wait_s, s.notify_group_interval_s) == (30.0, 300.0)
    assert GroupPolicy.from_settings(s).by == ("rule", "severity")
    assert GroupPolicy.from_settings(Settings(_env_file=None, notify_group_by="")).by == ()
    with pytest.raises(ValidationError, match="unknown label 'colour'"):
        Settings(_env_file=None, notify_group_by="rule,colour")
    assert not GroupPolicy.from_settings(Settings(_env_file=None, notify_group_wait_s=0)).on


def test_a_group_message_that_cannot_be_built_still_goes_out_naming_its_hosts(
    start_alerting: Callable[..., Live], hook: Hook, monkeypatch: pytest.MonkeyPatch
) -> None:
    from statusdash.server import notify_group

    def broken(*args: Any) -> Any:
        raise RuntimeError("a bug in the group's text")

    monkeypatch.setattr(notify_group, "group_notice", broken)
    live = start_alerting([hook.url("/hook")], grouping=policy(wait_s=2.0, interval_s=30.0))
    for agent in [live.agent("web-1"), live.agent("web-2")]:
        assert post_events(agent, [alert("x", "critical")]).status_code == 200
    [body] = wait_for(lambda: hook.bodies(), what="the plain message")
    assert body["text"] == "2 alert changes in rule=event severity=critical on web-1, web-2"
    outbox = live.server.ctx.alerting.service.outbox
    wait_for(lambda: not outbox, what="its alerts notified, not stranded")


def test_a_notice_still_waiting_in_its_group_at_shutdown_goes_out_once_after_the_start(
    alerting: Callable[..., Harness], receiver: Receiver
) -> None:
    h = alerting(webhooks=[receiver.url("/hook")], grouping=policy(wait_s=2.0, interval_s=30.0))
    report(h, "web-1", cpu=97)
    wait_for(lambda: fetch_alerts(h.live), what="the alert")
    h.restart()  # within group_wait: nothing was sent, nothing marked notified
    assert receiver.seen("/hook") == []
    [body] = wait_for(lambda: bodies(receiver), what="the notice after the restart")
    assert body["alert"]["host"] == "web-1" and body["event"] == "firing"
    h.restart()  # delivered: not again
    time.sleep(2.5)
    assert len(receiver.seen("/hook")) == 1
