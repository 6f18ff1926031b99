"""Collectors on recorded psutil values; every section is checked against the wire schema."""

from __future__ import annotations

import errno
from typing import Any

import msgspec
import pytest

from statusdash.agent import collectors as c
from statusdash.agent.rates import WRAP32
from statusdash.wire import (
    CpuStats,
    Disk,
    DiskIO,
    LoadAvg,
    Memory,
    Net,
    Swap,
    SystemInfo,
    Temperature,
)
from tests.agent.psutil_records import (
    cpu,
    disk,
    nic,
    sdiskpart,
    sdiskusage,
    shwtemp,
    sswap,
    svmem,
)

GiB = 1 << 30


# --- cpu --------------------------------------------------------------------------------------
def test_cpu_total_per_core_iowait_and_steal() -> None:
    prev = [cpu(100, 50, 800, 10, 0), cpu(200, 0, 700, 0, 10)]
    # core 0: +30 user +10 system +50 idle +10 iowait = 100 -> busy 40 %, iowait 10 %
    # core 1: +80 user +20 idle = 100 -> busy 80 %, steal 0 %
    cur = [cpu(130, 60, 850, 20, 0), cpu(280, 0, 720, 0, 10)]
    section = c.cpu_section(prev, cur)
    assert section is not None
    msgspec.convert(section, CpuStats)
    assert section["per_core"] == [40.0, 80.0]
    assert section["percent"] == 60.0
    assert section["iowait"] == 5.0
    assert section["steal"] == 0.0


def test_cpu_steal_and_guest_time() -> None:
    # guest time is already inside user on Linux: it must not count twice in the total
    section = c.cpu_section([cpu(0, 0, 0)], [cpu(50, 0, 25, steal=25, guest=40)])
    assert section is not None
    assert section["steal"] == 25.0
    assert section["percent"] == 75.0  # user 50 + steal 25 of 100


def test_cpu_first_sample_has_no_figures_and_idle_interval_is_zero() -> None:
    assert c.cpu_section(None, [cpu(1, 1, 1)]) is None
    same = [cpu(1, 1, 1)]
    section = c.cpu_section(same, same)
    assert section is not None and section["percent"] == 0.0


def test_cpu_counters_that_went_back_do_not_go_negative() -> None:
    section = c.cpu_section([cpu(100, 100, 100)], [cpu(50, 120, 110)])
    assert section is not None
    msgspec.convert(section, CpuStats)
    assert 0 <= section["percent"] <= 100


def test_cpu_taken_offline_between_samples() -> None:
    section = c.cpu_section([cpu(0, 0, 0)] * 4, [cpu(10, 0, 10)] * 3)
    assert section is not None and len(section["per_core"]) == 3


# --- load, memory, swap, system -----------------------------------------------------------------
def test_load_memory_and_swap() -> None:
    load = c.load_section((0.5, 0.25, 0.125))
    assert msgspec.convert(load, LoadAvg).m1 == 0.5
    vm = svmem(8 * GiB, 6 * GiB, 25.0, 2 * GiB, 5 * GiB, 0, 0, 0, 0, 0, 0)
    mem = c.memory_section(vm)
    msgspec.convert(mem, Memory)
    assert mem["percent"] == 25.0 and mem["available"] == 6 * GiB
    sw = c.swap_section(sswap(4 * GiB, GiB, 3 * GiB, 25.0, 0, 0))
    assert msgspec.convert(sw, Swap).percent == 25.0


def test_no_swap_reports_zeros() -> None:
    sw = c.swap_section(sswap(0, 0, 0, 0.0, 0, 0))
    assert sw == {"percent": 0.0, "total": 0, "used": 0}
    msgspec.convert(sw, Swap)


def test_os_release_and_system_info() -> None:
    text = 'NAME="Debian GNU/Linux"\nVERSION="12 (bookworm)"\nPRETTY_NAME="Debian GNU/Linux 12"\n'
    assert c.parse_os_release(text) == "Debian GNU/Linux 12"
    assert c.parse_os_release("NAME=Alpine\nVERSION='3.20'\n# x\n") == "Alpine 3.20"
    assert c.parse_os_release("") == ""
    info = c.system_info("web-1", "Debian GNU/Linux 12", "6.1.0", "x86_64", 1.7e9, 0)
    model = msgspec.convert(info, SystemInfo)
    assert model.cpu_count == 1 and model.boot_time is not None


# --- disks ------------------------------------------------------------------------------------
PARTITIONS = [
    sdiskpart("/dev/sda1", "/", "ext4", "rw"),
    sdiskpart("/dev/sda2", "/home", "xfs", "rw"),
    sdiskpart("/dev/sda1", "/var/lib/docker/bind", "ext4", "rw"),  # bind mount of /
    sdiskpart("tmpfs", "/run", "tmpfs", "rw"),
    sdiskpart("overlay", "/var/lib/docker/overlay2/x/merged", "overlay", "rw"),
    sdiskpart("/dev/loop3", "/snap/core/1", "squashfs", "ro"),
    sdiskpart("proc", "/proc", "proc", "rw"),
    sdiskpart("sysfs", "/sys", "sysfs", "rw"),
    sdiskpart("cgroup2", "/sys/fs/cgroup", "cgroup2", "rw"),
    sdiskpart("udev", "/dev", "devtmpfs", "rw"),
    sdiskpart("gvfsd-fuse", "/run/user/1000/gvfs", "fuse.gvfsd-fuse", "rw"),
    sdiskpart("/dev/sdb1", "/mnt/usb", "fuseblk", "rw"),
    sdiskpart("nas:/export", "/mnt/nas", "nfs4", "rw"),
]


def test_real_partitions_leave_pseudo_filesystems_and_bind_mounts_out() -> None:
    mounts = [p.mountpoint for p in c.real_partitions(PARTITIONS)]
    assert mounts == ["/", "/home", "/mnt/usb"]


def test_extra_mounts_are_added_even_when_pseudo_or_not_a_mount() -> None:
    parts = c.real_partitions(PARTITIONS, extra_mounts=["/run/", "/mnt/nas", "/srv/data"])
    mounts = [p.mountpoint for p in parts]
    assert mounts == ["/", "/home", "/mnt/nas", "/mnt/usb", "/run", "/srv/data"]


def usage_of(table: dict[str, Any]) -> Any:
    def usage(mount: str) -> Any:
        value = table[mount]
        if isinstance(value, Exception):
            raise value
        return value

    return usage


def test_disk_that_vanishes_between_listing_and_usage_is_skipped() -> None:
    parts = c.real_partitions(PARTITIONS)
    table = {
        "/": sdiskusage(100 * GiB, 40 * GiB, 55 * GiB, 42.1),
        "/home": FileNotFoundError(errno.ENOENT, "gone", "/home"),
        "/mnt/usb": PermissionError(errno.EACCES, "denied"),
    }
    disks = c.disks_section(parts, usage_of(table))
    assert [d["mount"] for d in disks] == ["/"]
    d = msgspec.convert(disks[0], Disk)
    # as df: used / (used + free), the root reserve left out
    assert d.percent == round(100 * 40 / 95, 2)


def test_zero_sized_filesystem_is_skipped() -> None:
    parts = [c.Partition("/dev/x", "/x", "ext4")]
    assert c.disks_section(parts, usage_of({"/x": sdiskusage(0, 0, 0, 0.0)})) == []


# --- disk io ----------------------------------------------------------------------------------
BLOCK = frozenset({"sda", "nvme0n1", "dm-0", "loop0", "zram0"})


def test_disk_io_first_sample_carries_no_rate() -> None:
    section = c.disk_io_section(None, {"sda": disk(1, 1)}, 10.0, BLOCK)
    assert section == {"read_bytes_s": None, "write_bytes_s": None, "devices": {}}
    msgspec.convert(section, DiskIO)


def test_disk_io_rates_whole_disks_only_and_no_double_count() -> None:
    prev = {
        "sda": disk(0, 0, 0, 0),
        "sda1": disk(0, 0),
        "nvme0n1": disk(1000, 0),
        "dm-0": disk(0, 0),
        "loop0": disk(0, 0),
        "zram0": disk(0, 0),
    }
    cur = {
        "sda": disk(10_000, 20_000, 10, 20),
        "sda1": disk(10_000, 20_000),
        "nvme0n1": disk(6000, 0),
        "dm-0": disk(10_000, 20_000),  # LVM on sda: the same bytes again
        "loop0": disk(999, 999),
        "zram0": disk(999, 999),
    }
    section = c.disk_io_section(prev, cur, 10.0, BLOCK)
    msgspec.convert(section, DiskIO)
    assert set(section["devices"]) == {"sda", "nvme0n1", "dm-0"}
    assert section["devices"]["sda"] == {
        "read_bytes_s": 1000.0,
        "write_bytes_s": 2000.0,
        "read_ops_s": 1.0,
        "write_ops_s": 2.0,
        "busy_percent": 0.0,  # the recorded busy_time did not move
    }
    assert section["read_bytes_s"] == 1500.0  # sda + nvme0n1, not dm-0
    assert section["write_bytes_s"] == 2000.0


def test_disk_io_counter_wrap_and_vanished_or_new_disk() -> None:
    prev = {"sda": disk(WRAP32 - 500, 0), "sdb": disk(5, 5)}  # sdb unplugged
    cur = {"sda": disk(500, 0), "sdc": disk(7, 7)}  # sdc plugged in: no rate yet
    section = c.disk_io_section(prev, cur, 1.0, frozenset({"sda", "sdb", "sdc"}))
    assert list(section["devices"]) == ["sda"]
    assert section["read_bytes_s"] == 1000.0


def test_disk_io_reset_to_absurd_value_is_dropped_not_reported() -> None:
    prev = {"sda": disk(0, 0)}
    cur = {"sda": disk(10**14, 0)}  # 100 TB in one second: a glitch
    section = c.disk_io_section(prev, cur, 1.0, frozenset({"sda"}))
    assert section["devices"] == {} and section["read_bytes_s"] == 0.0


# --- network ----------------------------------------------------------------------------------
def test_net_first_sample_carries_no_rate() -> None:
    section = c.net_section(None, {"eth0": nic(1, 1)}, 10.0)
    assert section["rx_bytes_s"] is None and section["interfaces"] == {}
    msgspec.convert(section, Net)


def test_net_totals_over_physical_nics_loopback_and_veth_out() -> None:
    prev = {
        "lo": nic(0, 0),
        "eth0": nic(0, 0),
        "docker0": nic(0, 0),
        "veth12ab": nic(0, 0),
        "wg0": nic(0, 0),
    }
    cur = {
        "lo": nic(10**6, 10**6),
        "eth0": nic(20_000, 10_000, 20, 10, err=2, drop=4),
        "docker0": nic(5_000, 5_000),
        "veth12ab": nic(5_000, 5_000),
        "wg0": nic(8_000, 8_000),
    }
    section = c.net_section(prev, cur, 2.0, physical=frozenset({"eth0"}))
    model = msgspec.convert(section, Net)
    assert set(section["interfaces"]) == {"eth0", "docker0", "wg0"}
    assert model.rx_bytes_s == 10_000.0 and model.tx_bytes_s == 5_000.0
    assert section["interfaces"]["eth0"]["errors_s"] == 1.0
    assert section["interfaces"]["eth0"]["drops_s"] == 2.0


def test_net_in_a_container_sums_every_interface_but_lo() -> None:
    prev = {"lo": nic(0, 0), "eth0": nic(0, 0), "eth1": nic(0, 0)}
    cur = {"lo": nic(99, 99), "eth0": nic(100, 0), "eth1": nic(50, 0)}
    section = c.net_section(prev, cur, 1.0, physical=frozenset())
    assert section["rx_bytes_s"] == 150.0


def test_nic_that_appears_has_no_rate_until_its_second_sample() -> None:
    prev = {"eth0": nic(0, 0)}
    cur = {"eth0": nic(1000, 0), "wlan0": nic(10**9, 10**9)}
    section = c.net_section(prev, cur, 1.0, physical=frozenset({"eth0", "wlan0"}))
    assert list(section["interfaces"]) == ["eth0"]
    assert section["rx_bytes_s"] == 1000.0
    later = c.net_section(cur, {"eth0": nic(1000, 0), "wlan0": nic(10**9 + 10, 10**9)}, 1.0)
    assert later["interfaces"]["wlan0"]["rx_bytes_s"] == 10.0


def test_net_counter_wrap_and_reset() -> None:
    prev = {"eth0": nic(WRAP32 - 10, 100), "eth1": nic(5 * 10**12, 0)}
    cur = {"eth0": nic(30, 200), "eth1": nic(100, 0)}  # eth0 wrapped, eth1 was reset
    section = c.net_section(prev, cur, 1.0)
    msgspec.convert(section, Net)
    assert section["interfaces"]["eth0"]["rx_bytes_s"] == 40.0
    assert section["interfaces"]["eth1"]["rx_bytes_s"] == 100.0
    assert all(v >= 0 for i in section["interfaces"].values() for v in i.values())


# --- temperatures -----------------------------------------------------------------------------
def test_no_sensors() -> None:
    assert c.temps_section({}) == []
    assert c.temps_section(None) == []


def test_temps_keep_sane_readings_only() -> None:
    sensors = {
        "coretemp": [
            shwtemp("Package id 0", 55.0, 80.0, 100.0),
            shwtemp("Core 0", 51.5, 0.0, None),  # 0 = no threshold
            shwtemp("Core 1", float("nan"), 80.0, 100.0),
        ],
        "acpitz": [shwtemp("", 1e6, None, None)],
        "nvme": [shwtemp("Composite", 38.85, 84.85, 5000.0)],
    }
    temps = c.temps_section(sensors)
    for t in temps:
        msgspec.convert(t, Temperature)
    assert [(t["sensor"], t["label"]) for t in temps] == [
        ("coretemp", "Package id 0"),
        ("coretemp", "Core 0"),
        ("nvme", "Composite"),
    ]
    assert temps[1]["high"] is None
    assert temps[2]["critical"] is None and temps[2]["current"] == 38.9


@pytest.mark.parametrize("n", [70])
def test_temps_are_capped(n: int) -> None:
    temps = c.temps_section({"hwmon": [shwtemp(f"t{i}", 40.0, None, None) for i in range(n)]})
    assert len(temps) == 64
