"""Issue 11 item 9: a login that ends (its token expired, the password changed) is said so, its
data is shown as not current, and a new login, stored or typed in the prompt, brings the TUI
back without a restart."""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

import httpx
from pydantic import SecretStr
from textual.pilot import Pilot

from statusdash.client import Credentials, TokenStore
from statusdash.server import keys
from statusdash.settings import Settings
from statusdash.tui.app import StatusdashApp
from statusdash.tui.model import ConnState
from statusdash.tui.screens.login import LoginScreen
from statusdash.tui.source import ApiSource
from tests.conftest import ADMIN_PASSWORD, RunningServer, make_report, make_settings
from tests.tui.helpers import screen_text, shown, wait_for

TTL_S = 5
OTHER_PASSWORD = "another-admin-password-789"
WRONG_PASSWORD = "not-the-password-000"


def login(url: str, password: str = ADMIN_PASSWORD) -> str:
    r = httpx.post(f"{url}/api/auth/token", data={"username": "admin", "password": password})
    assert r.status_code == 200, r.text
    return str(r.json()["access_token"])


def serve(tmp_path: Path) -> tuple[Settings, RunningServer]:
    settings = make_settings(tmp_path / "data", token_ttl_s=TTL_S)
    server = RunningServer(settings).start()
    key = keys.issue(settings.db_path, "web-1").key
    httpx.post(
        f"{server.url}/api/metrics/report",
        json=make_report("web-1", interval_s=3600.0),  # stays up for the whole test
        headers={"X-API-Key": key},
    ).raise_for_status()
    return settings, server


def the_app(server: RunningServer, store: TokenStore) -> tuple[ApiSource, StatusdashApp]:
    first = login(server.url)
    store.save(server.url, first, TTL_S)
    source = ApiSource(server.url, credentials=Credentials(token=first), timeout=2.0, store=store)
    app = StatusdashApp(source, poll_interval=0.5, live_poll_interval=1.0, stream=True)
    return source, app


def row_of(text: str, host: str) -> str:
    return next(line for line in text.splitlines() if f" {host} " in line)


async def expired_and_not_current(pilot: Pilot[Any], app: StatusdashApp) -> str:
    """Waits for the ended login; returns the screen, which says so and marks its data."""
    await wait_for(pilot, lambda: app.login_expired, timeout=40, what="login expired")
    await wait_for(
        pilot, lambda: app.model.link.state(app.now()) is not ConnState.live, what="not live"
    )
    text = await shown(pilot)
    assert "login expired · L log in" in text.splitlines()[0]  # the status bar, at 80 columns
    assert "live ●" not in text
    assert app.model.data_stale(app.now())
    assert row_of(text, "web-1").strip("│ ").startswith("◐")  # an up host, shown as not current
    return text


async def test_an_expired_token_is_said_and_a_stored_login_brings_it_back(tmp_path: Path) -> None:
    settings, server = serve(tmp_path)
    store = TokenStore(tmp_path / "config" / "token.json")
    source, app = the_app(server, store)
    try:
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_for(pilot, lambda: app.model.link.streaming, what="stream open")
            # The server is away longer than a token lives: no renewal can reach it, so the
            # token ends (the failed renewals are retried, never an end by themselves).
            server.stop()
            await wait_for(pilot, lambda: app.model.link.failures >= 1, what="a failed poll")
            assert not app.login_expired
            await pilot.pause(TTL_S + 1.0)
            server = RunningServer(settings).start()
            await expired_and_not_current(pilot, app)

            # `statusdash login` elsewhere: the stored login is watched and taken up, no restart.
            polls = app.polls
            store.save(server.url, login(server.url), TTL_S)
            await wait_for(pilot, lambda: not app.login_expired, timeout=15, what="login back")
            await wait_for(
                pilot,
                lambda: app.model.link.state(app.now()) is ConnState.live,
                timeout=30,
                what="live again",
            )
            await wait_for(pilot, lambda: app.polls > polls, timeout=30, what="a poll after it")
            text = await shown(pilot)
            assert "login expired" not in text.splitlines()[0]
            assert row_of(text, "web-1").strip("│ ").startswith("●")
            # And it renews itself again from there.
            renewed = app.renewals
            await wait_for(pilot, lambda: app.renewals > renewed, timeout=TTL_S + 20, what="renew")
    finally:
        source.close()
        server.stop()


async def test_a_password_change_is_mended_from_the_prompt(tmp_path: Path) -> None:
    settings, server = serve(tmp_path)
    store = TokenStore(tmp_path / "config" / "token.json")
    source, app = the_app(server, store)
    try:
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_for(pilot, lambda: app.model.link.streaming, what="stream open")
            server.stop()
            changed = settings.model_copy(
                update={"status_admin_password": SecretStr(OTHER_PASSWORD)}
            )
            server = RunningServer(changed).start()
            await expired_and_not_current(pilot, app)

            await pilot.press("L")
            await wait_for(pilot, lambda: isinstance(app.screen, LoginScreen), what="prompt")
            await pilot.press(*WRONG_PASSWORD)
            text = await shown(pilot)
            assert WRONG_PASSWORD not in text and "•" * 8 in text  # never echoed
            await pilot.press("enter")
            await wait_for(pilot, lambda: "wrong password" in screen_text(app), what="refused")
            assert isinstance(app.screen, LoginScreen) and app.login_expired

            await pilot.press(*OTHER_PASSWORD, "enter")
            await wait_for(pilot, lambda: not isinstance(app.screen, LoginScreen), what="closed")
            await wait_for(pilot, lambda: not app.login_expired, timeout=15, what="login back")
            await wait_for(
                pilot,
                lambda: app.model.link.state(app.now()) is ConnState.live,
                timeout=30,
                what="live again",
            )
            text = await shown(pilot)
            assert OTHER_PASSWORD not in text and WRONG_PASSWORD not in text
            # Kept as `statusdash login` keeps it: the token (not the password), mode 0600.
            assert source.session is not None
            assert store.load(server.url) == source.session.token
            kept = store.path.read_text()
            assert OTHER_PASSWORD not in kept and WRONG_PASSWORD not in kept
            assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
            for note in app._notifications:
                assert OTHER_PASSWORD not in note.message and WRONG_PASSWORD not in note.message
    finally:
        source.close()
        server.stop()
