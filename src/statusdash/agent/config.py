"""The agent's resolved configuration: built by the CLI, handed to the daemon as JSON."""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CONFIG_ENV = "STATUSDASH_AGENT_CONFIG"


def default_spool_dir() -> Path:
    """Where reports wait: the unit's ``StateDirectory`` (whatever user it runs as), else
    /var/lib/statusdash for root and the XDG state dir for anyone else."""
    state_dir = os.environ.get("STATE_DIRECTORY", "").split(":")[0]
    if state_dir:
        return Path(state_dir) / "spool"
    if os.geteuid() == 0:
        return Path("/var/lib/statusdash/spool")
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "statusdash" / "spool"


@dataclass(frozen=True)
class AgentConfig:
    server_url: str
    host_id: str
    interval_s: float = 10.0
    ca: Path | None = None
    cert: Path | None = None
    key: Path | None = None
    api_key: str | None = None
    spool_dir: Path = field(default_factory=default_spool_dir)
    spool_max_bytes: int = 100 * 1024 * 1024
    spool_max_age_s: float = 7 * 86400
    extra_mounts: tuple[str, ...] = ()
    top_processes: int = 10  # by CPU and by memory each (procs.TOP_N; issue 13)
    timeout_s: float = 15.0  # per connect, read or write
    push_timeout_s: float = 20.0  # per request, all of it: a dribbling server cannot hold a push
    response_max_bytes: int = 64 * 1024  # an answer is a small ack: a longer one is not read
    backoff_max_s: float = 60.0
    # after a refused connection or a connection error (the server is not there: a restart)
    # the wait is capped lower, so a restart is bridged within the server's ALERT_START_GRACE_S
    backoff_connect_max_s: float = 10.0
    batch_max_reports: int = 200
    batch_max_bytes: int = 2 * 1024 * 1024  # keeps the daemon's peak memory small
    flush_timeout_s: float = 10.0  # how long a stopping agent tries to empty the spool
    log_level: str = "INFO"
    max_cycles: int | None = None  # stop after this many collections (benchmarks, tests)
    # services.yaml, parsed and checked by the CLI (ServicesConfig.to_dict): the daemon never
    # imports PyYAML
    services: dict[str, Any] | None = None
    services_file: str | None = None
    # acknowledged reports kept to refill a server restored from an older backup (agent/keep.py,
    # docs/agent.md "Keeping acknowledged reports"); either at 0 keeps none
    keep_acked_s: float = 24 * 3600.0
    keep_acked_max_bytes: int = 32 * 1024 * 1024
    # host tags sent on every report (``--tag role=db``; checked by the CLI with tagtext); the
    # server's own tags for the host win over these (docs/tags.md)
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def https(self) -> bool:
        return self.server_url.startswith("https://")

    def to_json(self) -> str:
        data = dataclasses.asdict(self)
        return json.dumps({k: str(v) if isinstance(v, Path) else v for k, v in data.items()})

    @classmethod
    def from_json(cls, text: str) -> AgentConfig:
        data: dict[str, Any] = json.loads(text)
        known = {f.name: f for f in dataclasses.fields(cls)}
        kwargs: dict[str, Any] = {}
        for name, value in data.items():
            if name not in known:
                continue
            if name in ("ca", "cert", "key", "spool_dir") and value is not None:
                value = Path(value)
            elif name == "extra_mounts":
                value = tuple(value)
            kwargs[name] = value
        return cls(**kwargs)
