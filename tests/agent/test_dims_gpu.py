"""GPUs (issue 13) on recorded inputs: an NVML answer, an amdgpu sysfs tree, and none at all."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import msgspec
import pytest

from statusdash import wire
from statusdash.agent import gpu
from tests.agent.nvml_record import RecordedNvml

SYSFS_AMD = Path(__file__).resolve().parent.parent / "fixtures" / "sysfs_amd"


def test_nvidia_gpus_from_a_recorded_nvml_answer(tmp_path: Path) -> None:
    nvml = RecordedNvml()
    collector = gpu.GpuCollector(sysfs_root=str(tmp_path), nvml_loader=lambda: nvml)
    assert collector.present
    gpus = collector.sample()
    assert gpus == [
        {
            "id": "0",
            "vendor": "nvidia",
            "model": "Tesla T4",
            "percent": 63.0,
            "memory_percent": 25.0,
            "temp_celsius": 61.0,
            "power_watts": 41.2,
        },
        {  # utilisation and power not supported by this board: None, not an error
            "id": "1",
            "vendor": "nvidia",
            "model": "NVIDIA GeForce GT 1030",
            "percent": None,
            "memory_percent": 12.5,
            "temp_celsius": 38.0,
            "power_watts": None,
        },
    ]
    msgspec.convert(gpus, list[wire.Gpu])
    # names and handles were looked up once, at start
    nvml.calls.clear()
    collector.sample()
    assert "name" not in nvml.calls


def test_amd_gpus_from_a_recorded_sysfs_tree() -> None:
    collector = gpu.GpuCollector(sysfs_root=str(SYSFS_AMD), nvml_loader=lambda: None)
    gpus = collector.sample()
    # card0 is amdgpu; card0-DP-1 is a connector and card1 is an Intel card: both left out
    assert gpus == [
        {
            "id": "card0",
            "vendor": "amd",
            "model": "Radeon RX 6800 XT",
            "percent": 37.0,
            "memory_percent": 12.5,
            "temp_celsius": 54.0,
            "power_watts": 45.0,
        }
    ]
    msgspec.convert(gpus, list[wire.Gpu])


def test_a_card_whose_files_vanish_reads_as_none(tmp_path: Path) -> None:
    root = tmp_path / "sys"
    shutil.copytree(SYSFS_AMD, root)
    collector = gpu.GpuCollector(sysfs_root=str(root), nvml_loader=lambda: None)
    dev = root / "class" / "drm" / "card0" / "device"
    (dev / "gpu_busy_percent").write_text("garbage\n")
    (dev / "hwmon" / "hwmon3" / "power1_average").unlink()
    (dev / "hwmon" / "hwmon3" / "temp1_input").write_text("9999999\n")  # past the wire's bound
    (g,) = collector.sample()
    assert (g["percent"], g["temp_celsius"], g["power_watts"]) == (None, None, None)
    assert g["memory_percent"] == 12.5


def test_nvml_that_does_not_start_means_no_gpu_and_one_debug_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, "statusdash.agent")
    nvml = RecordedNvml(init_error="Driver Not Loaded")
    collector = gpu.GpuCollector(sysfs_root=str(tmp_path), nvml_loader=lambda: nvml)
    assert not collector.present and collector.sample() == []
    assert [r.levelno for r in caplog.records] == [logging.DEBUG]


def test_no_driver_means_no_import_and_no_log(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, "statusdash.agent")
    assert gpu.load_nvml([str(tmp_path / "no-driver")]) is None
    collector = gpu.GpuCollector(sysfs_root=str(tmp_path))
    assert collector.sample() == []
    assert caplog.records == []


def test_a_driver_without_the_library_is_one_debug_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    caplog.set_level(logging.DEBUG, "statusdash.agent")
    driver = tmp_path / "version"
    driver.write_text("NVRM version: 550.54\n")
    monkeypatch.setitem(__import__("sys").modules, "pynvml", None)  # not installed
    assert gpu.load_nvml([str(driver)]) is None
    assert [r.levelno for r in caplog.records] == [logging.DEBUG]
