"""A check taken out of the real agent's services.yaml disappears from the real server: the
restarted agent's reports stop listing it, and the server drops it and resolves its alert."""

from __future__ import annotations

import socket
from pathlib import Path

from statusdash.server.alerts.lifecycle import CHECK_REMOVED
from tests.agent.agentproc import AgentProc, wait_for
from tests.agent.test_e2e import agent_args
from tests.agent.test_e2e_services import reported, service_alerts, status_of
from tests.conftest import Live

# heartbeat and interval 0.2 s: the server expects news within 2.5 x 0.2 = 0.5 s
HEAD = "heartbeat: 0.2s\ninterval: 0.2s\nservices:\n"


def test_a_check_removed_from_services_yaml_disappears(live_server: Live, tmp_path: Path) -> None:
    with socket.socket() as listener, socket.socket() as closed:
        listener.bind(("127.0.0.1", 0))
        listener.listen(128)
        closed.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
        db = f"  - {{name: db, tcp: '127.0.0.1:{listener.getsockname()[1]}', timeout: 1s}}\n"
        web = f"  - {{name: web, tcp: '127.0.0.1:{closed.getsockname()[1]}', timeout: 1s}}\n"
        yaml = tmp_path / "services.yaml"
        yaml.write_text(HEAD + db + web)
        spool = tmp_path / "spool"
        args = agent_args(live_server, spool, "--services", str(yaml))
        agent = AgentProc(tmp_path, *args)
        try:
            with live_server.reader() as reader:
                both = {"db": "healthy", "web": "unhealthy"}
                wait_for(lambda: status_of(reader) == both, what="both checks on the server")
                wait_for(lambda: len(reported(reader)) == 2, what="both in a report")
                wait_for(lambda: bool(service_alerts(reader, "active")), what="web's alert")
                assert agent.stop() == 0
                yaml.write_text(HEAD + db)  # the operator removes the web check
                agent = AgentProc(tmp_path, *args)
                wait_for(lambda: set(status_of(reader)) == {"db"}, what="web dropped")
                [gone] = service_alerts(reader, "resolved")
                assert gone.resolved_reason == CHECK_REMOVED and not gone.resolved_by
                assert not service_alerts(reader, "active")
                assert [s.name for s in reported(reader)] == ["db"]
                assert status_of(reader) == {"db": "healthy"}
            assert agent.stop() == 0
        finally:
            agent.kill()
