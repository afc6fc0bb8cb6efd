"""NVML readings mapped into frames, against a stand-in for nvidia-ml-py (no GPU here)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from runtime.execution.profiler.gpus import ALL_LINKS, NvmlGpus

MIB = 2**20


class FakeNvml:
    """The pynvml calls the reader makes, for two devices: an A100 with 2 NVLink links, and
    a device whose driver cannot read its temperature or PCIe throughput."""

    NVML_TEMPERATURE_GPU = 0
    NVML_PCIE_UTIL_TX_BYTES = 0
    NVML_PCIE_UTIL_RX_BYTES = 1
    NVML_NVLINK_MAX_LINKS = 4
    NVML_FI_DEV_NVLINK_THROUGHPUT_DATA_TX = 138
    NVML_FI_DEV_NVLINK_THROUGHPUT_DATA_RX = 139

    class NVMLError(Exception):
        pass

    def __init__(self) -> None:
        self.nvlink_kib = 0
        self.shut = False

    def nvmlInit(self) -> None:
        pass

    def nvmlShutdown(self) -> None:
        self.shut = True

    def nvmlDeviceGetCount(self) -> int:
        return 2

    def nvmlDeviceGetHandleByIndex(self, index: int) -> int:
        return index

    def nvmlDeviceGetName(self, handle: int) -> bytes:
        return [b"NVIDIA A100-SXM4-40GB", b"Old GPU"][handle]

    def nvmlDeviceGetMemoryInfo(self, handle: int) -> Any:
        return SimpleNamespace(total=40960 * MIB, used=1024 * MIB)

    def nvmlDeviceGetCudaComputeCapability(self, handle: int) -> tuple[int, int]:
        return (8, 0) if handle == 0 else (6, 1)

    def nvmlDeviceGetUtilizationRates(self, handle: int) -> Any:
        return SimpleNamespace(gpu=73, memory=41)

    def nvmlDeviceGetPowerUsage(self, handle: int) -> int:
        return 250_500

    def nvmlDeviceGetTemperature(self, handle: int, sensor: int) -> int:
        if handle == 1:
            raise self.NVMLError("not supported")
        return 61

    def nvmlDeviceGetPcieThroughput(self, handle: int, counter: int) -> int:
        if handle == 1:
            raise self.NVMLError("not supported")
        return 1000 if counter == self.NVML_PCIE_UTIL_TX_BYTES else 2000

    def nvmlDeviceGetNvLinkState(self, handle: int, link: int) -> int:
        if handle == 1:
            raise self.NVMLError("no NVLink")
        return 1 if link < 2 else 0

    def nvmlDeviceGetFieldValues(self, handle: int, fields: list[tuple[int, int]]) -> list[Any]:
        assert all(scope == ALL_LINKS for _, scope in fields)
        self.nvlink_kib += 10_000
        return [
            SimpleNamespace(nvmlReturn=0, value=SimpleNamespace(ullVal=self.nvlink_kib)),
            SimpleNamespace(nvmlReturn=0, value=SimpleNamespace(ullVal=2 * self.nvlink_kib)),
        ]


def test_devices_are_described_as_clients_list_them() -> None:
    reader = NvmlGpus(FakeNvml())
    assert reader.devices() == [
        {
            "device_id": 0,
            "name": "NVIDIA A100-SXM4-40GB",
            "memory_total": 40960,
            "compute_capability": "8.0",
            "emulated": False,
        },
        {
            "device_id": 1,
            "name": "Old GPU",
            "memory_total": 40960,
            "compute_capability": "6.1",
            "emulated": False,
        },
    ]


def test_readings_carry_what_the_device_gives_and_none_for_what_it_cannot() -> None:
    reader = NvmlGpus(FakeNvml())
    a100, old = reader.read(bandwidth=True, nvlink=True)
    assert (a100["utilization_percent"], a100["memory_used"], a100["temperature_c"]) == (73, 1024, 61)
    assert a100["power_watts"] == pytest.approx(250.5)
    assert a100["pcie"] == {"tx_kbps": 1000, "rx_kbps": 2000}
    assert a100["nvlink"]["available"] and a100["nvlink"]["links_active"] == 2
    assert a100["nvlink"]["tx_kib_per_s"] is None  # a rate needs two reads
    assert old["temperature_c"] is None and old["pcie"] == {"tx_kbps": None, "rx_kbps": None}
    assert old["nvlink"] == {
        "available": False,
        "links_active": 0,
        "tx_kib_per_s": None,
        "rx_kib_per_s": None,
    }
    again, _ = reader.read(bandwidth=False, nvlink=True)
    assert (
        again["nvlink"]["tx_kib_per_s"] > 0
        and again["nvlink"]["rx_kib_per_s"] > again["nvlink"]["tx_kib_per_s"]
    )
    assert again["pcie"] is None  # bandwidth profiling off


def test_only_the_pinned_devices_are_read() -> None:
    fake = FakeNvml()
    reader = NvmlGpus(fake, indices=[1])
    assert [d["device_id"] for d in reader.devices()] == [1]
    reader.close()
    assert fake.shut
