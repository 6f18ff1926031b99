"""GET /metrics follows alerting: open alerts, notices sent and failed, stream subscribers."""

from __future__ import annotations

from collections.abc import Callable

from websockets.sync.client import connect

from tests.conftest import make_report
from tests.server.harness import Harness, wait_for
from tests.server.receiver import Receiver, receiver
from tests.server.test_prometheus_metrics import _has, scrape, value
from tests.server.test_stream import recv_json, ws_url

__all__ = ["receiver"]


def test_alerts_notices_and_subscribers_are_counted(
    alerting: Callable[..., Harness], receiver: Receiver
) -> None:
    receiver.status = {"/refuses": 400}  # not retried: one failed notice per alert event
    h = alerting(webhooks=[receiver.url("/ok"), receiver.url("/refuses")])
    with h.live.reader() as reader:
        before = scrape(reader)
        assert value(before, "statusdash_notifications_sent_total") == 0
        assert not any(s.labels.get("state") == "firing" for s in before["statusdash_alerts_open"])
        headers = {"Authorization": f"Bearer {h.live.token()}"}
        with connect(ws_url(h), additional_headers=headers, open_timeout=10) as ws:
            assert recv_json(ws)["type"] == "hello"
            assert value(scrape(reader), "statusdash_stream_subscribers") == 1
            with h.live.agent("web-1") as agent:
                report = make_report("web-1", cpu=97)
                assert agent.post("/api/metrics/report", json=report).status_code == 200

            def moved() -> bool:
                now = scrape(reader)
                return (
                    value(now, "statusdash_notifications_sent_total") >= 1
                    and value(now, "statusdash_notifications_failed_total") >= 1
                )

            wait_for(moved, what="one notice delivered and one failed")
            after = scrape(reader)
            assert value(after, "statusdash_stream_events_published_total") >= 1
        firing = [s for s in after["statusdash_alerts_open"] if s.labels["state"] == "firing"]
        assert sum(s.value for s in firing) == 1
        assert _has(after, "statusdash_alerts_open", firing[0].labels)
        wait_for(
            lambda: value(scrape(reader), "statusdash_stream_subscribers") == 0,
            what="the subscriber gone",
        )
