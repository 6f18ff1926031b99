"""Helpers for the TUI tests: the app as the CLI builds it, and bounded waits instead of sleeps."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from textual.app import App
from textual.pilot import Pilot

from statusdash.tui.app import StatusdashApp
from statusdash.tui.source import DataSource
from tests.tui.fleetdata import FRAMES, NOW, memory_source


class FakeClock:
    """A clock that stands still until a test moves it."""

    def __init__(self, now: datetime = NOW) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def frozen_app(source: DataSource | None = None, **kw: Any) -> StatusdashApp:
    """The app over the frozen fleet, with a frozen clock and quick polls (until it settles)."""
    kw.setdefault("poll_interval", 0.01)
    kw.setdefault("stream", False)
    kw.setdefault("clock", FakeClock())
    return StatusdashApp(source or memory_source(), **kw)


async def wait_for(
    pilot: Pilot[Any], cond: Callable[[], bool], timeout: float = 30.0, what: str = ""
) -> None:
    """Let the app run until ``cond()`` holds; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or cond}")
        await pilot.pause(0.02)


async def settle(pilot: Pilot[Any]) -> None:
    """Wait until every frame of the frozen fleet was shown, then slow polling to a crawl."""
    app = pilot.app
    assert isinstance(app, StatusdashApp)
    await wait_for(pilot, lambda: app.polls >= FRAMES + 1, what="frames")
    app.poll_interval = 3600.0
    await pilot.pause(0.05)
    await app.workers.wait_for_complete()
    await pilot.pause()


def screen_text(app: App[Any]) -> str:
    """What the terminal shows now, as plain text (one line per row)."""
    strips = app.screen._compositor.render_strips()
    return "\n".join("".join(seg.text for seg in strip) for strip in strips)


async def shown(pilot: Pilot[Any]) -> str:
    """What the terminal shows once pending redraws ran."""
    await pilot.pause()
    return screen_text(pilot.app)
