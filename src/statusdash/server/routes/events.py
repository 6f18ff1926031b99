"""``POST /api/events``: service health and alert events from agents.

Callers authenticate as agents (client certificate or API key); the events are about that
identity's host. A service that is not on an agent host gets an API key of its own name
(``statusdash keys issue billing-api``) and reports under it.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from statusdash.server.body import read_body
from statusdash.server.deps import AgentDep, HealthDep
from statusdash.server.health_events import parse_events
from statusdash.wire import MAX_EVENTS_BYTES

router = APIRouter(prefix="/api", tags=["events"])


@router.post("/events")
async def post_events(request: Request, agent: AgentDep, health: HealthDep) -> dict[str, Any]:
    """One event, a list, or ``{"events": [...]}``; answers ``{"accepted": N, "changed": M}``."""
    events = parse_events(await read_body(request, MAX_EVENTS_BYTES))
    return await health.handle(agent.name, events)
