"""One host's deploy, step by step: probe, push wheels, install, enroll, start, first report.

Every step is one ``ssh`` run; a failure is a ``DeployError`` whose message is the one line to
show. Re-running on a host upgrades in place: the same prefix, the wheels it already has are not
sent again, the venv is upgraded to the wheelhouse's version, and the key and certificate made
by the first enrollment are kept (no token is used then).
"""

from __future__ import annotations

import io
import shlex
import tarfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import PurePosixPath

from statusdash.deploy import remote
from statusdash.deploy.remote import MIN_PYTHON, Layout
from statusdash.deploy.ssh import DeployError, Ssh
from statusdash.deploy.wheelhouse import Wheelhouse

DEFAULT_PREFIX = PurePosixPath("/opt/statusdash")
START_MODES = ("auto", "systemd", "nohup", "none")
TokenSource = Callable[[str], tuple[str, str]]  # host id -> (token, CA fingerprint)
ReportWait = Callable[[str, float, str], None]  # host id, since (Unix time), version


@dataclass(frozen=True)
class Plan:
    """What to deploy, the same for every host but its id."""

    server: str
    wheelhouse: Wheelhouse
    tokens: TokenSource
    prefix: PurePosixPath = DEFAULT_PREFIX
    start: str = "auto"
    python: str = "python3"
    interval: float | None = None
    step_timeout_s: float = 600.0
    wait: ReportWait | None = None


@dataclass
class Outcome:
    target: str
    host_id: str
    ok: bool = False
    version: str = ""
    previous: str | None = None
    enrolled: bool = False  # a new identity (False: the one already there was kept)
    started: str = ""  # systemd, nohup, or "" (not started)
    hint: str = ""  # how to start it, when it was not started
    error: str = ""
    step: str = ""
    seconds: float = 0.0


def _tar(wheels: list[tuple[str, bytes]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in wheels:
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, int(time.time())
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def check_python(found: dict[str, list[str]], python: str, wh: Wheelhouse) -> str:
    """The host's interpreter path, or a DeployError saying what is missing."""
    path = (found.get("python") or [""])[0]
    if not path:
        raise DeployError(f"no {python} on the host: install Python >= 3.11 (or pass --python)")
    version = (found.get("version") or [""])[0]
    parts = tuple(int(p) for p in version.split(".") if p.isdigit())
    need = ".".join(map(str, MIN_PYTHON))
    if len(parts) < 2:
        raise DeployError(f"{path} does not run: install Python >= {need} (or pass --python)")
    if parts[:2] < MIN_PYTHON:
        raise DeployError(
            f"{path} is Python {version}, older than {need}: install Python >= {need}"
            " (or pass --python PATH)"
        )
    if (found.get("venv") or ["no"])[0] != "yes":
        raise DeployError(
            f"{path} has no venv/ensurepip module: install python3-venv (Debian, Ubuntu)"
        )
    machine = (found.get("machine") or [""])[0]
    other_python = bool(wh.python) and wh.python != f"{parts[0]}.{parts[1]}"
    if other_python or (bool(wh.machine) and wh.machine != machine):
        raise DeployError(
            f"the wheelhouse is for CPython {wh.python} on {wh.machine}, the host has"
            f" {version} on {machine}: build one for it and pass --wheelhouse (docs/agent.md)"
        )
    return path


def deploy(
    ssh: Ssh,
    host_id: str,
    plan: Plan,
    note: Callable[[str], None],
    prefix: PurePosixPath | None = None,
) -> Outcome:
    """Deploy to one host (at ``prefix``, else the plan's); never raises: the outcome says what
    failed and where."""
    out = Outcome(str(ssh.target), host_id)
    t0 = time.monotonic()
    step = "connect"
    try:
        out.version = plan.wheelhouse.version
        layout = Layout(prefix or plan.prefix)
        note(step)
        found = remote.parse_probe(
            ssh.run(remote.probe(layout, plan.python, host_id), timeout_s=plan.step_timeout_s)
        )
        step = "python"
        python = check_python(found, plan.python, plan.wheelhouse)
        out.previous = (found.get("installed") or [""])[0] or None
        step = "push"
        have = set(found.get("have", []))
        missing = [w for w in plan.wheelhouse.wheels if w.name not in have]
        note(f"push {len(missing)} wheel(s)")
        if missing:
            blob = _tar([(w.name, w.read_bytes()) for w in missing])
            ssh.run(remote.unpack(layout), stdin=blob, timeout_s=plan.step_timeout_s)
        step = "install"
        note(step)
        ssh.run(remote.install(layout, python, out.version), timeout_s=plan.step_timeout_s)
        step = "enroll"
        if (found.get("enrolled") or [""])[0] != "yes":
            note(step)
            token, fingerprint = plan.tokens(host_id)
            ssh.run(
                remote.enroll(layout, plan.server, host_id, fingerprint),
                stdin=(token + "\n").encode(), timeout_s=plan.step_timeout_s,
            )  # fmt: skip
            out.enrolled = True
        step = "start"
        note(step)
        mode = plan.start
        systemd = (found.get("systemd") or ["no"])[0] == "yes"
        root = (found.get("uid") or [""])[0] == "0"
        if mode == "auto":
            mode = "systemd" if systemd and root else "none"
        args = remote.run_args(layout, plan.server, host_id, plan.interval)
        if mode == "systemd":
            if not systemd:
                raise DeployError("--start systemd: systemd does not run on this host")
            ssh.run(remote.start_systemd(layout, plan.server, host_id, plan.interval))
            out.started = "systemd"
        elif mode == "nohup":
            ssh.run(remote.start_nohup(layout, args), timeout_s=plan.step_timeout_s)
            out.started = "nohup"
        else:
            why = (
                "--start none"
                if plan.start == "none"
                else "no systemd"
                if not systemd
                else "not root"
            )
            out.hint = (
                f"not started ({why}): start it with `nohup {shlex.join(args)}"
                f" >> {layout.log} 2>&1 &`, or deploy again with --start nohup"
            )
        # from now on only the new agent reports (the old one was stopped); at worst its first
        # report came just before and the wait takes one interval more
        started_at = time.time()
        if out.started and plan.wait is not None:
            step = "first report"
            note("waiting for the first report")
            plan.wait(host_id, started_at, out.version)  # a report of the agent just started
        out.ok = True
    except DeployError as exc:
        out.error, out.step = str(exc), step
    out.seconds = time.monotonic() - t0
    return out
