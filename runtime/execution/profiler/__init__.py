"""The profiler's sampler (gswarm's profiler): every worker node samples itself while a
profiling session is active.

A worker pool boots its node's sampler with `start_sampler` (runtime/execution/workers.py)
and stops it with the node; a placement node of the same id in the same process (`grey
worker --node-id`, the in-process `node1` of `grey serve`) calls `start_sampler` with its
GPU devices (`placement_gpus`): the process then runs one sampler for the node, which
reports those GPUs (emulated ones as emulated), and stops it when its last owner stops.
`GREY_PROFILER=off` runs none in the process.

However many nodes a process samples (`grey serve`'s embedded pools and its placement node),
one thread runs their samplers (`SamplingThread`): it reads the active sessions once per
poll for all of them, starts with the first started sampler and ends with the last stop.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Engine

from runtime.execution.gpu import GpuDevice
from runtime.execution.profiler.gpus import ABSENT, EMULATED, HARDWARE, reader_for
from runtime.execution.profiler.sampler import ProfilerSampler, SamplingThread
from runtime.execution.profiler.settings import SamplerSettings
from runtime.store.profiler import ProfilerRepository

__all__ = [
    "ABSENT",
    "EMULATED",
    "HARDWARE",
    "ProfilerSampler",
    "SamplerSettings",
    "SamplingThread",
    "placement_gpus",
    "start_sampler",
]

#: Pools whose nodes run no sampler: a TEE node shares its process with a sampling node.
UNSAMPLED_POOLS = frozenset({"tee"})
MIB = 2**20

_RUNNING: dict[tuple[int, str], ProfilerSampler] = {}
_RUNNING_LOCK = threading.Lock()


def start_sampler(
    engine: Engine,
    node_id: str,
    devices: Sequence[GpuDevice] | None = None,
    *,
    pool: str | None = None,
    settings: SamplerSettings | None = None,
) -> ProfilerSampler | None:
    """The node's sampler on the store `engine`, running; None where the process runs none
    (GREY_PROFILER=off, a tee pool). `devices`: the node's GPUs as it has them (emulated ones
    are reported as emulated); None: whatever NVIDIA GPUs the machine has, if any. A node
    whose sampler already runs in this process shares it (given `devices` replace its view)."""
    settings = settings or SamplerSettings.from_env()
    if not settings.enabled or pool in UNSAMPLED_POOLS:
        return None
    key = (id(engine), node_id)
    with _RUNNING_LOCK:
        running = _RUNNING.get(key)
        if running is not None:
            running.acquire()
    if running is not None:
        if devices is not None:
            running.use_gpus(reader_for(devices))
        return running
    sampler = ProfilerSampler(ProfilerRepository.of(engine), node_id, reader_for(devices), settings)
    sampler._on_stopped = _forget
    with _RUNNING_LOCK:
        _RUNNING[key] = sampler
    return sampler.start()


def _forget(sampler: ProfilerSampler) -> None:
    with _RUNNING_LOCK:
        for key, running in list(_RUNNING.items()):
            if running is sampler:
                del _RUNNING[key]


def placement_gpus(devices: Mapping[str, Any]) -> list[GpuDevice]:
    """A placement node's `gpuN` devices as the sampler reads them: each device's `total`
    bytes and `emulated` flag (runtime/execution/placement/devices.py)."""
    found = []
    for name, device in devices.items():
        if name.startswith("gpu") and name[3:].isdigit():
            emulated = bool(getattr(device, "emulated", False))
            found.append(
                GpuDevice(
                    index=int(name[3:]),
                    name="emulated" if emulated else name,
                    memory_total_mb=int(getattr(device, "total", 0) or 0) // MIB,
                    emulated=emulated,
                )
            )
    return sorted(found, key=lambda device: device.index)
