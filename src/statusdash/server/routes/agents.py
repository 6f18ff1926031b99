"""``GET /api/agents``: every agent the server knows, its version, spool backlog, certificate's
end and whether it is behind the server (``statusdash agent status``). Readers only."""

from __future__ import annotations

from fastapi import APIRouter

from statusdash import __version__
from statusdash.schema import AgentsAnswer, AgentStatus, utcnow, version_tuple
from statusdash.server.cache import HostState, host_status
from statusdash.server.deps import ReaderDep, StorageDep

router = APIRouter(prefix="/api", tags=["agents"])


def agent_status(state: HostState, server: tuple[int, ...]) -> AgentStatus:
    about = state.latest.agent
    version = about.version if about is not None else None
    cert_end = state.cert_not_after or (about.cert_not_after if about is not None else None)
    return AgentStatus(
        host=state.name,
        status=host_status(state.last_seen, state.interval_s, utcnow()),
        last_seen=state.last_seen,
        version=version,
        spool_backlog=about.spool_backlog if about is not None else None,
        cert_not_after=cert_end,
        behind=None if not version else version_tuple(version) < server,
    )


@router.get("/agents", response_model=AgentsAnswer)
async def list_agents(storage: StorageDep, _: ReaderDep) -> AgentsAnswer:
    server = version_tuple(__version__)
    return AgentsAnswer(
        server_version=__version__, agents=[agent_status(s, server) for s in storage.cache.all()]
    )
