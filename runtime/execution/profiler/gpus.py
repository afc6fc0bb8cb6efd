"""What a node's sampler reads of its GPUs: NVIDIA devices through nvidia-ml-py, emulated
devices (said so, never passed off as hardware), or none.

Every reader describes its devices once (`devices()`: what `/clients` lists) and reads them
at each sample (`read()`). A figure NVML cannot give on a device (no sensor, no permission,
an older driver) is None, never a guess; an emulated device has no utilization or
temperature to read, so those are None too.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Sequence
from typing import Any, Protocol

from runtime.execution.gpu import GpuDevice

logger = logging.getLogger("grey.profiler")

HARDWARE, EMULATED, ABSENT = "hardware", "emulated", "absent"
#: NVML's scope id that sums a field over every NVLink link of the device.
ALL_LINKS = 0xFFFFFFFF
MIB = 2**20


class GpuReader(Protocol):
    source: str  # HARDWARE | EMULATED | ABSENT

    def devices(self) -> list[dict[str, Any]]: ...

    def read(self, *, bandwidth: bool, nvlink: bool) -> list[dict[str, Any]]: ...

    def close(self) -> None: ...


class NoGpus:
    """A machine without GPUs (or without an NVIDIA driver): frames say `absent`."""

    source = ABSENT

    def devices(self) -> list[dict[str, Any]]:
        return []

    def read(self, *, bandwidth: bool, nvlink: bool) -> list[dict[str, Any]]:
        return []

    def close(self) -> None:
        return None


class EmulatedGpus:
    """The node's emulated GPUs (`--emulate-gpus`, or the placement node's `gpuN` without a
    GPU): their declared capacity, flagged `emulated`; nothing is measured."""

    source = EMULATED

    def __init__(self, devices: Sequence[GpuDevice]) -> None:
        self._devices = list(devices)

    def devices(self) -> list[dict[str, Any]]:
        return [
            {
                "device_id": device.index,
                "name": device.name,
                "memory_total": device.memory_total_mb,
                "compute_capability": None,
                "emulated": True,
            }
            for device in self._devices
        ]

    def read(self, *, bandwidth: bool, nvlink: bool) -> list[dict[str, Any]]:
        return [
            {
                "device_id": device.index,
                "name": device.name,
                "emulated": True,
                "utilization_percent": None,
                "memory_utilization_percent": None,
                "memory_used": None,
                "memory_total": device.memory_total_mb,
                "temperature_c": None,
                "power_watts": None,
                "pcie": None,
                "nvlink": None,
            }
            for device in self._devices
        ]

    def close(self) -> None:
        return None


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class NvmlGpus:
    """NVIDIA GPUs read through NVML (nvidia-ml-py), all of the machine's or the given indices.

    `nvml` is the pynvml module (a test passes a fake one). NVLink counters are cumulative
    KiB, so their rates come from the difference between two reads.
    """

    source = HARDWARE

    def __init__(self, nvml: Any, indices: Sequence[int] | None = None) -> None:
        self._nvml = nvml
        nvml.nvmlInit()
        count = int(nvml.nvmlDeviceGetCount())
        chosen = list(range(count)) if indices is None else [i for i in indices if 0 <= i < count]
        self._handles = {index: nvml.nvmlDeviceGetHandleByIndex(index) for index in chosen}
        self._nvlink_before: dict[int, tuple[float, int, int]] = {}
        self._described = [self._describe(index, handle) for index, handle in self._handles.items()]

    @classmethod
    def open(cls, indices: Sequence[int] | None = None) -> NvmlGpus | None:
        """This machine's NVML, or None where there is no driver or no device."""
        try:
            import pynvml
        except ImportError:  # pragma: no cover - nvidia-ml-py is a dependency
            return None
        try:
            reader = cls(pynvml, indices)
        except pynvml.NVMLError as error:
            logger.info("no NVIDIA driver (%s): the profiler samples no GPU", error)
            return None
        if not reader._handles:
            reader.close()
            return None
        return reader

    def _call(self, name: str, *args: Any) -> Any:
        """An NVML query; None when the device or driver does not support it."""
        try:
            return getattr(self._nvml, name)(*args)
        except self._nvml.NVMLError:
            return None

    def _describe(self, index: int, handle: Any) -> dict[str, Any]:
        memory = self._call("nvmlDeviceGetMemoryInfo", handle)
        capability = self._call("nvmlDeviceGetCudaComputeCapability", handle)
        return {
            "device_id": index,
            "name": _text(self._call("nvmlDeviceGetName", handle) or "unknown"),
            "memory_total": int(memory.total // MIB) if memory is not None else None,
            "compute_capability": f"{capability[0]}.{capability[1]}" if capability else None,
            "emulated": False,
        }

    def devices(self) -> list[dict[str, Any]]:
        return [dict(device) for device in self._described]

    def read(self, *, bandwidth: bool, nvlink: bool) -> list[dict[str, Any]]:
        nvml = self._nvml
        frames = []
        for described, (index, handle) in zip(self._described, self._handles.items(), strict=True):
            memory = self._call("nvmlDeviceGetMemoryInfo", handle)
            rates = self._call("nvmlDeviceGetUtilizationRates", handle)
            power = self._call("nvmlDeviceGetPowerUsage", handle)  # milliwatts
            frame: dict[str, Any] = {
                "device_id": index,
                "name": described["name"],
                "emulated": False,
                "utilization_percent": int(rates.gpu) if rates is not None else None,
                "memory_utilization_percent": int(rates.memory) if rates is not None else None,
                "memory_used": int(memory.used // MIB) if memory is not None else None,
                "memory_total": int(memory.total // MIB) if memory is not None else None,
                "temperature_c": self._call("nvmlDeviceGetTemperature", handle, nvml.NVML_TEMPERATURE_GPU),
                "power_watts": round(power / 1000.0, 3) if power is not None else None,
                "pcie": None,
                "nvlink": None,
            }
            if bandwidth:
                frame["pcie"] = {
                    "tx_kbps": self._call(
                        "nvmlDeviceGetPcieThroughput", handle, nvml.NVML_PCIE_UTIL_TX_BYTES
                    ),
                    "rx_kbps": self._call(
                        "nvmlDeviceGetPcieThroughput", handle, nvml.NVML_PCIE_UTIL_RX_BYTES
                    ),
                }
            if nvlink:
                frame["nvlink"] = self._nvlink(index, handle)
            frames.append(frame)
        return frames

    def _nvlink(self, index: int, handle: Any) -> dict[str, Any]:
        """Active links and TX/RX throughput (KiB/s since the previous read); `available`
        False on a device without NVLink."""
        nvml = self._nvml
        active = 0
        for link in range(int(nvml.NVML_NVLINK_MAX_LINKS)):
            state = self._call("nvmlDeviceGetNvLinkState", handle, link)
            if state is None:
                break
            active += int(bool(state))
        values = self._call(
            "nvmlDeviceGetFieldValues",
            handle,
            [
                (nvml.NVML_FI_DEV_NVLINK_THROUGHPUT_DATA_TX, ALL_LINKS),
                (nvml.NVML_FI_DEV_NVLINK_THROUGHPUT_DATA_RX, ALL_LINKS),
            ],
        )
        if active == 0 or values is None or any(value.nvmlReturn != 0 for value in values):
            return {
                "available": active > 0,
                "links_active": active,
                "tx_kib_per_s": None,
                "rx_kib_per_s": None,
            }
        now, tx, rx = time.monotonic(), int(values[0].value.ullVal), int(values[1].value.ullVal)
        before = self._nvlink_before.get(index)
        self._nvlink_before[index] = (now, tx, rx)
        tx_rate = rx_rate = None
        if before is not None and now > before[0]:
            tx_rate = round((tx - before[1]) / (now - before[0]), 1)
            rx_rate = round((rx - before[2]) / (now - before[0]), 1)
        return {"available": True, "links_active": active, "tx_kib_per_s": tx_rate, "rx_kib_per_s": rx_rate}

    def close(self) -> None:
        with contextlib.suppress(self._nvml.NVMLError):
            self._nvml.nvmlShutdown()


def reader_for(devices: Sequence[GpuDevice] | None) -> GpuReader:
    """The reader of a node's GPUs: `devices` as the node has them (emulated ones stay
    emulated; hardware ones are read by their index), or the machine's own when None."""
    if devices is not None:
        emulated = [device for device in devices if device.emulated]
        if emulated:
            return EmulatedGpus(emulated)
        if not devices:
            return NoGpus()
        return NvmlGpus.open([device.index for device in devices]) or NoGpus()
    return NvmlGpus.open() or NoGpus()
