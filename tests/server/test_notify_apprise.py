"""NOTIFY_URLS through Apprise against real receivers on loopback (issue 16, items 7-8).

A real SMTP server (aiosmtpd) gets mail through Apprise's ``mailto://``; the local webhook
receiver gets Apprise's ``json://`` and, beside it, our own WEBHOOK_URLS payload (unchanged).
Each target is delivered to on its own: a retry does not resend to one that has the message, a
hung one holds no other up; routes pick targets by rule and by severity.
"""

from __future__ import annotations

import email
import json
import logging
import socket
import time
from collections.abc import Callable, Iterator
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from statusdash.errors import Invalid
from statusdash.server.alerts.config import parse_routes
from statusdash.server.alerts.rules import RulesError, default_rules, load_rules
from statusdash.server.notify import parse_targets
from statusdash.server.notify_apprise import parse_notify_urls
from statusdash.settings import Settings
from tests.conftest import free_port, make_report
from tests.server.harness import FAST_RULES, Harness, fetch_alerts, wait_for
from tests.server.receiver import Receiver, receiver
from tests.server.test_hardening_alerts import alert, post_events

__all__ = ["receiver"]


class Inbox:
    def __init__(self) -> None:
        self.mails: list[tuple[str, list[str], Message]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content)
        self.mails.append((envelope.mail_from, list(envelope.rcpt_tos), message))
        return "250 OK"


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    """A real SMTP server on a loopback port (aiosmtpd in its own thread)."""
    inbox, port = Inbox(), free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield inbox, port
    controller.stop()


def body_of(message: Message, kind: str = "text/plain") -> str:
    part = next(p for p in message.walk() if p.get_content_type() == kind)
    payload = part.get_payload(decode=True)
    assert isinstance(payload, bytes)
    return payload.decode(part.get_content_charset() or "utf-8")


def hot(h: Harness, host: str = "web-1", cpu: float = 97) -> None:
    with h.live.agent(host) as agent:
        r = agent.post("/api/metrics/report", json=make_report(host, cpu=cpu))
    assert r.status_code == 200, r.text


def failures(h: Harness) -> list[dict[str, Any]]:
    with h.live.reader() as r:
        rows: list[dict[str, Any]] = r.get("/api/notifications/failures").json()
        return rows


def docs(rec: Receiver, path: str) -> list[dict[str, Any]]:
    return [json.loads(b) for b in rec.seen(path)]


def test_mail_through_a_real_smtp_server_arrives_once_for_firing_and_once_for_resolved(
    alerting: Callable[..., Harness], smtp: tuple[Inbox, int]
) -> None:
    inbox, port = smtp
    url = f"mail=mailto://127.0.0.1:{port}?from=statusdash@example.com&to=ops@example.com"
    h = alerting(notify=parse_notify_urls(url))
    hot(h, cpu=97)
    wait_for(lambda: inbox.mails, what="the firing mail")
    sender, to, fired = inbox.mails[0]
    assert (sender, to) == ("statusdash@example.com", ["ops@example.com"])
    assert fired["Subject"] == "statusdash alert: cpu on web-1"
    text = body_of(fired)
    assert text.startswith("WARNING web-1: CPU at 97%")  # the host, the rule, the value
    assert "See: statusdash alerts ls --host web-1" in text  # and how to see it
    hot(h, cpu=5)
    wait_for(lambda: len(inbox.mails) == 2, what="the resolved mail")
    _, _, resolved = inbox.mails[1]
    assert resolved["Subject"] == "statusdash resolved: cpu on web-1"
    assert body_of(resolved).startswith("RESOLVED web-1: CPU")
    wait_for(lambda: not h.server.ctx.alerting.service.outbox, what="the outbox empty")
    time.sleep(0.5)
    assert len(inbox.mails) == 2  # once each
    assert failures(h) == []


def test_html_mail_escapes_what_an_agent_wrote(
    alerting: Callable[..., Harness], smtp: tuple[Inbox, int]
) -> None:
    inbox, port = smtp
    url = f"mailto://127.0.0.1:{port}?from=sd@example.com&to=ops@example.com&format=html"
    h = alerting(notify=parse_notify_urls(url))
    forged = alert("disk", "critical", message='<a href="http://evil">click</a> & <b>me</b>')
    assert post_events(h.live.agent("web-1"), [forged]).status_code == 200
    [(_, _, mail)] = wait_for(lambda: inbox.mails, what="the mail")
    html = body_of(mail, "text/html")
    assert "&lt;a&nbsp;href=&quot;" in html and "&lt;b&gt;me&lt;/b&gt;" in html and "&amp;" in html
    assert "<a href" not in html and "<b>" not in html


def test_apprise_json_and_our_webhook_side_by_side_with_a_link(
    alerting: Callable[..., Harness], receiver: Receiver
) -> None:
    notify = parse_notify_urls(f"json://127.0.0.1:{receiver.port}/apprise")
    h = alerting(webhooks=[receiver.url("/hook")], notify=notify, public_url="https://dash.example")
    hot(h)
    wait_for(lambda: receiver.seen("/apprise") and receiver.seen("/hook"), what="both")
    [ours] = docs(receiver, "/hook")
    assert set(ours) == {"source", "event", "title", "text", "alert", "sent_at"}  # unchanged
    assert ours["text"] == "WARNING web-1: CPU at 97%" or ours["text"].startswith("WARNING web-1")
    assert "See:" not in ours["text"] and ours["alert"]["rule"] == "cpu"
    [theirs] = docs(receiver, "/apprise")
    assert theirs["type"] == "warning" and theirs["title"] == "statusdash alert: cpu on web-1"
    link = "https://dash.example/api/alerts?host=web-1"
    assert theirs["message"].endswith(f"See: {link} (or statusdash alerts ls --host web-1)")
    with h.live.reader() as r:  # the link answers with that host's alerts
        listed = r.get("/api/alerts", params={"host": "web-1"}).json()
        assert [a["host"] for a in listed] == ["web-1"]
        assert r.get("/api/alerts", params={"host": "db-9"}).json() == []
        assert r.get("/api/alerts", params={"host": "Bad Host"}).status_code == 422


def test_a_retry_does_not_resend_to_the_target_that_already_has_it(
    alerting: Callable[..., Harness], receiver: Receiver
) -> None:
    receiver.fail_first = {"/flaky": 2}
    urls = f"json://127.0.0.1:{receiver.port}/ok json://127.0.0.1:{receiver.port}/flaky"
    h = alerting(notify=parse_notify_urls(urls))
    hot(h)
    wait_for(lambda: receiver.seen("/flaky"), what="the flaky target, third time")
    assert len(receiver.seen("/flaky", ok_only=False)) == 3  # 500, 500, then 200
    assert len(receiver.seen("/ok", ok_only=False)) == 1  # delivered once, never again
    assert failures(h) == []


def test_a_hung_target_does_not_hold_up_another(
    alerting: Callable[..., Harness], receiver: Receiver
) -> None:
    receiver.hang_first = {"/hang"}
    urls = f"json://127.0.0.1:{receiver.port}/hang json://127.0.0.1:{receiver.port}/ok"
    h = alerting(notify=parse_notify_urls(urls), notify_deadline_s=2.0, webhook_attempts=3)
    try:
        started = time.monotonic()
        hot(h)
        wait_for(lambda: receiver.seen("/ok"), what="the healthy target")
        assert time.monotonic() - started < 2.0  # it did not wait for the hung one
        assert receiver.seen("/hang") == []  # which is still stuck in its first attempt
        # Past the deadline the first attempt is given up on and the retry gets through.
        wait_for(lambda: receiver.seen("/hang"), timeout=20, what="the hung target's retry")
        assert len(receiver.seen("/ok", ok_only=False)) == 1
        assert failures(h) == []
    finally:
        receiver.release.set()


def test_routes_by_severity_and_by_rule_and_the_rules_endpoint_shows_them(
    alerting: Callable[..., Harness], receiver: Receiver
) -> None:
    base = f"json://127.0.0.1:{receiver.port}"
    notify = parse_notify_urls(f"pager={base}/pager, chat={base}/chat")
    rules = FAST_RULES.replace("[rules.memory]\n", '[rules.memory]\nnotify = ["pager"]\n')
    rules += '[routes]\nwarning = ["chat"]\n'
    routes = parse_routes("critical=pager warning=pager,chat")  # the file's warning wins
    h = alerting(rules=rules, notify=notify, routes=routes)
    hot(h, "web-1", cpu=97)  # cpu: a warning, routed to chat
    wait_for(lambda: receiver.seen("/chat"), what="the warning in chat")
    critical = alert("disk", "critical", message="disk full")
    assert post_events(h.live.agent("db-1"), [critical]).status_code == 200
    wait_for(lambda: receiver.seen("/pager"), what="the critical page")
    report = make_report("web-2", cpu=10, mem=99)  # memory: a warning, its rule says pager
    with h.live.agent("web-2") as agent:
        assert agent.post("/api/metrics/report", json=report).status_code == 200
    wait_for(lambda: len(receiver.seen("/pager")) == 2, what="the memory page")
    wait_for(lambda: not h.server.ctx.alerting.service.outbox, what="the outbox empty")
    chat = [d["message"] for d in docs(receiver, "/chat")]
    pager = sorted(d["message"].split(":")[0] for d in docs(receiver, "/pager"))
    assert [m.split(":")[0] for m in chat] == ["WARNING web-1"]
    assert pager == ["CRITICAL db-1", "WARNING web-2"]
    with h.live.reader() as r:
        shown = r.get("/api/alerts/rules").json()
    assert shown["routes"] == {"critical": ["pager"], "warning": ["chat"]}
    assert shown["rules"]["memory"]["notify"] == ["pager"]
    assert shown["rules"]["cpu"]["notify"] is None
    assert len(fetch_alerts(h.live)) == 3


def test_bad_urls_and_routes_are_refused_at_start_without_their_secrets(tmp_path: Path) -> None:
    with pytest.raises(Invalid, match=r"#2 \(chat, nosuch://…\) is not a URL Apprise") as bad:
        parse_notify_urls("json://127.0.0.1/x chat=nosuch://user:hunter22@host/tok3n")
    assert "hunter22" not in str(bad.value) and "tok3n" not in str(bad.value)
    with pytest.raises(Invalid, match="not a route name"):
        parse_notify_urls("Bad Name=json://127.0.0.1/x".replace(" ", "_"))
    with pytest.raises(Invalid, match="moved to NOTIFY_URLS"):
        parse_targets("ntfy+https://ntfy.sh/topic")
    with pytest.raises(RulesError, match="no NOTIFY_URLS target is named 'pager'"):
        load_rules(None, default_rules(), parse_routes("critical=pager"), frozenset({"chat"}))
    with pytest.raises(ValueError, match="SEVERITY=NAME"):
        Settings(_env_file=None, status_data_dir=tmp_path, notify_routes="urgent=pager")
    masked = parse_notify_urls("chat=https://hooks.slack.com/services/T000/B000/XXXXSECRET")
    assert masked[0].name == "chat" and "XXXXSECRET" not in masked[0].masked


def test_notify_urls_never_reach_a_log_or_the_failures_api(
    alerting: Callable[..., Harness], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    secret = f"json://admin:s3cretpass@127.0.0.1:{closed}/t0kenpath"
    h = alerting(notify=parse_notify_urls(secret), webhook_attempts=2)
    hot(h)
    [row] = wait_for(lambda: failures(h), what="the failure recorded")
    assert row["attempts"] == 2 and row["target"] == f"default: json://127.0.0.1:{closed}/…"
    seen = json.dumps(row) + caplog.text + "".join(r.getMessage() for r in caplog.records)
    for needle in ("s3cretpass", "t0kenpath"):
        assert needle not in seen, needle
