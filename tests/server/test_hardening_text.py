"""Issue 10, item 10 (wire side): text from agents is data, stored and answered as received."""

from __future__ import annotations

import time
from typing import Any

from tests.conftest import Live, make_report

# Window title, clipboard write (OSC 52), screen clear, NUL, BEL, bidi overrides, Rich markup.
HOSTILE = (
    "\x1b]0;pwned\x07\x1b]52;c;ZWNobyBoaQ==\x07\x1b[2J\x1b[H\x00\x07\x08\r\x9b31m"
    "\u202e\u2066gnp.exe\u2069[/x][link=https://evil.example]click[/link][bold red]"
)
TRACE = 'Traceback (most recent call last):\n  File "x.py", line 1\n' + HOSTILE


def hostile_report() -> dict[str, Any]:
    """A report whose every text field is hostile (each within its length cap)."""
    r = make_report("web-1")
    r["system"].update(hostname=HOSTILE, os=HOSTILE, kernel=HOSTILE, arch=HOSTILE[:64])
    r["disks"][0].update(mount=HOSTILE, fstype=HOSTILE[:64], device=HOSTILE)
    r["disk_io"]["devices"] = {HOSTILE: {"read_bytes_s": 1.0}}
    r["net"]["interfaces"] = {HOSTILE: {"rx_bytes_s": 1.0}}
    r["temps"] = [{"sensor": HOSTILE, "label": HOSTILE, "current": 40.0}]
    proc = {"pid": 1, "name": HOSTILE, "user": HOSTILE, "cpu_percent": 1.0, "memory_percent": 1.0}
    r["processes"].update(top_cpu=[proc], top_memory=[proc])
    r["services"] = [
        {
            "name": HOSTILE,
            "kind": HOSTILE[:64],
            "status": "unhealthy",
            "checked_at": r["collected_at"],
            "detail": TRACE * 20,
        }
    ]
    return r


TIMES = {"collected_at", "boot_time", "checked_at"}  # answered in the API's own ISO form


def text_leaves(node: Any, path: tuple[Any, ...] = ()) -> dict[tuple[Any, ...], str]:
    """Every text value of a report (dict keys included, as ``(..., "<key>")``) by its path."""
    if isinstance(node, dict):
        out = {
            (*path, "<key>", k): k for k in node if path and path[-1] in ("devices", "interfaces")
        }
        for k, v in node.items():
            if k not in TIMES:
                out.update(text_leaves(v, (*path, k)))
        return out
    if isinstance(node, list):
        return {p: t for i, v in enumerate(node) for p, t in text_leaves(v, (*path, i)).items()}
    return {path: node} if isinstance(node, str) else {}


def test_a_hostile_report_is_accepted_and_answered_exactly_as_sent(live_server: Live) -> None:
    sent = hostile_report()
    r = live_server.agent("web-1").post("/api/metrics/report", json=sent)
    assert r.status_code == 200, r.text
    got = live_server.reader().get("/api/hosts/web-1").json()["report"]
    want = text_leaves(sent)
    assert sum(HOSTILE in t for t in want.values()) == 15  # every text field, keys included
    assert {p: t for p, t in text_leaves(got).items() if p in want} == want


def _wait(check: Any, what: str) -> Any:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_hostile_events_are_stored_and_answered_exactly_as_sent(live_server: Live) -> None:
    agent = live_server.agent("web-1")
    events = [
        {
            "type": "SYSTEM_SERVICE_UNHEALTHY",
            "payload": {"serviceName": HOSTILE, "errorMessage": TRACE * 20},
        },
        {
            "type": "SYSTEM_ALERT_TRIGGERED",
            "payload": {"alertName": HOSTILE, "message": TRACE, "severity": "critical"},
        },
    ]
    r = agent.post("/api/events", json=events)
    assert r.status_code == 200, r.text
    reader = live_server.reader()
    (svc,) = reader.get("/api/services").json()
    assert (svc["name"], svc["error"]) == (HOSTILE, TRACE * 20)
    alerts = _wait(
        lambda: [a for a in reader.get("/api/alerts").json() if a["rule"] == "event"], "the alert"
    )
    assert (alerts[0]["subject"], alerts[0]["message"]) == (HOSTILE, TRACE)
