"""``GET /api/services``: the service health map (the seed's shape, camelCase ``lastCheck``)."""

from __future__ import annotations

from fastapi import APIRouter, Request

from statusdash.schema import ServiceHealth
from statusdash.server.auth import ReaderDep
from statusdash.server.services import service_list

router = APIRouter(prefix="/api", tags=["services"])


@router.get("/services", response_model=list[ServiceHealth], response_model_by_alias=True)
async def list_services(request: Request, _: ReaderDep) -> list[ServiceHealth]:
    return service_list(request.app)
