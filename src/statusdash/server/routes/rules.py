"""The alert rules in force: globally, and for every host the server knows, per mount and service.

Readers (the TUI's ``!`` flags, ``statusdash alerts rules``) show the thresholds the server
judges with, so this answers from the engine's rule set itself, never from the env defaults.
The answer grows with the fleet (about 1 KB per host), so it is built and encoded in a worker
thread rather than on the event loop that ingest runs on. Its shape is ``schema.RulesInForce``.
"""

from __future__ import annotations

import json

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from statusdash.server.alerts.rules import RuleSet
from statusdash.server.deps import AlertsDep, ReaderDep, StorageDep

router = APIRouter(prefix="/api", tags=["alerts"])


def _encode(
    rules: RuleSet, hosts: dict[str, tuple[list[str], list[str]]], error: str | None
) -> bytes:
    body = {**rules.in_force(hosts), "reload_error": error}
    return json.dumps(body, separators=(",", ":")).encode()


@router.get("/alerts/rules")
async def rules_in_force(storage: StorageDep, alerts: AlertsDep, _: ReaderDep) -> Response:
    """The rules file, the global rules, the overrides, each known host's rules (and where each
    came from: default, file or override), and the error of the last reload if it failed."""
    hosts = {
        s.name: ([d.mount for d in s.latest.disks], [c.name for c in s.latest.services])
        for s in storage.cache.all()
    }
    body = await run_in_threadpool(_encode, alerts.engine.rules, hosts, alerts.rules_error)
    return Response(body, media_type="application/json")
