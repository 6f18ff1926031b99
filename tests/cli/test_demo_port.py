"""`make demo` with its port taken says so in one line and exits 1: it never shows someone
else's server as its own."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

from statusdash import devtools
from tests.agent.agentproc import clean_env
from tests.conftest import free_port


def test_demo_refuses_a_taken_port_in_one_line(tmp_path: Path) -> None:
    with socket.socket() as other:  # someone else's server
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        env = {**clean_env(), "STATUS_PORT": str(port), "STATUS_BIND": "127.0.0.1"}
        env["STATUS_DATA_DIR"] = str(tmp_path / "data")
        done = subprocess.run(
            [sys.executable, "-m", "statusdash.devtools", "demo"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 1
    [line] = done.stderr.splitlines()
    assert line.startswith(f"statusdash: port {port} on 127.0.0.1 is already in use")
    assert f"STATUS_PORT={port + 1} make demo" in line
    assert not (tmp_path / "data" / "demo").exists()  # nothing was started


def test_port_taken_tells_a_free_port_from_a_taken_one() -> None:
    port = free_port()
    assert devtools.port_taken("127.0.0.1", port) is None
    with socket.socket() as other:
        other.bind(("127.0.0.1", port))
        other.listen()
        assert "in use" in (devtools.port_taken("127.0.0.1", port) or "")
