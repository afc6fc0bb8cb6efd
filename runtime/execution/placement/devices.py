"""A node's devices and the bytes they hold: `disk` (files), `dram` (this process's memory),
`gpuN` (device memory through PyTorch when a real GPU exists, else emulated in host memory).

Every device keeps its own books: what it holds plus what is reserved for copies under
way. A reservation that does not fit raises ResourceUnavailable before a byte is written,
so a refused move leaves everything as it was. Bytes are written through a `Sink`
(`window(n)` hands out a writable buffer the reader fills in place: no intermediate copy
for disk->DRAM) and become visible only on `commit()` (disk: fsync, then an atomic
rename of the partial file). Readers are `Source`s with `readinto`. A DRAM sink fed from a
file of this node's disk adopts it instead (`map_resident`: the file's pages mapped into
this process and locked, read by the kernel with no block copy).
"""

from __future__ import annotations

import contextlib
import ctypes
import io
import mmap
import os
import shutil
import threading
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from runtime.execution.placement.errors import NotOnDevice, ResourceUnavailable

PARTIAL_MARK = ".partial-"


def host_buffer(size: int) -> mmap.mmap:
    """`size` bytes of anonymous memory: no zero-filling pass (pages appear as the reads
    that fill them touch them: bytearray(size) would write every page once first), huge
    pages where the kernel offers them."""
    buffer = mmap.mmap(-1, max(size, 1))
    if hasattr(mmap, "MADV_HUGEPAGE"):
        with contextlib.suppress(OSError):
            buffer.madvise(mmap.MADV_HUGEPAGE)
    return buffer


def open_sequential(path: Path) -> io.FileIO:
    """`path` opened unbuffered for one front-to-back read, with the kernel told so
    (POSIX_FADV_SEQUENTIAL doubles its readahead window: on the reference VM's virtio disk a
    cold 1 GiB read went 1.3× faster at the median of 9 alternating pairs, never slower)."""
    file = io.FileIO(path, "rb")
    if hasattr(os, "posix_fadvise"):
        with contextlib.suppress(OSError):
            os.posix_fadvise(file.fileno(), 0, 0, os.POSIX_FADV_SEQUENTIAL)
    return file


#: map_resident faults and locks the file in steps this large (progress, cancel between them).
RESIDENT_STEP = 256 * 1024 * 1024
_LIBC = ctypes.CDLL(None, use_errno=True)
_LIBC.mlock.argtypes = [ctypes.c_void_p, ctypes.c_size_t]


def map_resident(path: Path, size: int, progress: Callable[[int], None] | None = None) -> mmap.mmap:
    """The file's bytes held in DRAM by this process: its page-cache pages mapped read-only
    and locked (mlock faults them in, the kernel reading ahead in large batches with no copy
    to a user buffer and no zero-fill: on the reference VM ~5× the bytes/s of read() into a
    fresh buffer, cold). Where locking is not allowed (RLIMIT_MEMLOCK) the pages are faulted
    in unlocked. The mapping keeps the bytes even if the file is unlinked later (a move)."""
    with open(path, "rb") as file:
        mapping = mmap.mmap(file.fileno(), size, flags=mmap.MAP_SHARED, prot=mmap.PROT_READ)
    try:
        pages = np.frombuffer(mapping, dtype=np.uint8)
        address = pages.ctypes.data
        lockable = True
        for offset in range(0, size, RESIDENT_STEP):
            n = min(RESIDENT_STEP, size - offset)
            if lockable and _LIBC.mlock(address + offset, n) != 0:
                lockable = False  # not permitted here: resident, not pinned
            if not lockable:
                int(pages[offset : offset + n : mmap.PAGESIZE].sum())  # one read per page
            if progress is not None:
                progress(offset + n)
        del pages  # the mapping can close once no array exports it
    except BaseException:
        with contextlib.suppress(BufferError):
            mapping.close()
        raise
    return mapping


@dataclass(frozen=True, slots=True, order=True)
class Key:
    """What a device holds: a tenant's model or chunk (names already checked)."""

    tenant_id: str
    kind: str
    name: str


class Source(ABC):
    size: int

    @abstractmethod
    def readinto(self, buffer: memoryview) -> int: ...

    def close(self) -> None:
        return None


class Sink(ABC):
    def adopt(self, source: Source, progress: Callable[[int], None] | None) -> memoryview | None:
        """Takes every byte of `source` at once, without the block-by-block copy, when this
        sink can (DRAM from a local file: `map_resident`); returns the bytes (to hash) or
        None: the caller copies block by block."""
        return None

    @abstractmethod
    def window(self, n: int) -> memoryview:
        """A writable buffer of `n` bytes: the next bytes of the object, filled in place."""

    @abstractmethod
    def advance(self, n: int) -> None:
        """The window's `n` bytes are written."""

    @abstractmethod
    def commit(self) -> None:
        """Every byte is written: the object exists on the device from now on."""

    @abstractmethod
    def abort(self) -> None:
        """Drops what was written and the reservation."""


class Device(ABC):
    def __init__(self, name: str, total: int, emulated: bool) -> None:
        self.name, self.total, self.emulated = name, total, emulated
        self._lock = threading.Lock()
        self._reserved: dict[str, int] = {}

    @property
    def kind(self) -> str:
        return "disk" if self.name == "disk" else "dram" if self.name == "dram" else "gpu"

    @abstractmethod
    def held_bytes(self) -> int: ...

    def used(self) -> int:
        with self._lock:
            return self.held_bytes() + sum(self._reserved.values())

    def available(self) -> int:
        return max(0, self.total - self.used())

    def _reserve(self, size: int) -> str:
        with self._lock:
            used = self.held_bytes() + sum(self._reserved.values())
            if used + size > self.total:
                raise ResourceUnavailable(
                    f"{self.name} has {max(0, self.total - used)} bytes free; {size} needed",
                    device=self.name,
                    required=size,
                    available=max(0, self.total - used),
                    total=self.total,
                )
            token = uuid.uuid4().hex
            self._reserved[token] = size
            return token

    def _release(self, token: str) -> None:
        with self._lock:
            self._reserved.pop(token, None)

    @abstractmethod
    def has(self, key: Key) -> bool: ...

    @abstractmethod
    def size(self, key: Key) -> int: ...

    @abstractmethod
    def sink(self, key: Key, size: int, filename: str) -> Sink:
        """Reserves `size` bytes (ResourceUnavailable if they do not fit)."""

    @abstractmethod
    def source(self, key: Key) -> Source: ...

    @abstractmethod
    def drop(self, key: Key) -> bool: ...

    @abstractmethod
    def held_keys(self) -> list[Key]: ...

    def describe(self) -> dict[str, Any]:
        used = self.used()
        return {
            "name": self.name,
            "kind": self.kind,
            "total": self.total,
            "used": used,
            "available": max(0, self.total - used),
            "emulated": self.emulated,
        }


# -- memory (dram, emulated gpu) --------------------------------------------------------------


class _BufferSource(Source):
    def __init__(self, data: memoryview) -> None:
        self._data, self._pos, self.size = data, 0, len(data)

    def readinto(self, buffer: memoryview) -> int:
        n = min(len(buffer), self.size - self._pos)
        buffer[:n] = self._data[self._pos : self._pos + n]
        self._pos += n
        return n


class _MemorySink(Sink):
    def __init__(self, device: MemoryDevice, key: Key, size: int, token: str) -> None:
        self._device, self._key, self._token = device, key, token
        self._buffer = host_buffer(size)
        self._view = memoryview(self._buffer)
        self._pos = 0

    def adopt(self, source: Source, progress: Callable[[int], None] | None) -> memoryview | None:
        if self._device.name != "dram" or not isinstance(source, FileSource) or source.size == 0:
            return None
        mapping = map_resident(source.path, source.size, progress)
        self._view.release()
        self._buffer.close()
        self._buffer, self._view, self._pos = mapping, memoryview(mapping), source.size
        return self._view

    def window(self, n: int) -> memoryview:
        return self._view[self._pos : self._pos + n]

    def advance(self, n: int) -> None:
        self._pos += n

    def commit(self) -> None:
        self._view.release()
        self._device._commit(self._key, self._buffer, self._token)

    def abort(self) -> None:
        self._view.release()
        self._buffer.close()
        self._device._release(self._token)


class MemoryDevice(Device):
    """Bytes held in this process (DRAM, or an emulated GPU's "device memory")."""

    def __init__(self, name: str, total: int, emulated: bool = False) -> None:
        super().__init__(name, total, emulated)
        self._objects: dict[Key, mmap.mmap] = {}

    def held_bytes(self) -> int:
        return sum(len(data) for data in self._objects.values())

    def has(self, key: Key) -> bool:
        return key in self._objects

    def size(self, key: Key) -> int:
        data = self._objects.get(key)
        if data is None:
            raise NotOnDevice(f"{key.name} is not on {self.name}")
        return len(data)

    def sink(self, key: Key, size: int, filename: str) -> Sink:
        return _MemorySink(self, key, size, self._reserve(size))

    def _commit(self, key: Key, data: mmap.mmap, token: str) -> None:
        with self._lock:
            self._objects[key] = data
            self._reserved.pop(token, None)

    def source(self, key: Key) -> Source:
        data = self._objects.get(key)
        if data is None:
            raise NotOnDevice(f"{key.name} is not on {self.name}")
        return _BufferSource(memoryview(data))

    def buffer(self, key: Key) -> memoryview:
        """The held bytes, read-only (serving from memory, the byte server)."""
        data = self._objects.get(key)
        if data is None:
            raise NotOnDevice(f"{key.name} is not on {self.name}")
        return memoryview(data).toreadonly()

    def drop(self, key: Key) -> bool:
        with self._lock:
            data = self._objects.pop(key, None)
        if data is None:
            return False
        with contextlib.suppress(BufferError):  # a reader still has a view: freed when it ends
            data.close()
        return True

    def held_keys(self) -> list[Key]:
        return sorted(self._objects)


# -- disk -------------------------------------------------------------------------------------


class FileSource(Source):
    def __init__(self, path: Path) -> None:
        self.path = path
        self._file = open_sequential(path)  # closed by close()
        self.size = os.fstat(self._file.fileno()).st_size

    def readinto(self, buffer: memoryview) -> int:
        return self._file.readinto(buffer) or 0

    def close(self) -> None:
        self._file.close()


class _FileSink(Sink):
    def __init__(self, device: DiskDevice, final: Path, size: int, token: str, block: int) -> None:
        self._device, self._final, self._token = device, final, token
        final.parent.mkdir(parents=True, exist_ok=True)
        self._partial = final.parent / f"{PARTIAL_MARK}{uuid.uuid4().hex}-{final.name}"
        self._file: BinaryIO = open(self._partial, "wb", buffering=0)  # noqa: SIM115
        self._staging = bytearray(min(block, max(size, 1)))
        self._view = memoryview(self._staging)

    def window(self, n: int) -> memoryview:
        if n > len(self._staging):
            self._view.release()
            self._staging = bytearray(n)
            self._view = memoryview(self._staging)
        return self._view[:n]

    def advance(self, n: int) -> None:
        view = self._view[:n]
        while view:
            written = self._file.write(view) or 0
            view = view[written:]

    def commit(self) -> None:
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        for old in self._final.parent.glob("*"):
            if old != self._partial and PARTIAL_MARK not in old.name:
                old.unlink(missing_ok=True)  # one checkpoint file per object
        os.replace(self._partial, self._final)
        self._device._release(self._token)

    def abort(self) -> None:
        self._file.close()
        self._partial.unlink(missing_ok=True)
        self._device._release(self._token)


class DiskDevice(Device):
    """Files under `<root>/<tenant>/<kind>/<name>/<file>`; one file per object."""

    def __init__(self, root: Path, total: int | None, block: int) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.root, self.block = root, block
        usage = shutil.disk_usage(root)
        self._fixed_total = total
        super().__init__("disk", total if total is not None else usage.total, False)

    def _dir(self, key: Key) -> Path:
        return self.root / key.tenant_id / key.kind / key.name

    def path(self, key: Key) -> Path:
        """The object's file; NotOnDevice if it has none."""
        directory = self._dir(key)
        files = (
            [p for p in directory.glob("*") if p.is_file() and PARTIAL_MARK not in p.name]
            if directory.is_dir()
            else []
        )
        if not files:
            raise NotOnDevice(f"{key.name} is not on disk")
        return files[0]

    def held_bytes(self) -> int:
        return sum(self.size(key) for key in self.held_keys())

    def used(self) -> int:
        if self._fixed_total is None:  # the real disk: whatever is used on it, by anyone
            usage = shutil.disk_usage(self.root)
            with self._lock:
                return usage.used + sum(self._reserved.values())
        return super().used()

    def _reserve(self, size: int) -> str:
        if self._fixed_total is None:
            with self._lock:
                free = shutil.disk_usage(self.root).free - sum(self._reserved.values())
                if size > free:
                    raise ResourceUnavailable(
                        f"disk has {max(0, free)} bytes free; {size} needed",
                        device="disk",
                        required=size,
                        available=max(0, free),
                        total=self.total,
                    )
                token = uuid.uuid4().hex
                self._reserved[token] = size
                return token
        return super()._reserve(size)

    def has(self, key: Key) -> bool:
        try:
            self.path(key)
        except NotOnDevice:
            return False
        return True

    def size(self, key: Key) -> int:
        return self.path(key).stat().st_size

    def sink(self, key: Key, size: int, filename: str) -> Sink:
        token = self._reserve(size)
        try:
            return _FileSink(self, self._dir(key) / filename, size, token, self.block)
        except BaseException:
            self._release(token)
            raise

    def source(self, key: Key) -> Source:
        return FileSource(self.path(key))

    def drop(self, key: Key) -> bool:
        directory = self._dir(key)
        if not directory.is_dir():
            return False
        shutil.rmtree(directory, ignore_errors=True)
        return True

    def held_keys(self) -> list[Key]:
        found = []
        for directory in self.root.glob("*/*/*"):
            if directory.is_dir() and any(PARTIAL_MARK not in p.name for p in directory.glob("*")):
                tenant, kind, name = directory.relative_to(self.root).parts
                found.append(Key(tenant, kind, name))
        return sorted(found)

    def remove_partials(self) -> int:
        """Partial files of copies a dead process left: they never became an object."""
        removed = 0
        for partial in self.root.glob(f"*/*/*/{PARTIAL_MARK}*"):
            partial.unlink(missing_ok=True)
            removed += 1
        return removed


# -- real GPUs (PyTorch) ----------------------------------------------------------------------


def real_gpu_count() -> int:
    """GPUs PyTorch can use here (0 without PyTorch or CUDA)."""
    try:
        import torch
    except ImportError:
        return 0
    try:
        return int(torch.cuda.device_count()) if torch.cuda.is_available() else 0
    except Exception:
        return 0


class _TorchSink(Sink):
    """Fills a pinned host staging buffer block by block and copies each block to the device."""

    def __init__(self, device: TorchGpuDevice, key: Key, size: int, token: str) -> None:
        import torch

        self._device, self._key, self._token, self._pos = device, key, token, 0
        self._tensor = torch.empty(size, dtype=torch.uint8, device=device.torch_device)
        self._staging = torch.empty(device.block, dtype=torch.uint8, pin_memory=True)
        self._view = memoryview(self._staging.numpy())

    def window(self, n: int) -> memoryview:
        return self._view[:n]

    def advance(self, n: int) -> None:
        self._tensor[self._pos : self._pos + n].copy_(self._staging[:n], non_blocking=False)
        self._pos += n

    def commit(self) -> None:
        self._device._commit(self._key, self._tensor, self._token)

    def abort(self) -> None:
        self._tensor = None
        self._device._release(self._token)


class _TorchSource(Source):
    def __init__(self, tensor: Any) -> None:
        self._host = tensor.cpu().numpy()
        self._pos, self.size = 0, int(tensor.numel())

    def readinto(self, buffer: memoryview) -> int:
        n = min(len(buffer), self.size - self._pos)
        buffer[:n] = memoryview(self._host)[self._pos : self._pos + n]
        self._pos += n
        return n


class TorchGpuDevice(Device):
    """A real GPU's memory, through PyTorch (uint8 tensors on `cuda:N`)."""

    def __init__(self, index: int, total: int | None, block: int) -> None:
        import torch

        self.torch_device = torch.device(f"cuda:{index}")
        self.block = block
        capacity = total or int(torch.cuda.get_device_properties(index).total_memory)
        super().__init__(f"gpu{index}", capacity, False)
        self._objects: dict[Key, Any] = {}

    def held_bytes(self) -> int:
        return sum(int(t.numel()) for t in self._objects.values())

    def has(self, key: Key) -> bool:
        return key in self._objects

    def size(self, key: Key) -> int:
        if key not in self._objects:
            raise NotOnDevice(f"{key.name} is not on {self.name}")
        return int(self._objects[key].numel())

    def sink(self, key: Key, size: int, filename: str) -> Sink:
        return _TorchSink(self, key, size, self._reserve(size))

    def _commit(self, key: Key, tensor: Any, token: str) -> None:
        with self._lock:
            self._objects[key] = tensor
            self._reserved.pop(token, None)

    def source(self, key: Key) -> Source:
        if key not in self._objects:
            raise NotOnDevice(f"{key.name} is not on {self.name}")
        return _TorchSource(self._objects[key])

    def drop(self, key: Key) -> bool:
        with self._lock:
            return self._objects.pop(key, None) is not None

    def held_keys(self) -> list[Key]:
        return sorted(self._objects)
