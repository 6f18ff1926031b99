"""After a refused connection (a server restarting) the agent retries within 10 s; answered
failures keep the long backoff, and a ``Retry-After`` is waited at least (up to the cap)."""

from __future__ import annotations

import random
import time
from pathlib import Path

import pytest

from statusdash.agent.push import Delivery, Sender
from statusdash.agent.pusher import Pusher
from statusdash.agent.spool import Spool
from statusdash.backoff import Backoff
from tests.agent.standin import StandIn
from tests.agent.test_push import config, fill, standin  # noqa: F401  (the fixture)
from tests.conftest import free_port


def failed_passes(pusher: Pusher, n: int) -> list[tuple[Delivery, float]]:
    """``n`` delivery passes in a row, each with the delay the push thread would wait after it."""
    out = []
    for _ in range(n):
        result = pusher.deliver(time.monotonic() + 5, stop=False)
        assert not result.ok
        out.append((result, pusher.delay_after(result)))
    return out


def test_a_lower_cap_caps_one_delay() -> None:
    b = Backoff(1.0, 60.0, jitter=False)
    assert [b.next_delay(cap_s=10.0) for _ in range(6)] == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0]
    assert b.next_delay() == 60.0  # the 7th failure in a row, uncapped: 64 -> 60
    assert Backoff(1.0, 5.0, jitter=False).next_delay(cap_s=0.1) == 1.0  # never below base


def test_a_refused_connection_is_retried_within_the_connect_cap(tmp_path: Path) -> None:
    sender = Sender(config(f"http://127.0.0.1:{free_port()}", tmp_path))
    assert sender.cfg.backoff_connect_max_s == 10.0 < sender.cfg.backoff_max_s
    with Spool(tmp_path / "spool") as spool:
        fill(spool, 2)
        pusher = Pusher(
            sender, spool, None, pass_s=1, backoff_max_s=60, flush_s=1, rng=random.Random(7)
        )
        passes = failed_passes(pusher, 10)
        assert spool.pending == 2
    assert all(r.unreachable and r.retry_after_s is None for r, _ in passes)
    delays = [d for _, d in passes]
    assert max(delays) <= 10.0 and min(delays[4:]) >= 5.0  # capped, and still jittered


def test_an_answered_failure_backs_off_longer_and_retry_after_is_honoured(
    standin: StandIn,  # noqa: F811
    tmp_path: Path,
) -> None:
    sender = Sender(config(standin.url, tmp_path))
    with Spool(tmp_path / "spool") as spool:
        fill(spool, 1)
        pusher = Pusher(
            sender, spool, None, pass_s=1, backoff_max_s=60, flush_s=1, rng=random.Random(7)
        )
        standin.script = [503] * 7
        plain = failed_passes(pusher, 7)
        assert not any(r.unreachable for r, _ in plain)
        assert plain[-1][1] >= 30.0  # the 7th 503 in a row: the ordinary cap, 60 s
        pusher.backoff.reset()
        standin.error_headers = {"Retry-After": "30"}
        standin.script = [503]
        [(told, delay)] = failed_passes(pusher, 1)
        assert told.retry_after_s == 30.0 and delay == 30.0  # not the 0.5-1 s of a first failure
        standin.error_headers = {"Retry-After": "3600"}
        standin.script = [429]
        [(_, delay)] = failed_passes(pusher, 1)
        assert delay == 60.0  # no server parks an agent past --backoff-max
        assert pusher.deliver(time.monotonic() + 5, stop=False).ok and spool.pending == 0


def test_the_connect_cap_is_a_flag_of_agent_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--backoff-connect-max`` reaches the daemon's config; unset, AgentConfig's default."""
    from typer.testing import CliRunner

    from statusdash.agent.config import AgentConfig
    from statusdash.cli import agent as agent_cli
    from statusdash.cli.main import app

    seen: list[AgentConfig] = []
    monkeypatch.setattr(agent_cli, "_daemon", seen.append)  # the boundary to the daemon process

    def config(*extra: str) -> AgentConfig:
        result = CliRunner().invoke(
            app,
            ["agent", "run", "--server", "http://127.0.0.1:9", "--host-id", "web-1",
             "--api-key", "k" * 32, "--spool-dir", str(tmp_path / "spool"), *extra],
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        return seen.pop()

    assert config().backoff_connect_max_s == AgentConfig.backoff_connect_max_s
    assert config("--backoff-connect-max", "4").backoff_connect_max_s == 4.0
