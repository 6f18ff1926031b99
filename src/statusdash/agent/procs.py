"""Process count and the top processes by CPU and memory, cheaply.

psutil's ``process_iter`` costs ~55 us a process on this machine (three /proc reads each, plus
an identity check); reading ``/proc/<pid>/stat`` ourselves costs ~9 us and gives everything the
ranking needs (name, CPU ticks, start time, RSS). Full names and users are looked up through
psutil for the few winners only, and cached while their process lives. Other platforms use
psutil throughout.
"""

from __future__ import annotations

import hashlib
import heapq
import os
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, NamedTuple

from statusdash.agent.collectors import wire_text
from statusdash.agent.rates import percent

Json = dict[str, Any]
TOP_N = 10  # by CPU and by memory each; the agent's --top-processes (issue 13)
MAX_TOP_N = 50  # the wire's cap on each list


def exe_hash(pid: int, proc_dir: str = "/proc") -> str:
    """The first 8 hex chars of sha256 of a process's executable path, "" when unreadable.

    Tells apart two executables that share a name (``/usr/bin/python3`` against a venv's);
    the path is hashed, never sent, and the command line is never read.
    """
    try:
        path = os.readlink(f"{proc_dir}/{pid}/exe")
    except OSError:  # a kernel thread, another user's process, or gone
        return ""
    path = path.removesuffix(" (deleted)")  # an upgraded binary keeps its identity
    return hashlib.sha256(path.encode("utf-8", "surrogateescape")).hexdigest()[:8]


class ProcStat(NamedTuple):
    pid: int
    name: str
    cpu_s: float  # user + system CPU time so far, seconds
    start: float  # start time: tells a reused pid from the process that had it
    rss: int  # bytes


def parse_stat(pid: int, data: bytes, clock_ticks: int, page_size: int) -> ProcStat | None:
    """A ``/proc/<pid>/stat`` line parsed; ``None`` if it is not one."""
    open_ = data.find(b"(")
    close = data.rfind(b")")  # the name may itself contain parentheses and spaces
    if open_ < 0 or close < open_:
        return None
    fields = data[close + 2 :].split()
    try:
        ticks = int(fields[11]) + int(fields[12])  # utime, stime
        start = float(fields[19])
        rss_pages = max(0, int(fields[21]))
    except (IndexError, ValueError):
        return None
    name = data[open_ + 1 : close].decode("utf-8", "replace")
    return ProcStat(pid, name, ticks / clock_ticks, start, rss_pages * page_size)


class ProcDir:
    """The one walk of ``/proc``: its pid directories, and their files read relative to one
    open directory (``os.open``/``os.read``: a buffered file object costs three times more)."""

    def __init__(self, path: str = "/proc") -> None:
        self._fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)

    def __enter__(self) -> ProcDir:
        return self

    def __exit__(self, *exc: object) -> None:
        os.close(self._fd)

    def pids(self) -> Iterator[int]:
        """The pids listed now; a process may be gone by the time it is read."""
        for entry in os.listdir(self._fd):
            if entry.isdigit():
                yield int(entry)

    def read(self, pid: int, name: str, size: int = 4096) -> bytes:
        """Up to ``size`` bytes of ``/proc/<pid>/<name>``; OSError if the process is gone."""
        fd = os.open(f"{pid}/{name}", os.O_RDONLY, dir_fd=self._fd)
        try:
            return os.read(fd, size)
        finally:
            os.close(fd)


def read_proc(proc_dir: str = "/proc") -> list[ProcStat]:
    """Every process of ``proc_dir``, one read of its ``stat`` each; vanished ones skipped."""
    clock_ticks = os.sysconf("SC_CLK_TCK")
    page_size = os.sysconf("SC_PAGE_SIZE")
    out: list[ProcStat] = []
    with ProcDir(proc_dir) as proc:
        for pid in proc.pids():
            try:
                data = proc.read(pid, "stat")
            except OSError:  # exited since the listing, or hidden from us
                continue
            st = parse_stat(pid, data, clock_ticks, page_size)
            if st is not None:
                out.append(st)
    return out


def read_psutil() -> list[ProcStat]:
    """The same through psutil, for platforms without a Linux ``/proc``."""
    import psutil

    out: list[ProcStat] = []
    for p in psutil.process_iter(["name", "cpu_times", "memory_info", "create_time"]):
        info = p.info
        t, m = info.get("cpu_times"), info.get("memory_info")
        cpu_s = (t.user + t.system) if t else 0.0
        name = info.get("name") or ""
        start = info.get("create_time") or 0.0
        out.append(ProcStat(p.pid, name, cpu_s, start, m.rss if m else 0))
    return out


def _ident_psutil(pid: int) -> tuple[str, str] | None:
    """A process's full name and user (``/proc`` truncates names to 15 bytes)."""
    import psutil

    try:
        p = psutil.Process(pid)
        with p.oneshot():
            name = p.name()
            try:
                user = p.username()
            except (KeyError, psutil.AccessDenied):
                user = ""
        return str(name), str(user)
    except (psutil.Error, OSError):
        return None


def rank(
    prev: Mapping[int, tuple[float, float]] | None,
    cur: Iterable[ProcStat],
    dt: float,
    n: int = TOP_N,
) -> tuple[list[tuple[ProcStat, float]], list[tuple[ProcStat, float]]]:
    """The ``n`` processes using most CPU (% of one core over ``dt``) and most memory.

    A process absent from ``prev`` (new, or a reused pid) counts as 0 % until its next sample;
    idle processes are left out of the CPU list.
    """
    scored: list[tuple[ProcStat, float]] = []
    for st in cur:
        before = prev.get(st.pid) if prev else None
        cpu = 0.0
        if before is not None and before[0] == st.start and dt > 0:
            cpu = max(0.0, (st.cpu_s - before[1]) / dt * 100.0)
        scored.append((st, round(cpu, 2)))
    busy = [s for s in scored if s[1] > 0]
    top_cpu = heapq.nlargest(n, busy, key=lambda s: (s[1], s[0].rss))
    top_mem = heapq.nlargest(n, scored, key=lambda s: s[0].rss)
    return top_cpu, top_mem


class ProcessTracker:
    """Keeps the previous sample so that each call yields CPU percentages since the last."""

    def __init__(
        self,
        reader: Callable[[], list[ProcStat]] | None = None,
        ident: Callable[[int], tuple[str, str] | None] = _ident_psutil,
        n: int = TOP_N,
        exe: Callable[[int], str] = exe_hash,
    ) -> None:
        if not 1 <= n <= MAX_TOP_N:
            raise ValueError(f"top processes must be 1 to {MAX_TOP_N}, not {n}")
        if reader is None:
            reader = read_proc if sys.platform.startswith("linux") else read_psutil
        self._reader = reader
        self._ident = ident
        self._exe = exe
        self._n = n
        self._prev: dict[int, tuple[float, float]] | None = None
        self._prev_t = 0.0
        # (name, user, exe_hash) per (pid, start time): looked up once while the process lives
        self._names: dict[tuple[int, float], tuple[str, str, str]] = {}

    def sample(self, now: float, mem_total: int) -> Json:
        """The ``processes`` section; ``now`` is a monotonic clock reading."""
        cur = self._reader()
        dt = now - self._prev_t if self._prev is not None else 0.0
        top_cpu, top_mem = rank(self._prev, cur, dt, self._n)
        self._prev = {st.pid: (st.start, st.cpu_s) for st in cur}
        self._prev_t = now
        section = {
            "count": len(cur),
            "top_cpu": [self._info(st, c, mem_total) for st, c in top_cpu],
            "top_memory": [self._info(st, c, mem_total) for st, c in top_mem],
        }
        if len(self._names) > 4 * self._n:  # forget processes that left the top lists
            alive = {(st.pid, st.start) for st, _ in top_cpu + top_mem}
            self._names = {k: v for k, v in self._names.items() if k in alive}
        return section

    def _info(self, st: ProcStat, cpu: float, mem_total: int) -> Json:
        key = (st.pid, st.start)
        ident = self._names.get(key)
        if ident is None:
            name, user = self._ident(st.pid) or (st.name, "")
            ident = (name, user, self._exe(st.pid))
            self._names[key] = ident
        name, user, exe = ident
        return {
            "pid": st.pid,
            "name": wire_text(name or st.name),
            "user": wire_text(user),
            "cpu_percent": cpu,
            "memory_percent": percent(st.rss, mem_total),
            "rss": st.rss,
            "exe_hash": exe,
        }
