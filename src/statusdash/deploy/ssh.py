"""The system ``ssh`` client, run once per remote step, and its failures as one clear line.

We drive OpenSSH's own client rather than a Python SSH library: it reads the operator's
``~/.ssh/config`` (aliases, ``ProxyJump``, per-host keys), ``ssh-agent`` and ``known_hosts``
exactly as their own ``ssh`` does, needs no new dependency, and is on every machine that
manages Linux hosts. ``BatchMode=yes`` means it never prompts: an unknown host key or a key the
server refuses is a failure, not a question.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from statusdash.errors import Invalid, StatusdashError

_TARGET = re.compile(
    r"^(?:(?P<user>[A-Za-z0-9._-]{1,64})@)?"
    r"(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]{1,253})"
    r"(?::(?P<port>\d{1,5}))?$"
)


class DeployError(StatusdashError):
    """One step on one host failed; ``str()`` is the line to show."""


@dataclass(frozen=True)
class Target:
    host: str
    user: str | None = None
    port: int = 22

    @classmethod
    def parse(cls, text: str) -> Target:
        """``[USER@]HOST[:PORT]`` (an IPv6 address in brackets); ``Invalid`` otherwise."""
        m = _TARGET.match(text.strip())
        if m is None or m["host"].startswith("-"):
            raise Invalid(f"{text!r} is not [USER@]HOST[:PORT]")
        port = int(m["port"] or 22)
        if not 1 <= port <= 65535:
            raise Invalid(f"{text!r}: port {port} is not 1-65535")
        return cls(m["host"].strip("[]"), m["user"], port)

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        user = f"{self.user}@" if self.user else ""
        return f"{user}{host}" + (f":{self.port}" if self.port != 22 else "")


@dataclass(frozen=True)
class Ssh:
    """How to reach one target: the ``ssh`` argv before the remote command."""

    target: Target
    identity: Path | None = None
    known_hosts: Path | None = None
    accept_new_host_key: bool = False
    connect_timeout_s: float = 15.0
    options: tuple[str, ...] = field(default_factory=tuple)
    binary: str = "ssh"

    def argv(self, command: str) -> list[str]:
        t = self.target
        args = [self.binary, "-p", str(t.port), "-o", "BatchMode=yes"]
        args += ["-o", f"ConnectTimeout={max(1, round(self.connect_timeout_s))}"]
        args += ["-o", "ServerAliveInterval=15", "-o", "ServerAliveCountMax=3"]
        if self.identity is not None:
            args += ["-i", str(self.identity), "-o", "IdentitiesOnly=yes"]
        if self.known_hosts is not None:
            args += ["-o", f"UserKnownHostsFile={self.known_hosts}"]
        if self.accept_new_host_key:
            args += ["-o", "StrictHostKeyChecking=accept-new"]
        for option in self.options:
            args += ["-o", option]
        if t.user:
            args += ["-l", t.user]
        return [*args, "--", t.host, command]

    def run(self, command: str, *, stdin: bytes | None = None, timeout_s: float = 600.0) -> str:
        """Run ``command`` (a POSIX shell line) on the target; its stdout, or a DeployError."""
        try:
            done = subprocess.run(  # argv built above, no shell here
                self.argv(command),
                input=stdin if stdin is not None else b"",
                capture_output=True,
                timeout=timeout_s,
                check=False,
            )
        except FileNotFoundError:
            raise DeployError(f"no `{self.binary}` here: install OpenSSH's client") from None
        except subprocess.TimeoutExpired:
            raise DeployError(f"{self.target}: no answer within {timeout_s:g} s") from None
        out = done.stdout.decode("utf-8", "replace")
        err = done.stderr.decode("utf-8", "replace")
        if done.returncode == 255:
            raise DeployError(explain_ssh_failure(self.target, err))
        if done.returncode != 0:
            raise DeployError(last_line(err) or last_line(out) or f"exit {done.returncode}")
        return out


def last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""


_SSH_FAILURES = (
    ("Permission denied", "SSH refused the login ({why}): check the user and --identity"),
    ("Host key verification failed", "the host key is unknown or has changed: add it to"
     " known_hosts (ssh-keyscan), or pass --accept-new-host-key for a host never seen"),
    ("Connection refused", "connection refused: no SSH server on port {port}"),
    ("Could not resolve hostname", "cannot resolve host name {host!r}"),
    ("timed out", "connection timed out"),
    ("No route to host", "no route to host"),
    ("Connection closed", "the SSH server closed the connection ({why})"),
    ("Connection reset", "the SSH server reset the connection ({why})"),
    ("no such identity", "identity file not found ({why})"),
    ("Load key", "cannot load the identity file ({why})"),
)  # fmt: skip


def explain_ssh_failure(target: Target, stderr: str) -> str:
    """One line for an ssh that could not connect or log in (exit status 255)."""
    why = last_line(stderr) or "ssh exited with 255"
    for needle, line in _SSH_FAILURES:
        if needle.lower() in stderr.lower():
            return line.format(t=target, why=why, port=target.port, host=target.host)
    return f"ssh failed: {why}"
