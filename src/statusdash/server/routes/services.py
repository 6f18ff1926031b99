"""``GET /api/services``: the service health map (the seed's shape, camelCase ``lastCheck``)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from statusdash.schema import ServiceHealth
from statusdash.server.deps import HealthDep, ReaderDep, ServicesDep

router = APIRouter(prefix="/api", tags=["services"])


@router.get("/services", response_model=list[ServiceHealth], response_model_by_alias=True)
async def list_services(services: ServicesDep, _: ReaderDep) -> list[ServiceHealth]:
    return services.all()


@router.get("/services/limits")
async def service_limits(health: HealthDep, _: ReaderDep) -> dict[str, Any]:
    """The per-host caps on services and event alerts, each host's use and its refusals."""
    return health.limits()
