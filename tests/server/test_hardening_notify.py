"""Notifications cannot be forged or lost, and their URLs stay secret (issue 10, items 16, 14).

A real server (mutual TLS where the caller's identity matters) delivers to a real receiver on
loopback: every notice names the authenticated host, text reaches an Apprise target that renders
HTML or Markdown escaped, a non-ASCII title arrives, any failure in delivery is recorded and
frees the notice, and a webhook URL's secrets reach neither a log record nor the failures API.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from statusdash.server import notify
from statusdash.server.notify import Notice, Target, parse_targets
from statusdash.server.notify import render as real_render
from statusdash.server.notify_apprise import parse_notify_urls
from tests.conftest import Live, TlsLive, free_port, make_settings
from tests.server.test_hardening_alerts import (
    AlertingServer,
    Hook,
    alert,
    hook,
    post_events,
    service,
    start_alerting,
    wait_for,
)

__all__ = ["hook", "start_alerting"]


def failures(live: Live) -> list[dict[str, Any]]:
    with live.reader() as r:
        rows: list[dict[str, Any]] = r.get("/api/notifications/failures").json()
        return rows


def test_notices_name_the_authenticated_host_and_markup_is_escaped(
    tmp_path: Path, vault_template: Path, hook: Hook
) -> None:
    vault = tmp_path / "vault"
    shutil.copytree(vault_template, vault)
    settings = make_settings(tmp_path / "data", mtls_enabled=True, vault_path=vault)
    rendered = parse_notify_urls(
        f"html=json://127.0.0.1:{hook.port}/html?format=html"
        f" md=json://127.0.0.1:{hook.port}/md?format=markdown"
    )
    config = {
        "webhooks": parse_targets([hook.url("/json")]),
        "notify": rendered,
        "check_interval_s": 0.05,
        "handle_sighup": False,
    }
    server = AlertingServer(settings, config).start()
    try:
        live = TlsLive(server, vault=vault)
        with live.client("web-1") as web:  # the certificate says web-1, whatever the text says
            forged = alert("disk", "critical", message="db-1: disk full <!here>")
            mention = service("billing", healthy=False, error="<!channel> & <@U123>")
            assert post_events(web, [forged, mention]).status_code == 200
            other = {
                "type": "SYSTEM_ALERT_TRIGGERED",
                "payload": {"alertName": "x", "host": "db-1"},
            }
            assert post_events(web, [other]).status_code == 403
        wait_for(lambda: len(hook.requests) == 6, what="two notices to three targets")
    finally:
        server.stop()
    html = sorted(b["message"].split("<br/>")[0] for b in hook.bodies("/html"))
    assert html == [
        "CRITICAL&nbsp;web-1:&nbsp;db-1:&nbsp;disk&nbsp;full&nbsp;&lt;!here&gt;",
        "CRITICAL&nbsp;web-1:&nbsp;service&nbsp;billing&nbsp;unhealthy:"
        "&nbsp;&lt;!channel&gt;&nbsp;&amp;&nbsp;&lt;@U123&gt;",
    ]
    md = sorted(b["message"].splitlines()[0] for b in hook.bodies("/md"))
    assert md == [
        "CRITICAL web\\-1: db\\-1: disk full <\\!here\\>",
        "CRITICAL web\\-1: service billing unhealthy: <\\!channel\\> & <@U123\\>",
    ]
    assert {b["alert"]["host"] for b in hook.bodies("/json")} == {"web-1"}
    assert {b["text"] for b in hook.bodies("/json")} == {  # our JSON: the text as it is
        "CRITICAL web-1: db-1: disk full <!here>",
        "CRITICAL web-1: service billing unhealthy: <!channel> & <@U123>",
    }
    titles = sorted(b["title"] for b in hook.bodies("/md"))
    assert titles == [
        "statusdash alert: event on web-1 disk",
        "statusdash alert: service on web-1 billing",
    ]


def test_a_non_ascii_title_arrives_intact_through_apprise(
    start_alerting: Callable[..., Live], hook: Hook
) -> None:
    live = start_alerting([], notify=parse_notify_urls(f"json://127.0.0.1:{hook.port}/push"))
    name = "Überlast — 東京"
    assert (
        post_events(live.agent("web-1"), [alert(name, message="Last 99 % — 東京")]).status_code
        == 200
    )
    wait_for(lambda: hook.requests, what="the Apprise notice")
    [doc] = hook.bodies("/push")
    assert doc["title"] == f"statusdash alert: event on web-1 {name}"
    assert (
        doc["message"] == "WARNING web-1: Last 99 % — 東京\nSee: statusdash alerts ls --host web-1"
    )
    assert failures(live) == []


def test_a_render_that_raises_is_a_failure_and_the_next_notice_still_goes_out(
    start_alerting: Callable[..., Live], hook: Hook, monkeypatch: pytest.MonkeyPatch
) -> None:
    def render(target: Target, notice: Notice) -> tuple[bytes, dict[str, str]]:
        if notice.alert is not None and notice.alert.subject == "boom":
            raise UnicodeEncodeError("ascii", "ü", 0, 1, "a bug in rendering")
        return real_render(target, notice)

    monkeypatch.setattr(notify, "render", render)
    live = start_alerting([hook.url("/hook")])
    web = live.agent("web-1")
    assert post_events(web, [alert("boom")]).status_code == 200
    [row] = wait_for(lambda: failures(live), what="the failure recorded")
    assert (row["event"], row["attempts"]) == ("firing", 1)
    assert row["error"].startswith("render: UnicodeEncodeError")
    assert post_events(web, [alert("fine")]).status_code == 200
    wait_for(lambda: hook.requests, what="the next notice")
    assert [b["alert"]["subject"] for b in hook.bodies()] == ["fine"]
    service = live.server.ctx.alerting.service
    wait_for(lambda: not service.inflight and not service.outbox, what="nothing left in flight")


def test_a_target_that_dribbles_its_answer_is_cut_at_the_deadline(
    start_alerting: Callable[..., Live], hook: Hook
) -> None:
    hook.dribble = True  # a byte every 0.2 s: httpx's per-read timeout never fires
    live = start_alerting([hook.url("/slow")], webhook_timeout_s=1.0, webhook_attempts=2)
    assert post_events(live.agent("web-1"), [alert("a")]).status_code == 200
    [row] = wait_for(lambda: failures(live), what="the failure recorded")
    assert row["attempts"] == 2 and row["error"] == "no answer within 1 s"
    service = live.server.ctx.alerting.service
    wait_for(lambda: not service.inflight and not service.outbox, what="nothing left in flight")


def _closed_port() -> int:
    port = free_port()
    with socket.socket() as s:  # nothing listens there once this is closed
        s.bind(("127.0.0.1", port))
    return port


def test_webhook_urls_are_masked_in_every_log_record_and_failure(
    start_alerting: Callable[..., Live], hook: Hook, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    secret = "user:secret@127.0.0.1:{port}/hooks/T0KEN?token=abc"
    closed = _closed_port()
    hooks = [
        "https://" + secret.format(port=hook.port),  # TLS to a plain-HTTP port: an SSL error
        "http://" + secret.format(port=closed),  # connection refused
        "http://" + secret.format(port=hook.port),  # delivered: httpx logs the request
    ]
    live = start_alerting(hooks)
    assert post_events(live.agent("web-1"), [alert("a")]).status_code == 200
    rows = wait_for(lambda: len(failures(live)) == 2 and failures(live), what="two failures")
    wait_for(lambda: hook.requests, what="the delivered one")
    with live.reader() as r:
        tested = r.post("/api/alerts/test-notify").json()
    seen = json.dumps(rows) + json.dumps(tested) + caplog.text
    seen += "".join(str(r.args) + r.getMessage() for r in caplog.records)
    seen = re.sub(r"0x[0-9a-f]+", "0x…", seen)  # object addresses in httpcore's debug lines
    assert "HTTP Request: POST" in caplog.text  # httpx's own line was captured, masked
    for needle in ("secret", "T0KEN", "abc"):
        assert needle not in seen, needle
    assert {r["target"] for r in rows} == {
        f"json+https://127.0.0.1:{hook.port}/hooks/…",
        f"json+http://127.0.0.1:{closed}/hooks/…",
    }
