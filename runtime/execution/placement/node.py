"""A placement node: the devices of one worker process, its byte server and its heartbeat.

One per process per node id (`grey worker --node-id node1`, or the in-process `node1` of
`grey serve`); task functions find it with `local_node(ctx.node_id)`. Its DRAM and GPU
bytes live in this process, so on start it reconciles the store with what it really holds:
volatile locations of an earlier process of the node are removed (those bytes died with
it), partial files of interrupted copies are deleted, disk locations whose file is gone
are removed and files no location names are deleted.
"""

from __future__ import annotations

import logging
import os
import secrets
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from runtime.execution.nodes import hostname
from runtime.execution.placement.devices import (
    Device,
    DiskDevice,
    Key,
    MemoryDevice,
    TorchGpuDevice,
    host_buffer,
    map_resident,
    open_sequential,
    real_gpu_count,
)
from runtime.execution.placement.errors import DeviceNotFound
from runtime.execution.placement.names import is_volatile
from runtime.execution.placement.settings import PlacementSettings
from runtime.store.coltypes import utc_now
from runtime.store.placement import PlacementNodeRecord, PlacementRepository

logger = logging.getLogger("grey.placement")

HEARTBEAT_SECONDS = 2.0
PROBE_BYTES = 64 * 1024 * 1024
#: The route a disk -> DRAM load records its bytes/s under (runtime/execution/placement/operations.py).
DISK_TO_DRAM = "disk->dram"

_NODES: dict[str, PlacementNode] = {}
_NODES_LOCK = threading.Lock()


def local_node(node_id: str) -> PlacementNode | None:
    """The placement node of that id running in this process, if any."""
    return _NODES.get(node_id)


def build_devices(node_id: str, settings: PlacementSettings) -> dict[str, Device]:
    devices: dict[str, Device] = {
        "disk": DiskDevice(settings.disk_dir(node_id), settings.disk_bytes, settings.block_bytes),
        "dram": MemoryDevice("dram", settings.dram_bytes),
    }
    real = real_gpu_count()
    if real:
        for index in range(real):
            devices[f"gpu{index}"] = TorchGpuDevice(index, None, settings.block_bytes)
    else:
        for index in range(settings.emulated_gpus):
            devices[f"gpu{index}"] = MemoryDevice(f"gpu{index}", settings.gpu_bytes, emulated=True)
    return devices


class PlacementNode:
    def __init__(self, node_id: str, repo: PlacementRepository, settings: PlacementSettings) -> None:
        self.node_id, self.repo, self.settings = node_id, repo, settings
        self.boot_id = uuid.uuid4().hex
        self.token = secrets.token_urlsafe(24)
        self.devices = build_devices(node_id, settings)
        self.bandwidth: dict[str, float] = {}
        self.address = ""
        self.server: Any = None
        self._stop = threading.Event()
        self._beat: threading.Thread | None = None
        self.started_at = utc_now()

    # -- devices ----------------------------------------------------------------------------

    def device(self, name: str) -> Device:
        device = self.devices.get(name)
        if device is None:
            raise DeviceNotFound(
                f"node {self.node_id} has no device {name!r}; it has {', '.join(self.devices)}",
                node=self.node_id,
                device=name,
            )
        return device

    def disk(self) -> DiskDevice:
        device = self.devices["disk"]
        assert isinstance(device, DiskDevice)
        return device

    def describe(self) -> list[dict[str, Any]]:
        return [device.describe() for device in self.devices.values()]

    def holder(self, device: str) -> str | None:
        """What a location row names as holder: this process, for volatile devices."""
        return self.boot_id if is_volatile(device) else None

    def record_bandwidth(self, route: str, bytes_per_second: float) -> None:
        """Achieved bytes/s of a route (`disk->dram`, `download`, ...), smoothed."""
        old = self.bandwidth.get(route)
        self.bandwidth[route] = bytes_per_second if old is None else 0.5 * old + 0.5 * bytes_per_second

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self, serve: Callable[[PlacementNode], Any]) -> PlacementNode:
        """Reconciles, starts its byte server (`serve(node)`: an object with `url`, `stop()`),
        registers the node and starts its heartbeat."""
        self.reconcile()
        self.server = serve(self)
        self.address = self.server.url
        self.repo.upsert_node(
            PlacementNodeRecord(
                node_id=self.node_id,
                hostname=hostname(),
                address=self.address,
                token=self.token,
                boot_id=self.boot_id,
                devices=self.describe(),
                bandwidth=self.bandwidth,
                started_at=self.started_at,
                heartbeat_at=utc_now(),
                status="online",
            )
        )
        with _NODES_LOCK:
            _NODES[self.node_id] = self
        self._beat = threading.Thread(target=self._beats, name=f"grey-placement-{self.node_id}", daemon=True)
        self._beat.start()
        logger.info(
            "placement node %s: devices %s, bytes at %s", self.node_id, ", ".join(self.devices), self.address
        )
        return self

    def stop(self) -> None:
        """Volatile bytes go with this process: their locations are removed first."""
        self._stop.set()
        with _NODES_LOCK:
            if _NODES.get(self.node_id) is self:
                del _NODES[self.node_id]
        try:
            for row in self.repo.node_locations(self.node_id):
                if row.holder == self.boot_id:
                    self.repo.remove_location(row.tenant_id, row.kind, row.name, row.node_id, row.device)
            self.repo.beat(self.node_id, self.boot_id, self.describe(), self.bandwidth, status="offline")
        except Exception:
            logger.warning("placement node %s: could not record its stop", self.node_id, exc_info=True)
        if self.server is not None:
            self.server.stop()
        for name, device in self.devices.items():
            if is_volatile(name):
                for key in device.held_keys():
                    device.drop(key)

    def _beats(self) -> None:
        measured = False
        while not self._stop.wait(0.0 if not measured else HEARTBEAT_SECONDS):
            if not measured:
                measured = True
                if self.settings.probe_bytes <= 0:
                    continue
                try:
                    for route, figure in measure_disk(self.disk().root, self.settings.probe_bytes).items():
                        self.bandwidth.setdefault(route, figure)  # a transfer done already knows better
                except OSError:
                    logger.warning(
                        "placement node %s: disk bandwidth not measured", self.node_id, exc_info=True
                    )
            try:
                self.repo.beat(self.node_id, self.boot_id, self.describe(), dict(self.bandwidth))
            except Exception:
                logger.warning("placement node %s: heartbeat failed", self.node_id, exc_info=True)

    def reconcile(self) -> dict[str, int]:
        """The store says what this node really holds (see the module docstring)."""
        stale = self.repo.remove_stale_volatile(self.node_id, self.boot_id)
        disk = self.disk()
        partials = disk.remove_partials()
        listed: set[Key] = set()
        gone = 0
        for row in self.repo.node_locations(self.node_id, "disk"):
            key = Key(row.tenant_id, row.kind, row.name)
            if disk.has(key) and disk.size(key) == row.size:
                listed.add(key)
            else:
                self.repo.remove_location(row.tenant_id, row.kind, row.name, row.node_id, row.device)
                gone += 1
        orphans = 0
        for key in disk.held_keys():
            if key not in listed:
                disk.drop(key)
                orphans += 1
        if stale or partials or gone or orphans:
            logger.info(
                "placement node %s reconciled: %d volatile locations of a dead process, %d partial "
                "files, %d disk locations without bytes, %d files without a location",
                self.node_id,
                stale,
                partials,
                gone,
                orphans,
            )
        return {"stale_volatile": stale, "partials": partials, "missing": gone, "orphans": orphans}


def measure_disk(directory: Path, size: int = PROBE_BYTES) -> dict[str, float]:
    """This disk's cold bytes/s, from one fresh file of `size` bytes whose pages are dropped
    from the page cache (posix_fadvise DONTNEED) before each pass, as each route reads it:
    `disk_read`, one read() pass (disk -> disk, disk -> gpuN, and the byte server a copy from
    another node reads from) and `disk->dram`, the file mapped resident (`map_resident`, as a
    disk -> DRAM load does: several times the read() figure). `estimated_time` divides by a
    route's figure, `disk_read` for a route not measured (until a transfer on it records its own)."""
    path = directory / f".probe-{uuid.uuid4().hex}"
    block = bytearray(8 * 1024 * 1024)
    try:
        with open(path, "wb", buffering=0) as out:
            for _ in range(max(1, size // len(block))):
                out.write(block)
            os.fsync(out.fileno())
        return {"disk_read": read_bandwidth(path, cold=True), DISK_TO_DRAM: map_bandwidth(path, cold=True)}
    finally:
        path.unlink(missing_ok=True)


def _drop_cached(path: Path) -> None:
    if hasattr(os, "posix_fadvise"):
        with open(path, "rb") as file:
            os.posix_fadvise(file.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)


def map_bandwidth(path: Path, *, cold: bool) -> float:
    """Bytes/s of mapping `path` resident (`map_resident`: a disk -> DRAM load), then
    letting it go; `cold`: its pages dropped from the page cache first."""
    size = path.stat().st_size
    if cold:
        _drop_cached(path)
    started = time.perf_counter()
    mapping = map_resident(path, size)
    seconds = time.perf_counter() - started
    mapping.close()
    return size / seconds if seconds > 0 else float(size)


def read_bandwidth(path: Path, *, cold: bool) -> float:
    """Bytes/s of one read() pass of `path` into a fresh anonymous buffer (the disk probe of
    every route but disk -> DRAM, which maps the file instead: `map_bandwidth`)."""
    size = path.stat().st_size
    buffer = host_buffer(size)  # the same memory a DRAM copy gets
    view = memoryview(buffer)
    with open_sequential(path) as source:  # read as a block copy from the disk reads
        if cold and hasattr(os, "posix_fadvise"):
            os.posix_fadvise(source.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
        started = time.perf_counter()
        done = 0
        while done < size:
            got = source.readinto(view[done : done + 16 * 1024 * 1024])
            if not got:
                break
            done += got
        seconds = time.perf_counter() - started
    view.release()
    buffer.close()
    return done / seconds if seconds > 0 else float(done)
