"""Domain errors become the ``{"error", "detail"}`` 4xx bodies at the route edge, and only there."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from statusdash.errors import Conflict, Invalid, NotFound, StatusdashError
from statusdash.server import keys
from statusdash.server.alerts.rules import RulesError, default_rules, load_rules
from statusdash.server.deps import AlertsDep, ReaderDep
from statusdash.server.domain_errors import HostMismatch, InvalidFields, MalformedBody
from statusdash.server.health_events import parse_events
from statusdash.server.jobs import Scheduler, UnknownJobError
from statusdash.server.runner import ServerConfigError, uvicorn_config
from tests.conftest import Live, RunningServer, make_report, make_settings

RAISED: dict[str, StatusdashError] = {
    "not-found": NotFound("no widget named 'w'"),
    "invalid": Invalid("size must be positive"),
    "conflict": Conflict("the widget is in use"),
    "fields": InvalidFields("event: name: field required", [{"field": "name", "problem": "x"}]),
    "malformed": MalformedBody("malformed JSON: Expecting value"),
    "mismatch": HostMismatch("event for host 'db-1' refused: this caller is 'web-1'"),
    "rules": RulesError("rules file r.toml: rules.cpu: bad"),
    "unmapped": StatusdashError("a domain error nobody mapped"),
}


class RaisingServer(RunningServer):
    """A real server with a route that raises the domain error named in its path."""

    def prepare(self, built: Any) -> None:
        app: FastAPI = built

        @app.get("/api/test/raise/{name}")
        async def raise_it(name: str, _: ReaderDep, alerts: AlertsDep) -> None:
            raise RAISED[name]


@pytest.fixture(scope="module")
def raising(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    server = RaisingServer(make_settings(tmp_path_factory.mktemp("errors") / "data")).start()
    try:
        yield Live(server)
    finally:
        server.stop()


@pytest.mark.parametrize(
    ("name", "status", "code"),
    [
        ("not-found", 404, "not_found"),
        ("invalid", 422, "validation_error"),
        ("conflict", 409, "conflict"),
        ("fields", 422, "validation_error"),
        ("malformed", 400, "malformed_json"),
        ("mismatch", 403, "host_mismatch"),
        ("rules", 422, "validation_error"),  # a subclass answers as its nearest listed ancestor
    ],
)
def test_a_domain_error_becomes_its_status_and_body(
    raising: Live, name: str, status: int, code: str
) -> None:
    with raising.reader() as r:
        resp = r.get(f"/api/test/raise/{name}")
    assert resp.status_code == status
    body = resp.json()
    assert body["error"] == code and body["detail"] == str(RAISED[name])
    extra = set(body) - {"error", "detail"}
    assert extra == ({"fields"} if name == "fields" else set())
    if name == "fields":
        assert body["fields"] == [{"field": "name", "problem": "x"}]


def test_an_unmapped_domain_error_is_a_500_not_a_guessed_4xx(raising: Live) -> None:
    with raising.reader() as r:
        resp = r.get("/api/test/raise/unmapped")
    assert resp.status_code == 500 and resp.json()["error"] == "internal"
    assert "nobody mapped" not in resp.text


def test_services_raise_domain_errors_that_reach_the_client_as_4xx(live_server: Live) -> None:
    """A missing host and a missing alert are NotFound in the services, 404 on the wire."""
    with live_server.reader() as r:
        host = r.get("/api/hosts/nope")
        alert = r.post("/api/alerts/999/ack")
    assert host.status_code == 404 and host.json() == {
        "error": "not_found",
        "detail": "no host named 'nope' has reported",
    }
    assert alert.status_code == 404 and alert.json() == {
        "error": "not_found",
        "detail": "no alert with id 999",
    }
    with live_server.agent("web-1") as a:
        assert a.post("/api/metrics/report", json=make_report("web-1")).status_code == 200
        payload = {"serviceName": "api", "checkedAt": "2026-11-27T10:00:00Z", "host": "db-1"}
        event = {"type": "SYSTEM_SERVICE_HEALTHY", "payload": payload}
        mismatch = a.post("/api/events", json=event)
    assert mismatch.status_code == 403 and mismatch.json() == {
        "error": "host_mismatch",
        "detail": "event for host 'db-1' refused: this caller is 'web-1'",
    }


def test_the_services_themselves_raise_no_http_errors(tmp_path: Path) -> None:
    with pytest.raises(MalformedBody):
        parse_events(b"{not json")
    with pytest.raises(InvalidFields) as err:
        parse_events(b'{"type": "SYSTEM_SERVICE_HEALTHY"}')
    assert err.value.fields and all({"field", "problem"} == set(f) for f in err.value.fields)
    with pytest.raises(Invalid, match="between 1 and"):
        parse_events(b"[]")
    with pytest.raises(Invalid, match="not a valid host id"):
        keys.issue(tmp_path / "keys.db", "Not A Host!")
    with pytest.raises(NotFound, match="no job named 'nope'"):
        Scheduler().run_now("nope")
    assert issubclass(UnknownJobError, NotFound)


def test_only_a_rules_file_problem_reads_as_a_bad_rules_file(tmp_path: Path) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_text("[rules.cpu]\nthreshold = 50\nclear = 70\n")
    with pytest.raises(RulesError) as err:
        load_rules(rules, default_rules(90, 85, 90))
    assert isinstance(err.value, Invalid)
    settings = make_settings(tmp_path / "data", alert_rules_file=rules)
    with pytest.raises(ServerConfigError, match="clear \\(70\\) is above threshold \\(50\\)"):
        uvicorn_config(settings)
    hooks = make_settings(tmp_path / "data2", webhook_urls="ftp://nowhere")
    with pytest.raises(ServerConfigError, match="not an http\\(s\\) URL"):
        uvicorn_config(hooks)


def test_an_unknown_route_keeps_the_shape(raising: Live) -> None:
    r = httpx.get(f"{raising.url}/api/nothing-here")
    assert r.status_code == 404 and r.json()["error"] == "not_found"
