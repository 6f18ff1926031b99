"""Hostile text for the terminal tests: escape sequences, C1, NUL, bidi and Rich markup."""

from __future__ import annotations

import re
from typing import Any

from tests.conftest import Live, make_report

# Window title, clipboard write (OSC 52), screen clear, an 8-bit CSI, NUL, a right-to-left
# override; then markup that would crash Rich (``[/x]``), style text or make a link. No spaces,
# so a table may fold it but never reflows it.
ESCAPES = "\x1b]0;pwned\x07\x1b]52;c;aGk=\x07\x1b[2J\x9b31m\x00\u202e"
MARKUP = "[/x][bold]B[/bold][link=https://e.example]L[/link]"
HOSTILE = ESCAPES + MARKUP
# What an operator sees instead: every control shown as a visible escape.
SHOWN_ESCAPES = r"\x1b]0;pwned\x07\x1b]52;c;aGk=\x07\x1b[2J\x9b31m\x00\u202e"
HOST = "web-1"
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def unsafe(text: str) -> list[str]:
    """The control, C1 and bidi characters left in ``text`` (tab and newline are fine)."""
    return _UNSAFE.findall(text)


def hostile_report() -> dict[str, Any]:
    """A valid report whose every free-text field is hostile."""
    report = make_report(HOST)
    report["system"].update(os="os" + HOSTILE, kernel="k" + HOSTILE)
    report["disks"][0].update(mount="/mnt" + HOSTILE, fstype="ext4", device="dev" + HOSTILE)
    proc = {"pid": 7, "name": "p" + HOSTILE, "user": "u" + HOSTILE}
    proc |= {"cpu_percent": 50.0, "memory_percent": 1.0, "rss": 1 << 20}
    report["processes"] = {"count": 1, "top_cpu": [proc], "top_memory": [proc]}
    report["temps"] = [{"sensor": "s" + HOSTILE, "label": "l" + HOSTILE, "current": 40.0}]
    report["services"] = [
        {
            "name": "check" + MARKUP,
            "kind": "http",
            "status": "unhealthy",
            "checked_at": report["collected_at"],
            "detail": "refused" + HOSTILE + "\n  at line 2",
        }
    ]
    return report


def hostile_events() -> list[dict[str, Any]]:
    """A service error and an event-driven alert full of hostile text."""
    error = "boom" + HOSTILE + "\nTraceback (most recent call last):\n  File x"
    return [
        {
            "type": "SYSTEM_SERVICE_UNHEALTHY",
            "payload": {"serviceName": "svc" + HOSTILE, "errorMessage": error},
        },
        {
            "type": "SYSTEM_ALERT_TRIGGERED",
            "payload": {"alertName": "al" + HOSTILE, "message": "msg" + HOSTILE},
        },
    ]


def seed_hostile(live: Live) -> None:
    """The hostile report and events, accepted by a real server."""
    with live.agent(HOST) as agent:
        r = agent.post("/api/metrics/report", json=hostile_report())
        assert r.status_code == 200, r.text
        r = agent.post("/api/events", json=hostile_events())
        assert r.status_code == 200, r.text
