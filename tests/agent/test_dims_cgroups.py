"""Containers and systemd services (issue 13) from a recorded cgroup v2 tree, and from none."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import msgspec
import pytest

from statusdash import wire
from statusdash.agent.cgroups import CgroupCollector, Json

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "cgroup2"


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def _two_samples(tmp_path: Path, top: int = 3) -> tuple[list[Json], list[Json]]:
    root = tmp_path / "cgroup"
    shutil.copytree(FIXTURE / "t0", root)
    clock = Clock()
    collector = CgroupCollector(str(root), top_services=top, clock=clock)
    first = collector.sample()
    shutil.copytree(FIXTURE / "t1", root, dirs_exist_ok=True)  # ten seconds later
    clock.t += 10.0
    return first, collector.sample()


def test_containers_and_the_busiest_services(tmp_path: Path) -> None:
    first, second = _two_samples(tmp_path)
    assert all(c["cpu_percent"] is None for c in first)  # no rate on a group's first sample
    assert second == [  # containers by kind and name, then services
        {"name": "systemd-nspawn@build", "kind": "cgroup", "cpu_percent": 100.0,
         "memory_bytes": 67112960},
        {"name": "3f4e1c2b9a8d", "kind": "docker", "cpu_percent": 25.0, "memory_bytes": 52432896},
        {"name": "1a2b3c4d5e6f", "kind": "podman", "cpu_percent": 0.5, "memory_bytes": 12587008},
        {"name": "9c8b7a6f5e4d", "kind": "podman", "cpu_percent": 10.0, "memory_bytes": 33558528},
        # the three busiest of five services, by name; sshd (idle) and cron are left out
        {"name": "nginx.service", "kind": "systemd", "cpu_percent": 3.0, "memory_bytes": 8392704},
        {"name": "postgresql.service", "kind": "systemd", "cpu_percent": 60.0,
         "memory_bytes": 268439552},
        {"name": "systemd-journald.service", "kind": "systemd", "cpu_percent": 1.0,
         "memory_bytes": 16781312},
    ]  # fmt: skip
    msgspec.convert(second, list[wire.Container])


def test_the_number_of_services_is_a_setting(tmp_path: Path) -> None:
    _, second = _two_samples(tmp_path, top=10)
    assert [c["name"] for c in second if c["kind"] == "systemd"] == [
        "cron.service",
        "nginx.service",
        "postgresql.service",
        "sshd.service",
        "systemd-journald.service",
    ]
    _, none = _two_samples(tmp_path / "again", top=0)
    assert [c["kind"] for c in none if c["kind"] == "systemd"] == []


def test_a_counter_that_goes_back_gives_no_rate(tmp_path: Path) -> None:
    root = tmp_path / "cgroup"
    shutil.copytree(FIXTURE / "t1", root)
    clock = Clock()
    collector = CgroupCollector(str(root), clock=clock)
    collector.sample()
    shutil.copytree(FIXTURE / "t0", root, dirs_exist_ok=True)  # a container re-created
    clock.t += 10.0
    rates = {c["name"]: c["cpu_percent"] for c in collector.sample()}
    assert rates.pop("sshd.service") == 0.0  # its counter did not move
    assert set(rates.values()) == {None}


def test_a_group_that_vanishes_between_listing_and_reading(tmp_path: Path) -> None:
    root = tmp_path / "cgroup"
    shutil.copytree(FIXTURE / "t0", root)
    for f in (root / "system.slice" / "nginx.service").iterdir():
        f.unlink()
    (root / "system.slice" / "cron.service" / "cpu.stat").write_text("garbage\n")
    collector = CgroupCollector(str(root), top_services=10, clock=Clock())
    by_name = {c["name"]: c for c in collector.sample()}
    assert by_name["nginx.service"]["memory_bytes"] is None
    assert by_name["cron.service"]["cpu_percent"] is None


@pytest.mark.parametrize("tree", ["missing", "v1"])
def test_no_cgroup2_means_no_containers_and_no_log(
    tmp_path: Path, tree: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    root = tmp_path / "cgroup"
    if tree == "v1":  # a cgroup v1 hierarchy: controllers as directories, no cgroup.controllers
        for d in ("cpu", "memory", "systemd"):
            (root / d).mkdir(parents=True)
    collector = CgroupCollector(str(root))
    assert not collector.present and collector.sample() == []
    assert caplog.records == []
