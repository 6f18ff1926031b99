"""Containers and systemd services for the ``containers`` section (issue 13), from cgroup v2.

Where ``/sys/fs/cgroup`` is a cgroup v2 hierarchy (it has ``cgroup.controllers``), these groups
are reported:

- Docker containers: ``system.slice/docker-<id>.scope`` (systemd driver) or ``docker/<id>``
  (cgroupfs driver), named by the first 12 hex digits of the id, as ``docker ps`` shows it;
- Podman containers: ``machine.slice/libpod-<id>.scope``, and rootless ones under
  ``user.slice/user-<uid>.slice/user@<uid>.service/user.slice/``, named the same way;
- other machines (``machine.slice/<name>.scope``: systemd-nspawn, LXC), kind ``cgroup``;
- the ``top_services`` systemd services (``system.slice/<unit>.service``) using most CPU, named
  by their unit.

CPU is % of one core (as for processes), from the ``usage_usec`` of ``cpu.stat`` between two
samples (``None`` on a group's first); memory is ``memory.current``. Only the scope of each group
is read, never its children, and memory only for the groups reported. A host without cgroup v2
(or a container that cannot see its host's tree) reports none, and logs nothing.
"""

from __future__ import annotations

import heapq
import os
import re
from collections.abc import Callable, Iterator
from typing import Any

from statusdash.agent.collectors import wire_text

Json = dict[str, Any]
TOP_SERVICES = 10
MAX_CONTAINERS = 256  # a host with more reports its first 256 by name (the wire's cap is 512)
_DOCKER_SCOPE = re.compile(r"docker-([0-9a-f]{12,64})\.scope\Z")
_PODMAN_SCOPE = re.compile(r"libpod-([0-9a-f]{12,64})\.scope\Z")  # not libpod-conmon-...
_HEX_ID = re.compile(r"[0-9a-f]{64}\Z")
_USER_SLICE = re.compile(r"user-\d+\.slice\Z")
_USER_MANAGER = re.compile(r"user@\d+\.service\Z")


def _listdir(path: str) -> list[str]:
    try:
        return os.listdir(path)
    except OSError:
        return []


def _read_int(path: str, key: bytes | None = None) -> int | None:
    """An integer file (``memory.current``), or one key of a flat-keyed file (``cpu.stat``)."""
    try:
        fd = os.open(path, os.O_RDONLY)
        try:
            data = os.read(fd, 4096)
        finally:
            os.close(fd)
    except OSError:
        return None
    try:
        if key is None:
            return int(data)
        for line in data.splitlines():
            k, _, v = line.partition(b" ")
            if k == key:
                return int(v)
    except ValueError:
        return None
    return None


def find_groups(root: str) -> Iterator[tuple[str, str, str]]:
    """(kind, name, path) of each container and systemd service in the tree at ``root``."""
    system = os.path.join(root, "system.slice")
    for entry in _listdir(system):
        if m := _DOCKER_SCOPE.match(entry):
            yield "docker", m.group(1)[:12], os.path.join(system, entry)
        elif m := _PODMAN_SCOPE.match(entry):
            yield "podman", m.group(1)[:12], os.path.join(system, entry)
        elif entry.endswith(".service"):
            yield "systemd", entry, os.path.join(system, entry)
    docker = os.path.join(root, "docker")
    for entry in _listdir(docker):
        if _HEX_ID.match(entry):
            yield "docker", entry[:12], os.path.join(docker, entry)
    machine = os.path.join(root, "machine.slice")
    for entry in _listdir(machine):
        if m := _PODMAN_SCOPE.match(entry):
            yield "podman", m.group(1)[:12], os.path.join(machine, entry)
        elif entry.endswith(".scope") and not entry.startswith("libpod-conmon-"):
            yield "cgroup", entry.removesuffix(".scope"), os.path.join(machine, entry)
    users = os.path.join(root, "user.slice")
    for user in _listdir(users):
        if not _USER_SLICE.match(user):
            continue
        for manager in _listdir(os.path.join(users, user)):
            if not _USER_MANAGER.match(manager):
                continue
            inner = os.path.join(users, user, manager, "user.slice")
            for entry in _listdir(inner):
                if m := _PODMAN_SCOPE.match(entry):
                    yield "podman", m.group(1)[:12], os.path.join(inner, entry)


def is_cgroup2(root: str) -> bool:
    return os.path.exists(os.path.join(root, "cgroup.controllers"))


class CgroupCollector:
    """Keeps each group's previous CPU usage, so that a sample yields % of a core since the last."""

    def __init__(
        self,
        root: str = "/sys/fs/cgroup",
        top_services: int = TOP_SERVICES,
        clock: Callable[[], float] | None = None,
    ) -> None:
        import time

        self._root = root
        self._top = max(0, top_services)
        self._clock = clock or time.monotonic
        self.present = is_cgroup2(root)
        self._prev: dict[str, int] = {}
        self._prev_t: float | None = None

    def sample(self) -> list[Json]:
        """The ``containers`` list: containers by name, then the busiest services."""
        if not self.present:
            return []
        now = self._clock()
        dt = now - self._prev_t if self._prev_t is not None else 0.0
        self._prev_t = now
        usage: dict[str, int] = {}
        containers: list[tuple[str, str, str, float | None]] = []
        services: list[tuple[str, str, str, float | None]] = []
        for kind, name, path in find_groups(self._root):
            used = _read_int(os.path.join(path, "cpu.stat"), b"usage_usec")
            cpu: float | None = None
            if used is not None:
                usage[path] = used
                before = self._prev.get(path)
                if before is not None and dt > 0 and used >= before:
                    cpu = min(100.0 * 65536, round((used - before) / 1e6 / dt * 100.0, 2))
            group = (kind, name, path, cpu)
            (services if kind == "systemd" else containers).append(group)
        self._prev = usage
        busiest = heapq.nlargest(self._top, services, key=lambda g: (g[3] or 0.0, g[1]))
        busiest.sort(key=lambda g: g[1])
        chosen = sorted(containers, key=lambda g: (g[0], g[1]))[:MAX_CONTAINERS] + busiest
        return [
            {
                "name": wire_text(name),
                "kind": kind,
                "cpu_percent": cpu,
                "memory_bytes": _read_int(os.path.join(path, "memory.current")),
            }
            for kind, name, path, cpu in chosen
        ]
