"""Issue 10 item 12 (TUI): the login outlives its token's TTL; a password change ends it, visibly,
and a new stored login brings the TUI back to live without a restart."""

from __future__ import annotations

import stat
from pathlib import Path

import httpx
from pydantic import SecretStr

from statusdash.client import Credentials, TokenStore
from statusdash.server import keys
from statusdash.tui.app import LOGIN_EXPIRED, StatusdashApp
from statusdash.tui.model import ConnState
from statusdash.tui.source import ApiSource
from tests.conftest import ADMIN_PASSWORD, RunningServer, make_report, make_settings
from tests.tui.helpers import shown, wait_for

TTL_S = 6
OTHER_PASSWORD = "another-admin-password-456"


def login(url: str, password: str = ADMIN_PASSWORD) -> str:
    r = httpx.post(f"{url}/api/auth/token", data={"username": "admin", "password": password})
    assert r.status_code == 200, r.text
    return str(r.json()["access_token"])


async def test_the_session_outlives_its_ttl_and_a_new_login_picks_it_up(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data", token_ttl_s=TTL_S)
    server = RunningServer(settings).start()
    key = keys.issue(settings.db_path, "web-1").key
    httpx.post(
        f"{server.url}/api/metrics/report", json=make_report("web-1"), headers={"X-API-Key": key}
    ).raise_for_status()
    store = TokenStore(tmp_path / "config" / "token.json")
    first = login(server.url)
    store.save(server.url, first, TTL_S)
    source = ApiSource(server.url, credentials=Credentials(token=first), timeout=2.0, store=store)
    app = StatusdashApp(source, poll_interval=0.5, live_poll_interval=1.0, stream=True)
    try:
        async with app.run_test(size=(110, 30)) as pilot:
            await wait_for(pilot, lambda: app.model.link.streaming, what="stream open")
            # Three lifetimes of a token: renewed each time, never cut, always live.
            await wait_for(pilot, lambda: app.renewals >= 4, timeout=TTL_S * 3 + 20, what="renew")
            assert not app.login_expired
            assert app.model.link.state(app.now()) is ConnState.live
            assert app.stream_opens == 1  # the stream was never cut: renewed on the socket too
            assert source.session is not None and source.session.token != first
            assert store.load(server.url) == source.session.token  # each renewal is stored
            assert stat.S_IMODE(store.path.stat().st_mode) == 0o600

            # The admin password changes (the server restarts with another one).
            server.stop()
            changed = settings.model_copy(
                update={"status_admin_password": SecretStr(OTHER_PASSWORD)}
            )
            server = RunningServer(changed).start()
            await wait_for(pilot, lambda: app.login_expired, timeout=30, what="login expired")
            await wait_for(
                pilot,
                lambda: app.model.link.state(app.now()) is not ConnState.live,
                what="not live",
            )
            assert LOGIN_EXPIRED in await shown(pilot)

            # `statusdash login` in another terminal stores a new token: live again, no restart.
            store.save(server.url, login(server.url, OTHER_PASSWORD), TTL_S)
            await wait_for(pilot, lambda: not app.login_expired, timeout=30, what="login back")
            await wait_for(
                pilot,
                lambda: app.model.link.state(app.now()) is ConnState.live,
                timeout=30,
                what="live again",
            )
    finally:
        source.close()
        server.stop()
