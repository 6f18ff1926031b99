"""GPUs for the ``gpus`` section (issue 13): NVIDIA through NVML, AMD through sysfs.

NVML comes from ``nvidia-ml-py`` (module ``pynvml``, the ``gpu`` extra), imported only when the
NVIDIA driver is there (``/proc/driver/nvidia`` or ``/dev/nvidiactl``), so a host without one pays
neither the import nor its memory. AMD cards are read from the amdgpu driver's sysfs files
(``/sys/class/drm/card*/device``: ``gpu_busy_percent``, ``mem_info_vram_used|total`` and the
card's hwmon ``temp1_input`` and ``power1_average``). A host with neither reports no GPU, and an
absent library or driver costs one debug line at most. Both sources are injectable (the NVML
module object, the sysfs root), so the tests run on recorded answers.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Sequence
from typing import Any

from statusdash.agent.collectors import wire_text

log = logging.getLogger("statusdash.agent")
Json = dict[str, Any]
NVIDIA_DRIVER_PATHS = ("/proc/driver/nvidia/version", "/dev/nvidiactl")
AMD_VENDOR = "0x1002"
MAX_GPUS = 64  # the wire's cap
_CARD = re.compile(r"card\d+\Z")  # not the connectors (card0-HDMI-A-1)


def load_nvml(driver_paths: Sequence[str] = NVIDIA_DRIVER_PATHS) -> Any | None:
    """The ``pynvml`` module when an NVIDIA driver is present and the library installed."""
    if not any(os.path.exists(p) for p in driver_paths):
        return None
    try:
        import pynvml  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        log.debug("an NVIDIA driver is present but nvidia-ml-py is not installed: no GPU metrics")
        return None
    return pynvml


def _num(x: Any, low: float, high: float, scale: float = 1.0) -> float | None:
    """A reading as a float within the wire's bounds, rounded to 0.1; ``None`` if it is not."""
    try:
        v = float(x) / scale
    except (TypeError, ValueError):
        return None
    if not low <= v <= high:  # also refuses NaN
        return None
    return round(v, 1)


def _mem_percent(used: Any, total: Any) -> float | None:
    try:
        u, t = float(used), float(total)
    except (TypeError, ValueError):
        return None
    return round(min(100.0, max(0.0, 100.0 * u / t)), 1) if t > 0 else None


class _Nvml:
    """The NVIDIA GPUs of an initialised NVML: handles and names looked up once."""

    def __init__(self, nvml: Any) -> None:
        self._nvml = nvml
        self.devices: list[tuple[str, Any, str]] = []
        nvml.nvmlInit()
        for i in range(min(int(nvml.nvmlDeviceGetCount()), MAX_GPUS)):
            handle = nvml.nvmlDeviceGetHandleByIndex(i)
            name = self._try(nvml.nvmlDeviceGetName, handle) or ""
            if isinstance(name, bytes):
                name = name.decode("utf-8", "replace")
            self.devices.append((str(i), handle, wire_text(str(name))))

    @staticmethod
    def _try(fn: Callable[..., Any], *args: Any) -> Any:
        try:
            return fn(*args)
        except Exception:  # NVMLError_NotSupported on many boards, or the GPU fell off the bus
            return None

    def sample(self) -> list[Json]:
        nv, out = self._nvml, []
        for gpu_id, h, model in self.devices:
            util = self._try(nv.nvmlDeviceGetUtilizationRates, h)
            mem = self._try(nv.nvmlDeviceGetMemoryInfo, h)
            temp = self._try(nv.nvmlDeviceGetTemperature, h, getattr(nv, "NVML_TEMPERATURE_GPU", 0))
            power_mw = self._try(nv.nvmlDeviceGetPowerUsage, h)
            out.append(
                {
                    "id": gpu_id,
                    "vendor": "nvidia",
                    "model": model,
                    "percent": _num(getattr(util, "gpu", None), 0, 100),
                    "memory_percent": _mem_percent(
                        getattr(mem, "used", None), getattr(mem, "total", None)
                    ),
                    "temp_celsius": _num(temp, -273.15, 1000),
                    "power_watts": _num(power_mw, 0, 100_000, 1000.0),
                }
            )
        return out


def _read(path: str) -> str | None:
    try:
        with open(path, "rb") as f:
            return f.read(256).decode("ascii", "replace").strip()
    except OSError:
        return None


def amd_cards(sysfs_root: str = "/sys") -> list[tuple[str, str, str, str | None]]:
    """The amdgpu cards: (id, device dir, model, hwmon dir), found once."""
    drm = os.path.join(sysfs_root, "class", "drm")
    try:
        entries = sorted(e for e in os.listdir(drm) if _CARD.match(e))
    except OSError:
        return []
    cards = []
    for card in entries:
        dev = os.path.join(drm, card, "device")
        if _read(os.path.join(dev, "vendor")) != AMD_VENDOR:
            continue
        if not os.path.exists(os.path.join(dev, "gpu_busy_percent")):
            continue
        hwmon: str | None = None
        try:
            names = sorted(os.listdir(os.path.join(dev, "hwmon")))
            hwmon = os.path.join(dev, "hwmon", names[0]) if names else None
        except OSError:
            pass
        model = _read(os.path.join(dev, "product_name")) or ""
        cards.append((card, dev, wire_text(model), hwmon))
    return cards[:MAX_GPUS]


def amd_sample(cards: Sequence[tuple[str, str, str, str | None]]) -> list[Json]:
    """One reading of each amdgpu card; a file that is missing or unreadable reads as None."""
    out = []
    for card, dev, model, hwmon in cards:
        power = temp = None
        if hwmon is not None:
            temp = _num(_read(os.path.join(hwmon, "temp1_input")), -273.15, 1000, 1000.0)
            raw = _read(os.path.join(hwmon, "power1_average"))
            if raw is None:
                raw = _read(os.path.join(hwmon, "power1_input"))
            power = _num(raw, 0, 100_000, 1e6)  # microwatts
        out.append(
            {
                "id": card,
                "vendor": "amd",
                "model": model,
                "percent": _num(_read(os.path.join(dev, "gpu_busy_percent")), 0, 100),
                "memory_percent": _mem_percent(
                    _read(os.path.join(dev, "mem_info_vram_used")),
                    _read(os.path.join(dev, "mem_info_vram_total")),
                ),
                "temp_celsius": temp,
                "power_watts": power,
            }
        )
    return out


class GpuCollector:
    """Every GPU of the host, found once at start; ``sample`` reads their current values."""

    def __init__(
        self, sysfs_root: str = "/sys", nvml_loader: Callable[[], Any | None] = load_nvml
    ) -> None:
        self._nvml: _Nvml | None = None
        module = nvml_loader()
        if module is not None:
            try:
                self._nvml = _Nvml(module)
            except Exception as exc:  # no driver loaded, no permission: not an agent problem
                log.debug("NVML did not start (%s): no NVIDIA GPU metrics", exc)
        self._amd = amd_cards(sysfs_root)

    @property
    def present(self) -> bool:
        return bool(self._amd) or bool(self._nvml and self._nvml.devices)

    def sample(self) -> list[Json]:
        """The ``gpus`` list: NVIDIA ones (id: NVML index) then AMD ones (id: DRM card)."""
        gpus = self._nvml.sample() if self._nvml is not None else []
        return (gpus + amd_sample(self._amd))[:MAX_GPUS]
