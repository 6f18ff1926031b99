"""Fixtures of the server tests: ``alerting`` starts a live server with alerting (see harness)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Live, RunningServer, make_settings
from tests.server.harness import FAST_RULES, AlertingServer, FakeClock, Harness


@pytest.fixture
def alerting(tmp_path: Path) -> Iterator[Callable[..., Harness]]:
    """Start a server with alerting; ``alerting(rules=..., webhooks=[...], **config)``."""
    started: list[Harness] = []

    def start(
        rules: str | None = FAST_RULES, webhooks: list[str] | None = None, **over: Any
    ) -> Harness:
        path = tmp_path / "rules.toml"
        if rules is not None:
            path.write_text(rules)
        h = Harness(Live(RunningServer(make_settings(tmp_path / "data"))), FakeClock(), path)
        h.webhooks, h.overrides = webhooks or [], over
        h.live.server = AlertingServer(h.live.settings, h.config).start()
        started.append(h)
        return h

    yield start
    for h in started:
        h.server.stop()
