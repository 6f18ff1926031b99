"""A recorded NVML answer at the machine's edge: a stand-in for the ``pynvml`` module.

It answers the calls the agent makes from ``tests/fixtures/nvml/*.json`` (values as NVML
returns them); a ``null`` reading raises ``NVMLError``, as ``NVMLError_NotSupported`` does.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "nvml"


class NVMLError(Exception):
    pass


class RecordedNvml:
    NVML_TEMPERATURE_GPU = 0

    def __init__(self, name: str = "two_gpus.json", init_error: str | None = None) -> None:
        self.NVMLError = NVMLError
        self._devices: list[dict[str, Any]] = json.loads((FIXTURES / name).read_text())["devices"]
        self._init_error = init_error
        self.calls: list[str] = []

    def _get(self, handle: int, key: str) -> Any:
        self.calls.append(key)
        value = self._devices[handle][key]
        if value is None:
            raise NVMLError("Not Supported")
        return value

    def nvmlInit(self) -> None:
        if self._init_error is not None:
            raise NVMLError(self._init_error)

    def nvmlDeviceGetCount(self) -> int:
        return len(self._devices)

    def nvmlDeviceGetHandleByIndex(self, i: int) -> int:
        return i

    def nvmlDeviceGetName(self, h: int) -> str:
        return str(self._get(h, "name"))

    def nvmlDeviceGetUtilizationRates(self, h: int) -> Any:
        return SimpleNamespace(**self._get(h, "utilization"))

    def nvmlDeviceGetMemoryInfo(self, h: int) -> Any:
        return SimpleNamespace(**self._get(h, "memory"))

    def nvmlDeviceGetTemperature(self, h: int, sensor: int) -> int:
        assert sensor == self.NVML_TEMPERATURE_GPU
        return int(self._get(h, "temperature"))

    def nvmlDeviceGetPowerUsage(self, h: int) -> int:
        return int(self._get(h, "power_mw"))
