"""The POSIX shell lines ``agent deploy`` runs on a host, one per step, every value quoted.

Layout under the prefix (default ``/opt/statusdash``): ``wheels/`` (the wheelhouse), ``venv/``,
``VERSION`` (what is installed), ``certs/`` (the agent's key, certificate and CA: made there by
``agent enroll``, kept across upgrades), ``spool/``, and for ``--start nohup`` ``agent.pid`` and
``agent.log``.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import PurePosixPath

MIN_PYTHON = (3, 11)
UNIT_NAME = "statusdash-agent"


def q(value: object) -> str:
    return shlex.quote(str(value))


@dataclass(frozen=True)
class Layout:
    prefix: PurePosixPath

    @property
    def wheels(self) -> PurePosixPath:
        return self.prefix / "wheels"

    @property
    def venv(self) -> PurePosixPath:
        return self.prefix / "venv"

    @property
    def statusdash(self) -> PurePosixPath:
        return self.venv / "bin" / "statusdash"

    @property
    def certs(self) -> PurePosixPath:
        return self.prefix / "certs"

    @property
    def spool(self) -> PurePosixPath:
        return self.prefix / "spool"

    @property
    def pidfile(self) -> PurePosixPath:
        return self.prefix / "agent.pid"

    @property
    def log(self) -> PurePosixPath:
        return self.prefix / "agent.log"


def probe(layout: Layout, python: str, host_id: str) -> str:
    """key=value lines: the Python, venv support, systemd, uid, wheels held, version, identity."""
    p = layout.prefix
    return f"""
py=$(command -v {q(python)} 2>/dev/null) || {{ echo python=; exit 0; }}
echo "python=$py"
"$py" -c 'import sys, platform; print("version=%d.%d.%d" % sys.version_info[:3]); print("machine=" + platform.machine())' 2>/dev/null || echo version=
"$py" -c 'import venv, ensurepip' >/dev/null 2>&1 && echo venv=yes || echo venv=no
[ -d /run/systemd/system ] && echo systemd=yes || echo systemd=no
echo "uid=$(id -u)"
[ -d {q(layout.wheels)} ] && ls {q(layout.wheels)} | sed 's/^/have=/'
[ -f {q(p / "VERSION")} ] && sed 's/^/installed=/' {q(p / "VERSION")}
[ -f {q(layout.certs / "clients" / f"{host_id}.crt")} ] && echo enrolled=yes
exit 0
"""  # noqa: E501


def parse_probe(text: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            found.setdefault(key.strip(), []).append(value.strip())
    return found


def unpack(layout: Layout) -> str:
    """Untar the wheels sent on stdin into the wheelhouse directory."""
    return f"umask 022 && mkdir -p {q(layout.wheels)} && tar -x -f - -C {q(layout.wheels)}"


def install(layout: Layout, python: str, version: str) -> str:
    """Make the venv if missing, install (or upgrade to) ``version`` from the wheels only."""
    pip = f"{q(layout.venv / 'bin' / 'python')} -m pip"
    missing = q(f"no {layout.statusdash} after the install")
    return f"""set -e
umask 022
[ -x {q(layout.venv / "bin" / "python")} ] || {q(python)} -m venv {q(layout.venv)}
{pip} install --quiet --disable-pip-version-check --no-index --find-links {q(layout.wheels)} \\
  --upgrade {q(f"statusdash=={version}")} 2>&1 | tail -n 5
[ -x {q(layout.statusdash)} ] || {{ echo {missing} >&2; exit 1; }}
printf '%s\\n' {q(version)} > {q(layout.prefix / "VERSION")}
"""


def enroll(layout: Layout, server: str, host_id: str, ca_fingerprint: str) -> str:
    """``agent enroll`` with the token read from stdin (not on a command line, not in ps)."""
    return (
        f"cd {q(layout.prefix)} && IFS= read -r STATUSDASH_ENROLL_TOKEN"
        " && export STATUSDASH_ENROLL_TOKEN"
        f" && exec {q(layout.statusdash)} agent enroll --server {q(server)}"
        f" --host-id {q(host_id)} --certs-dir {q(layout.certs)}"
        f" --ca-fingerprint {q(ca_fingerprint)} 2>&1"
    )


def run_args(layout: Layout, server: str, host_id: str, interval: float | None) -> list[str]:
    args = [str(layout.statusdash), "agent", "run", "--server", server, "--host-id", host_id]
    args += ["--certs-dir", str(layout.certs), "--spool-dir", str(layout.spool)]
    if interval is not None:
        args += ["--interval", f"{interval:g}"]
    return args


def start_nohup(layout: Layout, args: list[str]) -> str:
    """Stop the agent this prefix started before (its pid file), start it again, detached."""
    pid = q(layout.pidfile)
    return f"""set -e
cd {q(layout.prefix)}
if [ -f {pid} ] && kill -0 "$(cat {pid})" 2>/dev/null; then
  kill "$(cat {pid})"; i=0
  while kill -0 "$(cat {pid})" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
fi
nohup {" ".join(q(a) for a in args)} >> {q(layout.log)} 2>&1 < /dev/null &
echo $! > {pid}
sleep 0.5
kill -0 "$(cat {pid})" 2>/dev/null || {{ tail -n 3 {q(layout.log)} >&2; exit 1; }}
"""


def start_systemd(layout: Layout, server: str, host_id: str, interval: float | None) -> str:
    """The existing unit writer (``agent install-service``: a DynamicUser in a sandbox, the
    key handed over by systemd, the spool in its StateDirectory), then enable and (re)start."""
    args = [str(layout.statusdash), "agent", "install-service", "--server", server]
    args += ["--host-id", host_id, "--certs-dir", str(layout.certs)]
    if interval is not None:
        args += ["--interval", f"{interval:g}"]
    return f"""set -e
{" ".join(q(a) for a in args)} >/dev/null
systemctl daemon-reload
systemctl enable --quiet {UNIT_NAME}
systemctl restart {UNIT_NAME}
"""
