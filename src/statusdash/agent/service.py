"""The systemd unit and environment file that ``statusdash agent install-service`` writes."""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from pathlib import Path

UNIT_PATH = Path("/etc/systemd/system/statusdash-agent.service")
ENV_PATH = Path("/etc/statusdash/agent.env")
SERVICE = "statusdash-agent"


def render_unit(exec_start: list[str], env_file: Path, user: str | None = None) -> str:
    """A unit that restarts the agent forever and reads its settings from ``env_file``."""
    lines = [
        "[Unit]",
        "Description=statusdash agent: pushes this host's metrics to the statusdash server",
        "Wants=network-online.target",
        "After=network-online.target",
        "",
        "[Service]",
        "Type=simple",
        f"EnvironmentFile={env_file}",
        f"ExecStart={shlex.join(exec_start)}",
        "Restart=always",
        "RestartSec=5",
        # SIGTERM: the agent finishes the push in flight, tries the spool once, exits 0
        "KillSignal=SIGTERM",
        "TimeoutStopSec=30",
        # /var/lib/statusdash, owned by the service user: the default spool lives there
        "StateDirectory=statusdash",
        "StateDirectoryMode=0700",
        "NoNewPrivileges=yes",
        "ProtectSystem=full",
        "PrivateTmp=yes",
    ]
    if user:
        lines += [f"User={user}", f"Group={user}"]
    lines += ["", "[Install]", "WantedBy=multi-user.target", ""]
    return "\n".join(lines)


def render_env(values: Mapping[str, str | None]) -> str:
    """The environment file: one ``NAME=value`` a line, unset names left as comments."""
    out = [
        "# statusdash agent settings, read by statusdash-agent.service (see docs/agent.md).",
        "# Mode 0600: it may hold API_KEY.",
    ]
    for name, value in values.items():
        if value is None or value == "":
            out.append(f"#{name}=")
        else:
            out.append(f"{name}={_quote(value)}")
    return "\n".join(out) + "\n"


def _quote(value: str) -> str:
    if all(ch.isalnum() or ch in "-_./:@,+=" for ch in value):
        return value
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def enable_hint(user: str | None, user_exists: bool, unit_path: Path) -> str:
    """What the operator runs next."""
    steps: list[str] = []
    if user and not user_exists:
        steps.append(f"sudo useradd --system --no-create-home --shell /usr/sbin/nologin {user}")
    if user:
        steps.append(f"# the key must be readable by {user}, e.g. chown {user} <its .key file>")
    steps += ["sudo systemctl daemon-reload", f"sudo systemctl enable --now {unit_path.stem}"]
    steps.append(f"journalctl -u {unit_path.stem} -f   # follow its log")
    return "\n".join(steps)
