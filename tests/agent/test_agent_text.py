"""The agent puts what it reads from the host on the wire with its controls escaped (item 10)."""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

import msgspec

from statusdash import wire
from statusdash.agent import collectors as c
from statusdash.agent.checks.config import parse_services
from statusdash.agent.checks.run import run_checks
from statusdash.agent.procs import ProcessTracker, read_proc
from tests.agent.psutil_records import disk, nic, shwtemp

OSC = "\x1b]0;pwned\x07"
CLEAR = "\x1b[2J\x9b31m"
UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
# /proc/<pid>/stat as the kernel writes it, the comm (in parentheses) holding an escape.
STAT = (
    b"{pid} (\x1b]0;x\x07evil) S 1 1 1 0 -1 4194624 1490 0 0 0 250 50 0 0 20 0 1 0 "
    b"123456 10829824 1024 18446744073709551615 1 1 0 0 0 0 0 4096 134433281 0 0 0 17 1 0 0"
)


def test_a_process_name_from_proc_goes_out_escaped(tmp_path: Path) -> None:
    for pid in (7, 8):
        (tmp_path / str(pid)).mkdir()
        (tmp_path / str(pid) / "stat").write_bytes(STAT.replace(b"{pid}", str(pid).encode()))

    def ident(pid: int) -> tuple[str, str] | None:  # psutil's full name and user, or none
        return ("full" + OSC + "\u202eexe", "user" + CLEAR) if pid == 8 else None

    tracker = ProcessTracker(reader=lambda: read_proc(str(tmp_path)), ident=ident)
    tracker.sample(1.0, 1 << 30)
    section = tracker.sample(2.0, 1 << 30)
    msgspec.convert(section, wire.Processes)
    names = {p["pid"]: (p["name"], p["user"]) for p in section["top_memory"]}
    assert names[7] == (r"\x1b]0;x\x07evil", "")
    assert names[8] == (r"full\x1b]0;pwned\x07\u202eexe", r"user\x1b[2J\x9b31m")


def test_an_os_release_pretty_name_with_osc_is_escaped(tmp_path: Path) -> None:
    release = f'NAME="Debian"\nPRETTY_NAME="Debian{OSC} GNU/Linux 12"\n'
    os_name = c.parse_os_release(release)
    assert os_name == r"Debian\x1b]0;pwned\x07 GNU/Linux 12"
    system = c.system_info("web\x1b", os_name, "6.1" + CLEAR, "x86_64\x00", None, 4)
    msgspec.convert(system, wire.SystemInfo)
    assert system["hostname"] == r"web\x1b" and system["kernel"] == r"6.1\x1b[2J\x9b31m"
    assert system["arch"] == r"x86_64\x00"


def test_mounts_devices_interfaces_and_sensors_are_escaped() -> None:
    mount = "/mnt/" + OSC
    seen: list[str] = []

    def usage(path: str) -> SimpleNamespace:
        seen.append(path)
        return SimpleNamespace(total=100, used=40, free=60)

    [d] = c.disks_section([c.Partition("/dev/x" + CLEAR, mount, "ext4\n")], usage)
    assert seen == [mount]  # the real path is what gets measured
    assert d["mount"] == r"/mnt/\x1b]0;pwned\x07" and d["device"] == r"/dev/x\x1b[2J\x9b31m"
    assert d["fstype"] == r"ext4\x0a"
    io = c.disk_io_section({"sd\x1ba": disk(0, 0)}, {"sd\x1ba": disk(10, 10)}, 1.0)
    net = c.net_section({"et\x1bh0": nic(0, 0)}, {"et\x1bh0": nic(10, 10)}, 1.0)
    assert list(io["devices"]) == [r"sd\x1ba"] and list(net["interfaces"]) == [r"et\x1bh0"]
    assert net["rx_bytes_s"] == 10.0  # counted all the same
    [t] = c.temps_section({"core" + OSC: [shwtemp("l" + CLEAR, 40.0, 80.0, 90.0)]})
    assert t["sensor"] == r"core\x1b]0;pwned\x07" and t["label"] == r"l\x1b[2J\x9b31m"
    for section in (d, io, net, t):
        assert not UNSAFE.search(msgspec.json.encode(section).decode("unicode_escape"))


def test_an_escape_cannot_push_a_name_past_the_wire_cap() -> None:
    name = c.wire_text("\x1b" * 255)
    assert len(name) == 255 and name.startswith(r"\x1b\x1b")


def test_a_service_check_detail_is_escaped_and_keeps_its_lines() -> None:
    config = parse_services(
        {"services": [{"name": "svc", "process": "no-such" + OSC + "\nsecond line"}]}
    )
    [result] = run_checks(config)
    msgspec.convert(result, wire.ServiceCheckResult)
    assert result["detail"] == r"no process named no-such\x1b]0;pwned\x07" + "\nsecond line"
