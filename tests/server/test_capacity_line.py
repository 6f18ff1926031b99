"""Issue 15 item 6: at start the server says how many agents it can hold, by open files and by
memory, the smaller winning; a cgroup memory limit counts when it is lower than MemAvailable."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from statusdash.server import runner
from statusdash.server.runner import AGENT_MEMORY_BYTES, FDS_RESERVED, available_memory, capacity


def test_the_smaller_of_files_and_memory_is_the_capacity() -> None:
    by_memory = capacity(1_048_576, 1024 * AGENT_MEMORY_BYTES)
    assert (by_memory.by_files, by_memory.by_memory, by_memory.agents) == (
        1_048_576 - FDS_RESERVED,
        1024,
        1024,
    )
    assert by_memory.line().startswith("capacity: about 1,024 agents (open-file limit 1,048,576")
    by_files = capacity(1024, 10**12)
    assert by_files.agents == 1024 - FDS_RESERVED
    assert "allows 960 connections" in by_files.line()


def test_no_memory_figure_still_gives_a_line() -> None:
    c = capacity(4096, None)
    assert c.agents == 4096 - FDS_RESERVED
    assert (
        c.line() == "capacity: about 4,032 agents (open-file limit 4,096 allows 4,032 connections)"
    )


def test_a_tiny_limit_is_zero_not_negative() -> None:
    assert capacity(10, 0).agents == 0


def test_a_cgroup_limit_lower_than_free_memory_wins(tmp_path: Path) -> None:
    (tmp_path / "memory.max").write_text(f"{200 * 2**20}\n")
    (tmp_path / "memory.current").write_text(f"{50 * 2**20}\n")
    room = available_memory(tmp_path)
    assert room is not None and room <= 150 * 2**20
    (tmp_path / "memory.max").write_text("max\n")
    unlimited = available_memory(tmp_path)
    assert unlimited is not None and unlimited > 0
    (tmp_path / "memory.max").write_text("garbage\n")  # unreadable: MemAvailable alone, no error
    assert available_memory(tmp_path) is not None


def test_serve_logs_the_capacity_line(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    from statusdash.settings import Settings

    class NoServer:
        def __init__(self, config: object) -> None:
            pass

        def run(self) -> None:
            pass

    monkeypatch.setattr(runner, "Server", NoServer)
    monkeypatch.setattr(runner, "uvicorn_config", lambda settings, level: None)
    monkeypatch.setattr(logging, "basicConfig", lambda **kw: None)
    monkeypatch.setattr(runner, "make_private", lambda settings: None)  # it sets the umask
    settings = Settings(status_data_dir=tmp_path, mtls_enabled=False, _env_file=None)
    with caplog.at_level(logging.INFO, logger="statusdash.server"):
        runner.serve(settings)
    [line] = [r.getMessage() for r in caplog.records if r.getMessage().startswith("capacity:")]
    assert "agents" in line and "open-file limit" in line
