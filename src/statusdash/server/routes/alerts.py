"""Alerts: list, acknowledge, resolve, silence and unsilence, the rules in force, and the
webhooks' failures."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from statusdash import durations
from statusdash.schema import AlertPublic
from statusdash.server.alerts import lifecycle
from statusdash.server.alerts.rules import EVENT_RULE, RULE_NAMES
from statusdash.server.body import read_body
from statusdash.server.deps import AlertsDep, NotifierDep, ReaderDep
from statusdash.server.errors import ApiError, invalid

router = APIRouter(prefix="/api", tags=["alerts"])
MAX_SILENCE_S = 90 * 86400
_GLOB = re.compile(r"[a-z0-9._*?\[\]-]{1,63}")  # fullmatch: ``$`` lets a final newline by


class SilenceIn(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    host: str | None = Field(default=None, description="host id or glob")
    rule: str | None = None
    subject: str | None = Field(default=None, max_length=255, description="mount or service")
    for_s: float = Field(alias="for", gt=0, le=MAX_SILENCE_S, description="90s, 2h, 1d or s")
    comment: str = Field(default="", max_length=500)

    @field_validator("for_s", mode="before")
    @classmethod
    def _duration(cls, v: Any) -> float:
        return durations.parse(v)

    @field_validator("host")
    @classmethod
    def _host(cls, v: str | None) -> str | None:
        if v is not None and not _GLOB.fullmatch(v):
            raise ValueError("must be a host id or a glob such as web-*")
        return v

    @field_validator("rule")
    @classmethod
    def _rule(cls, v: str | None) -> str | None:
        if v is not None and v not in (*RULE_NAMES, EVENT_RULE):
            raise ValueError(f"must be one of {', '.join((*RULE_NAMES, EVENT_RULE))}")
        return v


class ResolveIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(default="", max_length=500, description="why, kept on the alert")


AlertId = Annotated[int, Path(ge=1, le=2**63 - 1)]


@router.get("/alerts", response_model=list[AlertPublic])
async def list_alerts(
    alerts: AlertsDep,
    _: ReaderDep,
    state: Annotated[Literal["active", "resolved", "all"], Query()] = "active",
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    host: Annotated[str | None, Query(pattern=r"^[a-z0-9._-]{1,63}$")] = None,
) -> list[AlertPublic]:
    """Active (pending and firing) alerts, resolved ones newest first, or all; ``host``: only
    that host's (the link a notice gives)."""
    rows = await alerts.listing(state, limit)
    return rows if host is None else [a for a in rows if a.host == host]


@router.post("/alerts/{alert_id}/ack", response_model=AlertPublic)
async def ack(
    alerts: AlertsDep, alert_id: Annotated[int, Path(ge=1, le=2**63 - 1)], reader: ReaderDep
) -> AlertPublic:
    return await alerts.ack(alert_id, reader.name)


@router.post("/alerts/{alert_id}/resolve", response_model=AlertPublic)
async def resolve(
    request: Request, alerts: AlertsDep, alert_id: AlertId, reader: ReaderDep
) -> AlertPublic:
    """Resolve an open alert by hand, recording who and (optional body ``{"reason"}``) why."""
    body = await read_body(request, 4096)
    try:
        r = ResolveIn.model_validate_json(body) if body.strip() else ResolveIn()
    except ValidationError as exc:
        raise invalid(exc) from None
    return await lifecycle.resolve_by_hand(alerts, alert_id, reader.name, r.reason)


@router.get("/alerts/silences")
async def list_silences(alerts: AlertsDep, _: ReaderDep) -> list[dict[str, Any]]:
    return [s.as_json() for s in alerts.active_silences()]


@router.post("/alerts/silences", status_code=201)
async def add_silence(request: Request, alerts: AlertsDep, reader: ReaderDep) -> JSONResponse:
    """Mute the firing notices of alerts matching host and/or rule (and subject) for a while."""
    body = await read_body(request, 16 * 1024)
    try:
        s = SilenceIn.model_validate_json(body)
    except ValidationError as exc:
        raise invalid(exc) from None
    if s.host is None and s.rule is None:
        raise ApiError(422, "a silence needs a host or a rule (or both)")
    if s.host is not None:
        lifecycle.check_host(alerts, s.host)
    silence = await alerts.silence(s.host, s.rule, s.subject, s.for_s, reader.name, s.comment)
    return JSONResponse(silence.as_json(), status_code=201)


@router.delete("/alerts/silences/{silence_id}")
async def end_silence(
    alerts: AlertsDep, silence_id: Annotated[int, Path(ge=1, le=2**63 - 1)], _: ReaderDep
) -> dict[str, Any]:
    """End a silence now (it is kept, expired, until pruned); held-back notices go out."""
    return (await lifecycle.unsilence(alerts, silence_id)).as_json()


@router.post("/alerts/test-notify")
async def test_notify(notifier: NotifierDep, _: ReaderDep) -> dict[str, Any]:
    """Send a test message to every target now; says how each delivery went."""
    if not notifier.targets:
        raise ApiError(409, "no target is configured; set NOTIFY_URLS or WEBHOOK_URLS")
    results = await notifier.test()
    return {"ok": all(r.ok for r in results), "targets": [r.as_json() for r in results]}


@router.get("/notifications/failures")
async def failures(
    alerts: AlertsDep, _: ReaderDep, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> list[dict[str, Any]]:
    """Webhook deliveries that failed every retry, newest first."""
    return await alerts.store.call(alerts.store.failures, limit)
