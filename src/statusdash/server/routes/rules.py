"""The alert rules in force: globally, and for every host the server knows, per mount and service.

Readers (the TUI's ``!`` flags, ``statusdash alerts rules``) show the thresholds the server
judges with, so this answers from the engine's rule set itself, never from the env defaults.
"""

from __future__ import annotations

from fastapi import APIRouter

from statusdash.schema import RulesInForce
from statusdash.server.deps import AlertsDep, ReaderDep, StorageDep

router = APIRouter(prefix="/api", tags=["alerts"])


@router.get("/alerts/rules", response_model=RulesInForce)
async def rules_in_force(storage: StorageDep, alerts: AlertsDep, _: ReaderDep) -> RulesInForce:
    """The rules file, the global rules, the overrides, each known host's rules (and where each
    came from: default, file or override), and the error of the last reload if it failed."""
    hosts = {
        s.name: ([d.mount for d in s.latest.disks], [c.name for c in s.latest.services])
        for s in storage.cache.all()
    }
    body = alerts.engine.rules.in_force(hosts)
    return RulesInForce.model_validate({**body, "reload_error": alerts.rules_error})
