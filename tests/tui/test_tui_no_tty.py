"""Issue 11 item 15: ``statusdash tui > file`` refuses with one line instead of escape codes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from statusdash.cli.tui import NO_TTY
from tests.conftest import Live, make_report

pytestmark = pytest.mark.usefixtures("client_env")


def test_tui_into_a_file_exits_1_with_one_line_and_no_escape_byte(
    live_server: Live, tmp_path: Path
) -> None:
    with live_server.agent("web-1") as agent:
        assert agent.post("/api/metrics/report", json=make_report("web-1")).status_code == 200
    out_file = tmp_path / "screen.txt"
    env = {
        **os.environ,
        "STATUSDASH_SERVER": live_server.url,
        "STATUSDASH_TOKEN": live_server.token(),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "TERM": "xterm-256color",
    }
    with out_file.open("wb") as stdout:
        done = subprocess.run(
            [sys.executable, "-m", "statusdash.cli", "tui"],
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=subprocess.PIPE,
            env=env,
            cwd=tmp_path,
            timeout=60,  # it must end by itself: a TUI that started would wait for keys
        )
    assert done.returncode == 1
    err = done.stderr.decode()
    assert err.splitlines() == [f"statusdash: {NO_TTY}"], err
    written = out_file.read_bytes()
    assert b"\x1b" not in written and b"\x1b" not in done.stderr
    assert written == b""
