"""Webhooks against a receiver on loopback: retries, formats, failures, silences, restarts."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from statusdash.schema import AlertPublic, AlertState, utcnow
from statusdash.server.notify import Notice, Target, parse_targets, render
from statusdash.server.notify_apprise import parse_notify_urls
from tests.conftest import make_report
from tests.server.harness import Harness, cli_env, fetch_alerts, wait_for
from tests.server.receiver import Receiver, receiver

__all__ = ["receiver"]


def hot(h: Harness, host: str = "web-1", cpu: float = 97) -> None:
    r = h.live.agent(host).post("/api/metrics/report", json=make_report(host, cpu=cpu))
    assert r.status_code == 200


def failures(h: Harness) -> list[dict[str, Any]]:
    with h.live.reader() as r:
        body: list[dict[str, Any]] = r.get("/api/notifications/failures").json()
        return body


# --- formats --------------------------------------------------------------------------------------


def _alert() -> AlertPublic:
    now = utcnow()
    return AlertPublic(
        id=7,
        rule="disk",
        host="db-1",
        subject="/data",
        state=AlertState.firing,
        severity="critical",
        value=97,
        threshold=90,
        message="db-1: disk /data at 97% full",
        started_at=now,
        fired_at=now,
    )


def test_formats_and_targets() -> None:
    targets = parse_targets("https://example.com/hooks/abc, json+https://example.com/x/SECRET")
    assert [t.format for t in targets] == ["json", "json"]
    assert targets[1].masked == "json+https://example.com/x/…"
    for moved in ("slack+https://hooks.slack.com/services/T0/B0/S", "ntfy+https://ntfy.sh/t"):
        with pytest.raises(ValueError, match="moved to NOTIFY_URLS"):
            parse_targets(moved)
    with pytest.raises(ValueError, match="not an http"):
        parse_targets("ftp://example.com/x")
    notice = Notice.for_alert("firing", _alert())
    body, headers = render(Target("http://x/"), notice)
    doc = json.loads(body)
    assert doc["event"] == "firing" and doc["alert"]["subject"] == "/data"
    assert doc["text"] == "CRITICAL db-1: disk /data at 97% full"
    assert headers["Content-Type"] == "application/json"


# --- over a real server ---------------------------------------------------------------------------


def test_a_receiver_that_fails_twice_still_gets_every_message(
    alerting: Callable[..., Harness], receiver: Receiver
) -> None:
    receiver.fail_first = {"/json": 2, "/apprise": 2}
    chat = parse_notify_urls(f"json://127.0.0.1:{receiver.port}/apprise")
    h = alerting(webhooks=[receiver.url("/json")], notify=chat)
    hot(h)
    for path in ("/json", "/apprise"):
        wait_for(lambda p=path: receiver.seen(p), what=f"delivery to {path}")  # type: ignore[misc]
        assert len(receiver.seen(path, ok_only=False)) == 3  # 500, 500, then 200
    fired = json.loads(receiver.seen("/json")[0])
    assert fired["event"] == "firing" and fired["alert"]["host"] == "web-1"
    assert "web-1: CPU at 97%" in fired["text"]
    pushed = json.loads(receiver.seen("/apprise")[0])
    assert pushed["message"].startswith("WARNING web-1: CPU at 97%")
    assert pushed["title"] == "statusdash alert: cpu on web-1" and pushed["type"] == "warning"
    assert failures(h) == []
    hot(h, cpu=5)
    wait_for(lambda: len(receiver.seen("/apprise")) == 2, what="resolved notice")
    wait_for(lambda: len(receiver.seen("/json")) == 2, what="resolved notice")
    assert json.loads(receiver.seen("/json")[1])["event"] == "resolved"
    assert json.loads(receiver.seen("/apprise")[1])["message"].startswith("RESOLVED web-1: CPU")


def test_failed_deliveries_are_recorded_and_visible(
    alerting: Callable[..., Harness], receiver: Receiver
) -> None:
    receiver.status = {"/down/secret-token": 503, "/gone": 404}
    h = alerting(webhooks=[receiver.url("/down/secret-token"), receiver.url("/gone")])
    hot(h)
    [alert] = wait_for(lambda: fetch_alerts(h.live), what="alert")
    rows = wait_for(lambda: len(failures(h)) == 2 and failures(h), what="failures")
    by_target = {r["target"]: r for r in rows}
    down = by_target[f"json+http://127.0.0.1:{receiver.port}/down/…"]
    assert (down["attempts"], down["error"], down["event"]) == (4, "HTTP 503", "firing")
    assert down["alert_id"] == alert["id"]
    gone = by_target[f"json+http://127.0.0.1:{receiver.port}/gone"]
    assert gone["attempts"] == 1 and gone["error"] == "HTTP 404"  # not worth retrying
    assert len(receiver.seen("/gone", ok_only=False)) == 1
    assert "secret-token" not in json.dumps(rows)


def test_restart_neither_loses_nor_repeats_a_notice(
    alerting: Callable[..., Harness], receiver: Receiver
) -> None:
    receiver.hang_first = {"/hook"}  # the first delivery is in flight when the server stops
    h = alerting(webhooks=[receiver.url("/hook")], notify_grace_s=0.2)
    hot(h)
    wait_for(lambda: fetch_alerts(h.live), what="alert")
    time.sleep(0.2)
    assert receiver.seen("/hook") == []
    h.restart()  # the notice was never delivered: it goes out after the restart
    wait_for(lambda: receiver.seen("/hook"), what="delivery after restart")
    h.restart()  # delivered already: not again
    hot(h)
    time.sleep(0.5)
    assert len(receiver.seen("/hook")) == 1
    hot(h, cpu=1)
    wait_for(lambda: len(receiver.seen("/hook")) == 2, what="resolved")
    assert [json.loads(b)["event"] for b in receiver.seen("/hook")] == ["firing", "resolved"]


def test_silences_mute_until_they_expire(
    alerting: Callable[..., Harness], receiver: Receiver
) -> None:
    h = alerting(webhooks=[receiver.url("/hook")])
    hot(h, "web-1", cpu=10)  # a silence names a host the fleet has (issue 11)
    with h.live.reader() as r:
        made = r.post(
            "/api/alerts/silences", json={"host": "web-*", "for": "2h", "comment": "patching"}
        )
        assert made.status_code == 201 and made.json()["created_by"] == "admin"
        assert r.post("/api/alerts/silences", json={"for": "1h"}).status_code == 422
        assert r.post("/api/alerts/silences", json={"rule": "gpu", "for": "1h"}).status_code == 422
        assert [s["host"] for s in r.get("/api/alerts/silences").json()] == ["web-*"]
    hot(h, "web-1")
    hot(h, "db-1")  # not silenced
    wait_for(lambda: len(fetch_alerts(h.live)) == 2, what="two alerts")
    wait_for(lambda: receiver.seen("/hook"), what="db-1 notice")
    time.sleep(0.3)
    assert [json.loads(b)["alert"]["host"] for b in receiver.seen("/hook")] == ["db-1"]
    h.clock.advance(2 * 3600 + 1)  # the silence expires: the firing notice goes out then

    def sent() -> list[tuple[str, str]]:
        return [
            (d["alert"]["host"], d["alert"]["rule"])
            for d in map(json.loads, receiver.seen("/hook"))
        ]

    wait_for(lambda: ("web-1", "cpu") in sent(), what="notice after the silence")
    assert sent().count(("web-1", "cpu")) == 1 and sent()[0] == ("db-1", "cpu")
    with h.live.reader() as r:
        assert r.get("/api/alerts/silences").json() == []


def test_test_notify_endpoint_and_cli(
    alerting: Callable[..., Harness],
    receiver: Receiver,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from statusdash.cli.alerts import app

    receiver.status = {"/broken": 500}
    h = alerting(webhooks=[receiver.url("/ok", "json")])
    env = cli_env(h, tmp_path, monkeypatch)
    out = CliRunner().invoke(app, ["test-notify"], env=env)
    assert out.exit_code == 0, out.output
    assert f"json+http://127.0.0.1:{receiver.port}/ok  ok" in out.stdout
    assert "test notification" in json.loads(receiver.seen("/ok")[0])["text"]
    h.server.stop()
    h.webhooks = [receiver.url("/ok"), receiver.url("/broken")]
    h.server.start()
    out = CliRunner().invoke(app, ["test-notify", "--json"], env=env)
    assert out.exit_code == 1
    result = json.loads(out.stdout)
    assert [t["ok"] for t in result["targets"]] == [True, False]
    assert result["targets"][1]["error"] == "HTTP 500"
    assert failures(h)[0]["event"] == "test"
