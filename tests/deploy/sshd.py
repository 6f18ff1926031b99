"""A real OpenSSH server on a loopback port, with its own host key, user keys and config.

It runs as the current user (CI runs as root) with ``/usr/sbin/sshd -D -f CONFIG -p PORT``,
listening on 127.0.0.1 only, and accepts two user keys: ``user_key`` (a plain login) and
``old_python_key``, whose commands run with a PATH that starts with a ``python3`` shim claiming
to be Python 3.9 (a forced ``command=`` in ``authorized_keys``): one sshd serves the "Python
too old" case too.
"""

from __future__ import annotations

import getpass
import os
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import free_port

SSHD = Path("/usr/sbin/sshd")
SHIM = """#!/bin/sh
# a python3 that answers as an old one: what the deploy's probe asks, nothing else
echo version=3.9.2
echo machine=$(uname -m)
"""


@dataclass
class Sshd:
    port: int
    home: Path
    known_hosts: Path
    user_key: Path
    old_python_key: Path
    wrong_key: Path
    proc: subprocess.Popen[bytes]

    @property
    def target(self) -> str:
        return f"{getpass.getuser()}@127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)


def _keygen(path: Path) -> str:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
    return path.with_suffix(".pub").read_text().strip()


def start_sshd(home: Path) -> Sshd:
    home.mkdir(parents=True, exist_ok=True)
    home.chmod(0o700)
    host_pub = _keygen(home / "host_ed25519")
    user_pub = _keygen(home / "user")
    old_pub = _keygen(home / "old")
    _keygen(home / "wrong")  # never authorized
    shim = home / "shim"
    shim.mkdir()
    (shim / "python3").write_text(SHIM)
    (shim / "python3").chmod(0o755)
    # a forced command, so the shim leads PATH after whatever the login shell's rc files set
    forced = f'export PATH={shim}:$PATH; eval \\"$SSH_ORIGINAL_COMMAND\\"'
    auth = home / "authorized_keys"
    auth.write_text(f'{user_pub}\ncommand="{forced}" {old_pub}\n')
    auth.chmod(0o600)
    port = free_port()
    config = home / "sshd_config"
    config.write_text(
        f"""ListenAddress 127.0.0.1
HostKey {home / "host_ed25519"}
PidFile {home / "sshd.pid"}
AuthorizedKeysFile {auth}
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
StrictModes no
UsePAM no
LogLevel ERROR
"""
    )
    known = home / "known_hosts"
    known.write_text(f"[127.0.0.1]:{port} {host_pub}\n")
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation dir
    log = (home / "sshd.log").open("wb")
    proc = subprocess.Popen(
        [str(SSHD), "-D", "-e", "-f", str(config), "-p", str(port)], stdout=log, stderr=log
    )
    deadline = time.monotonic() + 10
    while True:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                break
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"sshd did not start: {(home / 'sshd.log').read_text()}")
        time.sleep(0.05)
    return Sshd(port, home, known, home / "user", home / "old", home / "wrong", proc)
