"""The live alerting harness the alerting tests share: a real uvicorn server whose app has
``install_alerting`` applied with a controllable clock (the ``alerting`` fixture, defined in
tests/server/conftest.py, starts it), and the helpers that read it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from statusdash.server.alerting import install_alerting
from statusdash.server.notify import parse_targets
from tests.conftest import Live, RunningServer


class FakeClock:
    """Real time plus an offset the test moves forward."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += timedelta(seconds=seconds)


class AlertingServer(RunningServer):
    """A RunningServer whose app gets ``install_alerting`` with a test config."""

    def __init__(self, settings: Any, make_config: Callable[[], dict[str, Any]]) -> None:
        super().__init__(settings)
        self.make_config = make_config

    def prepare(self, app: Any) -> None:
        install_alerting(app, **self.make_config())


@dataclass
class Harness:
    live: Live
    clock: FakeClock
    rules: Path
    webhooks: list[str] = field(default_factory=list)
    overrides: dict[str, Any] = field(default_factory=dict)

    @property
    def server(self) -> AlertingServer:
        server = self.live.server
        assert isinstance(server, AlertingServer)
        return server

    def config(self) -> dict[str, Any]:
        """The changes to the settings' alerting config: fake clock, short intervals."""
        base: dict[str, Any] = {
            "rules_file": self.rules if self.rules.exists() else None,
            "webhooks": parse_targets(self.webhooks),
            "check_interval_s": 0.05,
            "webhook_attempts": 4,
            "webhook_backoff_s": 0.05,
            "webhook_timeout_s": 2.0,
            "clock": self.clock,
        }
        base.update(self.overrides)
        return base

    def restart(self) -> None:
        self.server.stop()
        self.server.start()


def wait_for(pred: Callable[[], Any], timeout: float = 15.0, what: str = "condition") -> Any:
    """Poll ``pred`` until it returns something truthy (bounded)."""
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


FAST_RULES = """
[rules.cpu]
threshold = 90
clear = 80
for = 0
[rules.memory]
for = 0
[rules.disk]
for = 0
"""


def fetch_alerts(live: Live, state: str = "active") -> list[dict[str, Any]]:
    """The alerts in ``state`` (active, resolved, all) as the read API lists them."""
    with live.reader() as r:
        resp = r.get("/api/alerts", params={"state": state})
        assert resp.status_code == 200, resp.text
        body: list[dict[str, Any]] = resp.json()
        return body


def cli_env(h: Harness, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Environment for CliRunner against ``h``: no stray .env, a token, the server URL."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    return {"STATUSDASH_SERVER": h.live.url, "STATUSDASH_TOKEN": h.live.token()}
