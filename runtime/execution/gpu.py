"""GPUs: discovery with nvidia-ml-py, pinning with CUDA_VISIBLE_DEVICES, emulation.

A GPU worker runs one process per device, each started with CUDA_VISIBLE_DEVICES set to
its device, so CUDA libraries in that process see exactly one GPU (as `cuda:0`). On a
machine without GPUs the pool refuses to start unless told `--emulate-gpus N`: then each
process has an emulated device, tasks run on the CPU, and the task record says so.
"""

from __future__ import annotations

import logging
import os
from dataclasses import asdict, dataclass
from typing import Any

logger = logging.getLogger("grey.gpu")

PIN_VARIABLE = "CUDA_VISIBLE_DEVICES"
EMULATED_VARIABLE = "GREY_EMULATED_GPU"


@dataclass(frozen=True, slots=True)
class GpuDevice:
    index: int
    name: str
    memory_total_mb: int
    memory_used_mb: int = 0
    utilization_percent: int = 0
    emulated: bool = False
    uuid: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def discover() -> list[GpuDevice]:
    """The NVIDIA GPUs of this machine; [] where there is no driver or no device."""
    try:
        import pynvml
    except ImportError:  # pragma: no cover - nvidia-ml-py is a dependency
        return []
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as error:
        logger.info("no NVIDIA driver (%s): no GPUs", error)
        return []
    try:
        devices = []
        for index in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            memory = pynvml.nvmlDeviceGetMemoryInfo(handle)
            try:
                utilization = int(pynvml.nvmlDeviceGetUtilizationRates(handle).gpu)
            except pynvml.NVMLError:
                utilization = 0
            devices.append(
                GpuDevice(
                    index=index,
                    name=_text(pynvml.nvmlDeviceGetName(handle)),
                    memory_total_mb=int(memory.total // 2**20),
                    memory_used_mb=int(memory.used // 2**20),
                    utilization_percent=utilization,
                    uuid=_text(pynvml.nvmlDeviceGetUUID(handle)),
                )
            )
        return devices
    finally:
        pynvml.nvmlShutdown()


def emulated(count: int, memory_mb: int = 16384) -> list[GpuDevice]:
    return [
        GpuDevice(index=i, name="emulated", memory_total_mb=memory_mb, emulated=True) for i in range(count)
    ]


def refresh(device: GpuDevice) -> GpuDevice:
    """The device with its current memory use and utilization (unchanged if emulated)."""
    if device.emulated:
        return device
    for found in discover():
        if found.uuid == device.uuid or (device.uuid is None and found.index == device.index):
            return GpuDevice(**{**found.as_dict(), "index": device.index})
    return device


def pin_environment(device: GpuDevice) -> dict[str, str]:
    """Environment of the process serving `device`: that GPU only."""
    env = {PIN_VARIABLE: str(device.index)}
    if device.emulated:
        env[EMULATED_VARIABLE] = "1"
    return env


def matmul(n: int, seed: int, use_gpu: bool) -> dict[str, Any]:
    """Multiplies two random n-by-n float32 matrices on the pinned GPU (CuPy, else PyTorch) or numpy."""
    import time

    import numpy as np

    rng = np.random.default_rng(seed)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    if use_gpu:
        for backend in (_cupy, _torch):
            result = backend(a, b)
            if result is not None:
                return result
    start = time.perf_counter()
    product = a @ b
    seconds = time.perf_counter() - start
    return _figures("numpy", "cpu", n, float(product.sum()), seconds)


def _figures(backend: str, device: str, n: int, checksum: float, seconds: float) -> dict[str, Any]:
    return {
        "backend": backend,
        "device": device,
        "n": n,
        "checksum": round(checksum, 3),
        "seconds": round(seconds, 6),
        "gflops": round(2 * n**3 / max(seconds, 1e-9) / 1e9, 3),
    }


def _cupy(a: Any, b: Any) -> dict[str, Any] | None:
    try:
        import cupy
    except ImportError:
        return None
    import time

    start = time.perf_counter()
    product = cupy.asarray(a) @ cupy.asarray(b)
    checksum = float(product.sum().get())
    return _figures(
        "cupy", f"cuda:{os.environ.get(PIN_VARIABLE, '0')}", a.shape[0], checksum, time.perf_counter() - start
    )


def _torch(a: Any, b: Any) -> dict[str, Any] | None:
    try:
        import torch
    except ImportError:
        return None
    if not torch.cuda.is_available():
        return None
    import time

    start = time.perf_counter()
    product = torch.from_numpy(a).cuda() @ torch.from_numpy(b).cuda()
    checksum = float(product.sum().item())
    torch.cuda.synchronize()
    return _figures(
        "torch",
        f"cuda:{os.environ.get(PIN_VARIABLE, '0')}",
        a.shape[0],
        checksum,
        time.perf_counter() - start,
    )
