"""The typed server context: built once, the only thing on ``app.state``, reached through deps."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI

from statusdash.server.alerting import install_alerting
from statusdash.server.alerts.service import AlertService
from statusdash.server.app import create_app
from statusdash.server.context import ServerContext, context_of
from statusdash.server.deps import (
    AlertsDep,
    AuthDep,
    CtxDep,
    HealthDep,
    HubDep,
    NotifierDep,
    ReaderDep,
    ReadersDep,
    ServicesDep,
    SettingsDep,
    StorageDep,
)
from tests.conftest import Live, RunningServer, make_settings


def _state(app: FastAPI) -> dict[str, Any]:
    state: dict[str, Any] = app.state._state
    return state


def test_create_app_keeps_only_the_context_on_app_state(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data")
    app = create_app(settings)
    ctx = context_of(app)
    assert _state(app) == {"ctx": ctx}
    assert isinstance(ctx, ServerContext) and ctx.settings is settings
    assert ctx.auth.readers is ctx.readers and ctx.tls is None
    assert ctx.alerting.health.alerts is ctx.alerting.service
    assert ctx.storage.listeners == [ctx.alerting.service.on_commit]
    assert set(ctx.jobs.scheduler.jobs) == {"rollup", "compact", "retention", "backup"}


async def test_the_lifespan_starts_the_context_and_adds_nothing_to_app_state(
    tmp_path: Path,
) -> None:
    app = create_app(make_settings(tmp_path / "data"))
    installed = install_alerting(app, check_interval_s=0.2)  # replaced before start
    ctx = context_of(app)
    async with app.router.lifespan_context(app):
        assert _state(app) == {"ctx": ctx}
        ticker = installed.service._ticker
        assert ticker is not None and not ticker.done()
        assert ctx.jobs.scheduler._thread is not None and ctx.jobs.scheduler._thread.is_alive()
    assert ticker.done()
    assert ctx.jobs.scheduler._thread is None
    assert _state(app) == {"ctx": ctx}


def test_an_app_without_a_context_says_so() -> None:
    with pytest.raises(RuntimeError, match="no ServerContext"):
        context_of(FastAPI())


class ProbeServer(RunningServer):
    """A real server with one more route that reports what its dependencies received."""

    def prepare(self, built: Any) -> None:
        app: FastAPI = built

        @app.get("/api/test/probe")
        async def probe(
            _: ReaderDep,
            ctx: CtxDep,
            settings: SettingsDep,
            storage: StorageDep,
            readers: ReadersDep,
            auth: AuthDep,
            alerts: AlertsDep,
            notifier: NotifierDep,
            health: HealthDep,
            services: ServicesDep,
            hub: HubDep,
        ) -> dict[str, bool]:
            live = context_of(app)
            return {
                "ctx": isinstance(ctx, ServerContext) and ctx is live,
                "settings": settings is live.settings,
                "storage": storage is live.storage,
                "readers": readers is live.readers,
                "auth": auth is live.auth,
                "alerts": isinstance(alerts, AlertService) and alerts is live.alerting.service,
                "notifier": notifier is live.alerting.notifier,
                "health": health is live.alerting.health,
                "services": services is live.alerting.services,
                "hub": hub is live.alerting.hub,
            }

        install_alerting(app, check_interval_s=0.5)  # the routes must see the replacement


@pytest.fixture
def probe(tmp_path: Path) -> Iterator[Live]:
    server = ProbeServer(make_settings(tmp_path / "data")).start()
    try:
        yield Live(server)
    finally:
        server.stop()


def test_each_dependency_gives_the_running_apps_typed_part(probe: Live) -> None:
    with probe.reader() as r:
        answer = r.get("/api/test/probe")
    assert answer.status_code == 200, answer.text
    assert answer.json() == dict.fromkeys(answer.json(), True) and len(answer.json()) == 10
    assert probe.server.ctx.alerting.service.config.check_interval_s == 0.5


def test_the_probe_route_is_guarded_like_the_others(probe: Live) -> None:
    import httpx

    r = httpx.get(f"{probe.url}/api/test/probe")
    assert r.status_code == 401 and r.json()["error"] == "unauthorized"
