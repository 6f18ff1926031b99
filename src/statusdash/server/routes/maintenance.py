"""Maintenance windows per host tag: list, open (now or later, for a while) and end."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from statusdash import durations
from statusdash.server.alerts import windows
from statusdash.server.alerts.maintenance import parse_tag
from statusdash.server.body import read_body
from statusdash.server.deps import AlertsDep, ReaderDep
from statusdash.server.errors import invalid

router = APIRouter(prefix="/api", tags=["alerts"])
MAX_WINDOW_S = 90 * 86400


class WindowIn(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    tag: str = Field(description="KEY=VALUE: the hosts with this server-side tag")
    for_s: float = Field(alias="for", gt=0, le=MAX_WINDOW_S, description="90m, 2h, 1d or s")
    start: datetime | None = Field(default=None, description="ISO time; default now")
    reason: str = Field(default="", max_length=500)

    @field_validator("for_s", mode="before")
    @classmethod
    def _duration(cls, v: Any) -> float:
        return durations.parse(v)

    @field_validator("tag")
    @classmethod
    def _tag(cls, v: str) -> str:
        parse_tag(v)
        return v

    @field_validator("start")
    @classmethod
    def _aware(cls, v: datetime | None) -> datetime | None:
        return v.replace(tzinfo=UTC) if v is not None and v.tzinfo is None else v


@router.get("/maintenance")
async def list_windows(alerts: AlertsDep, _: ReaderDep) -> list[dict[str, Any]]:
    """Maintenance windows open or planned, soonest first."""
    now = alerts.clock()
    return [w.as_json(now) for w in windows.listing(alerts)]


@router.post("/maintenance", status_code=201)
async def add_window(request: Request, alerts: AlertsDep, reader: ReaderDep) -> JSONResponse:
    """Hold back the notices of hosts with a tag for a while (their alerts are still kept)."""
    body = await read_body(request, 16 * 1024)
    try:
        w = WindowIn.model_validate_json(body)
    except ValidationError as exc:
        raise invalid(exc) from None
    tag = parse_tag(w.tag)
    opened = await windows.open_window(alerts, tag, w.start, w.for_s, w.reason, reader.name)
    return JSONResponse(opened.as_json(alerts.clock()), status_code=201)


@router.delete("/maintenance/{window_id}")
async def end_window(
    alerts: AlertsDep, window_id: Annotated[int, Path(ge=1, le=2**63 - 1)], _: ReaderDep
) -> dict[str, Any]:
    """End (or cancel) a window now; what it held back and is still firing is sent."""
    return (await windows.end_window(alerts, window_id)).as_json()
