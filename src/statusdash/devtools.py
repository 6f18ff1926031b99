"""The Makefile's helpers: ``setup`` (.env with fresh secrets), ``certs`` (the usual set), ``demo``.

Run as ``python -m statusdash.devtools setup|certs|demo``. Everything is idempotent: nothing that
exists is overwritten, so ``make demo`` can be run again and again.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from statusdash import hostid
from statusdash.fsutil import atomic_write
from statusdash.settings import Settings, load_settings

ENV = Path(".env")
EXAMPLE = Path(".env.example")
VIEWER = "viewer"


def local_host_id() -> str:
    """This machine's host id, by the rule the agent uses for its default (``hostid``)."""
    return hostid.from_hostname()


def _fill(text: str) -> str:
    def secret(m: re.Match[str]) -> str:
        size = 48 if "SECRET" in m.group(1) else 18
        return f"{m.group(1)}={secrets.token_urlsafe(size)}"

    return re.sub(r"^([A-Z_]+)=__GENERATE__$", secret, text, flags=re.M)


def setup() -> None:
    """Write .env from .env.example with fresh secrets (mode 0600); create the directories."""
    if ENV.exists():
        ENV.chmod(0o600)  # before any secret goes in: an old .env may be world-readable
        text = ENV.read_text()
        if "__GENERATE__" in text:
            atomic_write(ENV, _fill(text))
            print(".env: filled the secrets that were missing")
        else:
            print(".env exists; kept as it is")
    else:
        template = EXAMPLE.read_text() if EXAMPLE.exists() else ""
        fd = os.open(ENV, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(_fill(template))
        print(".env written with fresh secrets (mode 0600)")
    s = load_settings()
    s.status_data_dir.mkdir(parents=True, exist_ok=True)
    s.vault_path.mkdir(parents=True, exist_ok=True, mode=0o700)
    print(f"data: {s.status_data_dir}  vault: {s.vault_path}")


def certs() -> None:
    """The usual set: CA, server certificate, this host's agent certificate and a viewer."""
    from statusdash.pki.ca import init_ca, issue_client_cert, issue_server_cert
    from statusdash.pki.vault import paths

    s = load_settings()
    vault = s.vault_path
    p = paths(vault)
    if not p.ca_cert.exists():
        init_ca(vault)
        print(f"CA created in {p.ca_dir}")
    if not p.server_cert.exists():
        sans = ["localhost", "127.0.0.1", "::1", socket.gethostname().lower()]
        issue_server_cert(vault, sans)
        print(f"server certificate for {', '.join(sans)}")
    for name, role in ((local_host_id(), "agent"), (VIEWER, "viewer")):
        if not p.client_cert(name).exists():
            issue_client_cert(vault, name, role)
            print(f"{role} certificate for {name}")
    print(f"certificates ready in {vault}")


def _wait_health(s: Settings, url: str, timeout: float = 20.0) -> bool:
    import httpx

    from statusdash.tlsclient import httpx_verify

    verify = httpx_verify(url, s.ca_cert)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health", verify=verify, timeout=2).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    return False


def port_taken(bind: str, port: int) -> str | None:
    """Why the server could not listen on ``bind:port`` (something else does), or None.

    Bound the way uvicorn binds (SO_REUSEADDR), so a port left in TIME_WAIT counts as free.
    """
    family = socket.AF_INET6 if ":" in bind else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((bind, port))
        except OSError as exc:
            return exc.strerror or str(exc)
    return None


def demo() -> int:
    """Server (mTLS), a local agent every 2 s, and the TUI with the viewer certificate.

    A port already taken (another server, an earlier demo) stops it at once with one line:
    it never shows someone else's server as if it were its own.
    """
    s = load_settings()
    taken = port_taken(s.status_bind, s.status_port)
    if taken is not None:
        print(
            f"statusdash: port {s.status_port} on {s.status_bind} is already in use ({taken});"
            f" stop what listens there or choose another: STATUS_PORT={s.status_port + 1}"
            " make demo",
            file=sys.stderr,
        )
        return 1
    exe = shutil.which("statusdash") or f"{sys.executable} -m statusdash.cli"
    cmd = exe.split()
    url = s.server_url()
    host = local_host_id()
    logs = s.status_data_dir / "demo"
    logs.mkdir(parents=True, exist_ok=True)
    procs: list[subprocess.Popen[bytes]] = []

    def start(args: list[str], log: str) -> subprocess.Popen[bytes]:
        out = open(logs / log, "ab")  # noqa: SIM115  (the child owns it)
        p = subprocess.Popen(cmd + args, stdout=out, stderr=subprocess.STDOUT)
        procs.append(p)
        return p

    try:
        server = start(["server", "run"], "server.log")
        if not _wait_health(s, url) or server.poll() is not None:  # a port taken meanwhile
            print(
                f"statusdash: the demo server did not come up; see {logs / 'server.log'}",
                file=sys.stderr,
            )
            return 1
        agent_args = ["agent", "run", "--server", url, "--certs-dir", str(s.vault_path)]
        agent_args += ["--host-id", host, "--interval", "2"]
        agent_args += ["--spool-dir", str(s.status_data_dir / "spool")]
        start(agent_args, "agent.log")
        vault = s.vault_path / "clients"
        reader = ["--server", url, "--ca", str(s.ca_cert)]
        reader += ["--cert", str(vault / f"{VIEWER}.crt"), "--key", str(vault / f"{VIEWER}.key")]
        print(f"server {url} · agent {host} · logs in {logs}")
        if sys.stdin.isatty() and sys.stdout.isatty():
            return subprocess.call([*cmd, "tui", *reader])
        # No terminal (CI, a pipe): show the fleet a few times through the CLI instead.
        time.sleep(5)
        return subprocess.call([*cmd, "hosts", "ls", *reader])
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()


def main(argv: list[str]) -> int:
    actions = {"setup": setup, "certs": certs, "demo": demo}
    if len(argv) != 1 or argv[0] not in actions:
        print(f"usage: python -m statusdash.devtools {'|'.join(actions)}", file=sys.stderr)
        return 2
    result = actions[argv[0]]()
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
