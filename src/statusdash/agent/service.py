"""The systemd unit and environment file that ``statusdash agent install-service`` writes."""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from pathlib import Path

UNIT_PATH = Path("/etc/systemd/system/statusdash-agent.service")
ENV_PATH = Path("/etc/statusdash/agent.env")
SERVICE = "statusdash-agent"
DEFAULT_USER = "statusdash"

# What the collectors and checks need, and nothing else (docs/agent.md, "Running under systemd"):
# /proc and /sys are read (process walk, disks, sensors), statvfs on every mount (hence /home
# read-only, not hidden), TCP/HTTP checks and the push (AF_INET*), systemctl over D-Bus (AF_UNIX).
SANDBOX = (
    "NoNewPrivileges=yes",
    "CapabilityBoundingSet=",
    "AmbientCapabilities=",
    "ProtectSystem=strict",
    "ProtectHome=read-only",
    "PrivateTmp=yes",
    "PrivateDevices=yes",
    "ProtectKernelTunables=yes",
    "ProtectKernelModules=yes",
    "ProtectKernelLogs=yes",
    "ProtectControlGroups=yes",
    "ProtectClock=yes",
    "ProtectHostname=yes",
    "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6",
    "RestrictNamespaces=yes",
    "RestrictRealtime=yes",
    "RestrictSUIDSGID=yes",
    "LockPersonality=yes",
    "SystemCallArchitectures=native",
    "SystemCallFilter=@system-service",
    "SystemCallFilter=~@privileged",
)


def render_unit(
    exec_start: list[str],
    env_file: Path,
    user: str = DEFAULT_USER,
    credentials: Mapping[str, Path] | None = None,
) -> str:
    """A unit that restarts the agent forever, reads its settings from ``env_file``, and runs it
    unprivileged: a transient ``DynamicUser`` for the default user, else the named one (``root``:
    no sandbox user at all), in a sandbox with no capabilities. ``credentials`` (name -> file)
    are handed over by systemd in ``%d``, readable by the service alone: the key stays root's."""
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
        # SIGTERM: the agent ends the push in flight (its deadline, 20 s), flushes (10 s), exits 0
        "KillSignal=SIGTERM",
        "TimeoutStopSec=45",
    ]
    if user != "root":
        lines += [f"User={user}", f"Group={user}"]
        if user == DEFAULT_USER:
            lines.append("DynamicUser=yes")  # no account to create; the UID exists while it runs
    lines += [f"LoadCredential={name}:{path}" for name, path in (credentials or {}).items()]
    lines += [
        # /var/lib/statusdash, the service user's: the default spool lives there
        "StateDirectory=statusdash",
        "StateDirectoryMode=0700",
        "UMask=0077",
        *SANDBOX,
        "",
        "[Install]",
        "WantedBy=multi-user.target",
        "",
    ]
    return "\n".join(lines)


def credential_files(vault: Path, host: str) -> dict[str, Path]:
    """The vault's CA, certificate and key for ``LoadCredential=``: systemd reads them as root
    and hands them to the unprivileged agent, so the key never needs another owner."""
    files = {
        "ca.crt": vault / "ca" / "ca.crt",
        "client.crt": vault / "clients" / f"{host}.crt",
        "client.key": vault / "clients" / f"{host}.key",
    }
    if not files["client.crt"].is_file():  # an API key, say: the CA alone, if there is one
        files = {k: v for k, v in files.items() if k == "ca.crt" and v.is_file()}
    return files


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


def enable_hint(user: str, user_exists: bool, unit_path: Path, credentials: bool) -> str:
    """What the operator runs next."""
    steps: list[str] = []
    if user not in ("root", DEFAULT_USER) and not user_exists:
        steps.append(f"sudo useradd --system --no-create-home --shell /usr/sbin/nologin {user}")
    if user != "root" and not credentials:
        steps.append(
            f"# no --certs-dir: the CA, certificate and key must be readable by {user}"
            " (or give --certs-dir, and systemd hands them over)"
        )
    steps += ["sudo systemctl daemon-reload", f"sudo systemctl enable --now {unit_path.stem}"]
    steps.append(f"journalctl -u {unit_path.stem} -f   # follow its log")
    return "\n".join(steps)
