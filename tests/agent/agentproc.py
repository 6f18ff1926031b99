"""Run the real agent (CLI, exec into the daemon) as a subprocess, and read the server's DB."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

CLI = [sys.executable, "-m", "statusdash.cli.agent", "run"]


def clean_env() -> dict[str, str]:
    """The environment without any statusdash setting of the developer's shell."""
    drop = ("STATUSDASH_", "STATUS_", "API_KEY", "VAULT_PATH", "MTLS_")
    return {k: v for k, v in os.environ.items() if not k.startswith(drop)}


class AgentProc:
    """``statusdash agent run`` with a short interval; stderr goes to a file we can read."""

    def __init__(self, workdir: Path, *args: str) -> None:
        self.log_path = workdir / f"agent-{time.monotonic_ns()}.log"
        self._log = self.log_path.open("w")
        self.proc = subprocess.Popen(
            [*CLI, *args], cwd=workdir, env=clean_env(), stderr=self._log, stdout=self._log
        )

    @property
    def log(self) -> str:
        return self.log_path.read_text()

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        finally:
            self._log.close()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self._log.close()


def wait_for(cond: Callable[[], bool], timeout: float = 20, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def stored(db: Path, host: str = "web-1") -> list[tuple[str, float]]:
    """Report ids and collection times the server stored for ``host``, in arrival order."""
    if not db.exists():
        return []
    with sqlite3.connect(db, timeout=10) as conn:
        try:
            rows = conn.execute(
                "SELECT s.report_id, s.ts FROM samples s JOIN hosts h ON h.id = s.host_id"
                " WHERE h.name = ? ORDER BY s.id",
                (host,),
            ).fetchall()
        except sqlite3.OperationalError:  # tables not created yet
            return []
    return [(str(uuid.UUID(bytes=bytes(r[0]))), float(r[1])) for r in rows]


def spooled(spool: Path) -> list[str]:
    """Report ids waiting in a spool directory, oldest first."""
    out: list[str] = []
    for f in sorted(spool.glob("*.json")):
        try:
            out.append(json.loads(f.read_bytes())["report_id"])
        except (OSError, ValueError):  # acknowledged and removed while we looked
            continue
    return out
