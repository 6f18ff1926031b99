"""The TUI never contradicts the server (issue 11: items 8, 10, 11, 13), through Pilot against
a real server with alerting and a rules file: flags from the rules in force and the open
alerts, the alerts screen's rows and actions, services' words and check times, down hosts."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from textual.pilot import Pilot
from textual.widgets import DataTable

from statusdash.client import Credentials
from statusdash.tui.app import StatusdashApp
from statusdash.tui.screens.lists import AlertsScreen, ServicesScreen
from statusdash.tui.source import ApiSource
from tests.conftest import make_report
from tests.server.conftest import alerting  # noqa: F401  (the live alerting server fixture)
from tests.server.harness import Harness, fetch_alerts
from tests.server.harness import wait_for as wait_until
from tests.tui.helpers import screen_text, shown, wait_for

RULES = """
[rules.cpu]
for = 0
[rules.memory]
for = 0
[rules.disk]
for = 0

[[overrides]]
host = "web-*"
rule = "cpu"
threshold = 50
clear = 30

[[overrides]]
host = "build-1"
rule = "cpu"
enabled = false

[[overrides]]
host = "db-1"
rule = "disk"
mount = "/data"
threshold = 70
"""


def _post(h: Harness, host: str, **kw: Any) -> None:
    with h.live.agent(host) as agent:
        r = agent.post("/api/metrics/report", json=make_report(host, **kw))
        assert r.status_code == 200, r.text


def _row(text: str, host: str) -> str:
    return next(line for line in text.splitlines() if f" {host} " in line)


def _cells(text: str, host: str) -> list[str]:
    return _row(text, host).strip("│ ").split()


async def _start(pilot: Pilot[Any], app: StatusdashApp, hosts: int) -> None:
    await wait_for(pilot, lambda: len(app.model.rows) == hosts, what="the fleet")
    await wait_for(pilot, lambda: app.model.rules is not None, what="the rules in force")


def _app(h: Harness) -> StatusdashApp:
    source = ApiSource(h.live.url, credentials=Credentials(token=h.live.token()), timeout=5.0)
    return StatusdashApp(source, poll_interval=0.2, stream=False)


async def test_flags_are_the_servers(alerting: Callable[..., Harness]) -> None:  # noqa: F811
    h = alerting(rules=RULES)
    disks = [
        {"mount": "/", "fstype": "ext4", "total": 100 << 30, "used": 50 << 30, "percent": 50.0},
        {"mount": "/data", "fstype": "xfs", "total": 100 << 30, "used": 75 << 30, "percent": 75.0},
    ]
    _post(h, "web-1", cpu=60.0)  # the env default (90) would not flag it; its override (50) does
    _post(h, "web-2", cpu=60.0)
    _post(h, "build-1", cpu=95.0)  # its CPU rule is off: no flag, however hot
    _post(h, "db-1", cpu=40.0, disks=disks)  # /data alerts at 70 there
    wait_until(lambda: len(fetch_alerts(h.live)) == 3, what="three alerts")
    _post(h, "web-2", cpu=40.0)  # below 50, above clear (30): the alert still fires
    wait_until(
        lambda: any(a["host"] == "web-2" and a["value"] == 40.0 for a in fetch_alerts(h.live)),
        what="web-2 judged at 40",
    )
    app = _app(h)
    async with app.run_test(size=(120, 30)) as pilot:
        await _start(pilot, app, 4)
        await wait_for(pilot, lambda: len(app.model.alerts) == 3, what="alerts")
        text = await shown(pilot)
        assert _cells(text, "web-1")[2] == "60%!"
        assert _cells(text, "web-2")[2] == "40%!"  # its firing CPU alert always shows its !
        assert _cells(text, "build-1")[2] == "95%"
        db = _cells(text, "db-1")
        assert db[2] == "40%" and "75%!" in db  # the fullest mount, judged by its own rule
        spec = app.model.rules.spec("disk", "db-1", "/data") if app.model.rules else None
        assert spec is not None and spec.threshold == 70 and spec.source == "override"

        # The host screen judges each mount by its own rule: /data flagged, / not.
        await pilot.press("slash", *"db-1", "enter", "enter")
        await wait_for(pilot, lambda: "xfs" in screen_text(app), what="db-1's disks")
        text = await shown(pilot)
        lines = [line for line in text.splitlines() if "ext4" in line or "xfs" in line]
        data = next(line for line in lines if "xfs" in line)
        root = next(line for line in lines if "ext4" in line)
        assert "75%!" in data and "50% " in root and "50%!" not in root


async def test_alerts_screen_rows_and_actions(alerting: Callable[..., Harness]) -> None:  # noqa: F811
    h = alerting(rules=RULES)
    _post(h, "web-1", cpu=60.0)
    _post(h, "db-1", mem=95.0)
    _post(h, "gone-1", interval_s=0.5)  # stops reporting: down after 5 intervals, then offline
    wait_until(
        lambda: {a["rule"] for a in fetch_alerts(h.live)} == {"cpu", "memory", "offline"},
        timeout=30,
        what="cpu, memory and offline alerts",
    )
    app = _app(h)
    async with app.run_test(size=(140, 30)) as pilot:
        await _start(pilot, app, 3)
        text = await shown(pilot)
        gone = _cells(text, "gone-1")
        assert gone[0] == "○" and "down" in gone  # UP says down, not a frozen uptime
        await pilot.press("a")
        await wait_for(pilot, lambda: isinstance(app.screen, AlertsScreen))
        screen = app.screen
        assert isinstance(screen, AlertsScreen)
        await wait_for(pilot, lambda: "gone-1" in screen_text(app), what="alert rows")
        text = await shown(pilot)
        rows = [line for line in text.splitlines() if "firing" in line]
        # Most severe first (offline is critical), then the newest.
        assert "critical" in rows[0] and "gone-1" in rows[0]
        web = _row(text, "web-1").split()
        assert web[2:9] == ["warning", "web-1", "cpu", "60%", "≥", "50%", "for"]
        assert text.count("60%") == 1  # one value per row: no message repeating it

        table = screen.query_one(DataTable)
        keys = [str(k.value) for k in table.rows]
        web_id = next(a.id for a in app.model.alerts if a.host == "web-1")
        table.move_cursor(row=keys.index(str(web_id)))
        await pilot.press("k")
        await wait_for(pilot, lambda: "✓admin" in _row(screen_text(app), "web-1"), what="ack")
        assert [a["acked_by"] for a in fetch_alerts(h.live) if a["host"] == "web-1"] == ["admin"]
        await pilot.press("s")
        await wait_for(
            pilot, lambda: "⊘silenced" in _row(screen_text(app), "web-1"), what="silenced"
        )
        with h.live.reader() as r:
            silences = r.get("/api/alerts/silences").json()
        assert [(s["host"], s["rule"]) for s in silences] == [("web-1", "cpu")]
        assert "⊘silenced" not in _row(screen_text(app), "db-1")


async def test_services_words_and_check_times(alerting: Callable[..., Harness]) -> None:  # noqa: F811
    h = alerting(rules=RULES)
    _post(h, "web-1")
    ran = (datetime.now(UTC) - timedelta(minutes=5)).isoformat()
    events = [
        {
            "type": "SYSTEM_SERVICE_HEALTHY",
            "payload": {"serviceName": "nginx", "checkedAt": ran, "host": "web-1"},
        },
        {  # no news for longer than it promised: unknown
            "type": "SYSTEM_SERVICE_UNHEALTHY",
            "payload": {
                "serviceName": "backup",
                "errorMessage": "cannot run: permission denied",
                "expectedWithinS": 0.5,
                "host": "web-1",
            },
        },
    ]
    with h.live.agent("web-1") as agent:
        for e in events:
            assert agent.post("/api/events", json=e).status_code < 300
    app = _app(h)
    async with app.run_test(size=(120, 30)) as pilot:
        await _start(pilot, app, 1)
        await pilot.press("v")
        await wait_for(pilot, lambda: isinstance(app.screen, ServicesScreen))
        await wait_for(
            pilot, lambda: "unknown" in screen_text(app), timeout=30, what="backup unknown"
        )
        text = await shown(pilot)
        nginx = _row(text, "nginx")
        assert "healthy" in nginx and "5m ago" in nginx  # when the check ran, not arrived
        backup = _row(text, "backup")
        assert backup.split()[1:4] == ["?", "backup", "web-1"] and "unknown" in backup
        assert "permission denied" in backup  # why it is unknown, in every view
        await pilot.press("f")
        text = await shown(pilot)
        lines = [line.split("││")[-1] for line in text.splitlines() if "││" in line]
        assert any(
            "?" in line.split() and "backup" in line and "permission denied" in line
            for line in lines
        ), text  # the fleet's services panel: the same marker and the reason
