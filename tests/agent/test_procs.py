from __future__ import annotations

import os
from pathlib import Path

import msgspec
import pytest

from statusdash.agent.procs import (
    ProcDir,
    ProcessTracker,
    ProcStat,
    parse_stat,
    rank,
    read_proc,
)
from statusdash.wire import Processes

# /proc/<pid>/stat lines as the kernel writes them (fields 14/15 utime/stime, 22 start, 24 rss)
STAT = (
    b"4242 (tmux: server) S 1 4242 4242 0 -1 4194624 1490 0 0 0 250 50 0 0 20 0 1 0 "
    b"123456 10829824 1024 18446744073709551615 1 1 0 0 0 0 0 4096 134433281 0 0 0 17 1 0 0"
)


def test_parse_stat_with_spaces_and_parentheses_in_the_name() -> None:
    st = parse_stat(4242, STAT, clock_ticks=100, page_size=4096)
    assert st == ProcStat(4242, "tmux: server", 3.0, 123456.0, 1024 * 4096)
    tricky = STAT.replace(b"(tmux: server)", b"(a) b (c)")
    st2 = parse_stat(1, tricky, 100, 4096)
    assert st2 is not None and st2.name == "a) b (c"


def test_parse_stat_refuses_garbage() -> None:
    assert parse_stat(1, b"", 100, 4096) is None
    assert parse_stat(1, b"1 (x) S 1 2", 100, 4096) is None
    assert parse_stat(1, b"no parens here", 100, 4096) is None


def test_rank_by_cpu_since_the_last_sample_and_by_memory() -> None:
    prev = {1: (10.0, 5.0), 2: (20.0, 1.0), 3: (30.0, 0.0)}
    cur = [
        ProcStat(1, "a", 6.0, 10.0, 100),  # +1 s of CPU in 2 s: 50 %
        ProcStat(2, "b", 4.0, 20.0, 300),  # +3 s in 2 s: 150 % (two cores)
        ProcStat(3, "c", 50.0, 99.0, 200),  # pid reused (other start time): 0 %, not 2500 %
        ProcStat(4, "d", 9.0, 40.0, 50),  # new: 0 % until next time
    ]
    top_cpu, top_mem = rank(prev, cur, 2.0, n=5)
    assert [(s.pid, c) for s, c in top_cpu] == [(2, 150.0), (1, 50.0)]
    assert [s.pid for s, _ in top_mem] == [2, 3, 1, 4]
    assert len(rank(prev, cur, 2.0, n=2)[1]) == 2


def test_tracker_names_the_winners_once_and_validates() -> None:
    name = "truncated-name-"  # /proc cuts names at 15 bytes
    samples = [
        [ProcStat(1, "init", 1.0, 1.0, 10 << 20), ProcStat(7, name, 0.0, 5.0, 1 << 20)],
        [ProcStat(1, "init", 1.5, 1.0, 10 << 20), ProcStat(7, name, 2.0, 5.0, 1 << 20)],
    ]
    looked_up: list[int] = []

    def ident(pid: int) -> tuple[str, str] | None:
        looked_up.append(pid)
        return ("truncated-name-and-more", "www-data") if pid == 7 else None

    tracker = ProcessTracker(reader=lambda: samples.pop(0), ident=ident)
    tracker.sample(100.0, 1 << 30)
    section = tracker.sample(101.0, 1 << 30)
    msgspec.convert(section, Processes)
    assert section["count"] == 2
    assert [(p["pid"], p["cpu_percent"]) for p in section["top_cpu"]] == [(7, 200.0), (1, 50.0)]
    top7 = section["top_cpu"][0]
    assert top7["name"] == "truncated-name-and-more" and top7["user"] == "www-data"
    assert section["top_memory"][0]["name"] == "init"  # no psutil answer: the /proc name
    assert section["top_memory"][0]["memory_percent"] == round(100 * 10 / 1024, 2)
    assert looked_up == [1, 7]  # once each: cached while the process lives


def test_read_proc_sees_this_process() -> None:
    procs = {p.pid: p for p in read_proc()}
    me = procs[os.getpid()]
    assert me.rss > 0 and me.cpu_s > 0 and me.name.startswith(("python", "pytest"))
    assert len(procs) > 1


def test_the_one_proc_walker_lists_pids_and_reads_their_files(tmp_path: Path) -> None:
    for pid, comm in (("7", b"nginx\n"), ("42", b"sshd\n")):
        (tmp_path / pid).mkdir()
        (tmp_path / pid / "comm").write_bytes(comm)
        (tmp_path / pid / "stat").write_bytes(STAT.replace(b"4242 (", pid.encode() + b" (", 1))
    (tmp_path / "self").mkdir()  # not a pid
    (tmp_path / "meminfo").write_bytes(b"MemTotal: 1 kB\n")
    with ProcDir(str(tmp_path)) as proc:
        assert sorted(proc.pids()) == [7, 42]
        assert proc.read(7, "comm") == b"nginx\n"
        assert proc.read(42, "comm", 3) == b"ssh"
        with pytest.raises(OSError):
            proc.read(99, "comm")  # a process that exited since the listing
    assert sorted(st.pid for st in read_proc(str(tmp_path))) == [7, 42]
    with ProcDir() as real:
        assert os.getpid() in set(real.pids())
        assert real.read(os.getpid(), "comm")
