"""Placement settings, from the environment (`GREY_PLACEMENT_*`).

- `GREY_PLACEMENT_ROOT` (default `.grey/placement`): a node's disk device is
  `<root>/<node_id>/disk`.
- `GREY_PLACEMENT_DRAM_BYTES` (default: half the host's memory): what the node's worker
  process may hold in DRAM.
- `GREY_PLACEMENT_GPU_BYTES` (default 4 GiB): the capacity of each emulated GPU (a real
  GPU reports its own memory).
- `GREY_PLACEMENT_EMULATED_GPUS` (default 1): emulated GPUs of a node with no real GPU
  (`gpu0`...); they hold bytes in host memory and say `emulated: true` everywhere.
- `GREY_PLACEMENT_DISK_BYTES` (default: the disk's used + free space): the disk capacity.
- `GREY_PLACEMENT_FILE_ROOTS` (default none): directories a `file://` source may be read
  from, separated by `:`; a `file://` URL elsewhere (or any, by default) is refused.
- `GREY_PLACEMENT_BIND` (default 127.0.0.1): the address of each node's byte server
  (port chosen by the system); `GREY_PLACEMENT_ADVERTISE` the host others reach it by.
- `GREY_PLACEMENT_EMBEDDED_NODE` (default `node1` with the embedded broker, else empty):
  the placement node `grey serve` runs in-process; empty: none.
- `GREY_PLACEMENT_BLOCK_BYTES` (default 16 MiB): the unit of every copy.
- `GREY_PLACEMENT_PROBE_BYTES` (default 64 MiB; 0: none): the file a node writes and reads
  back cold at start to measure its disk (the bandwidth `estimated_time` divides by): once
  with read() (`disk_read`) and once mapped (`disk->dram`, as a disk -> DRAM load reads).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from runtime.execution import host

GIB = 1024**3
DEFAULT_GPU_BYTES = 4 * GIB
DEFAULT_BLOCK_BYTES = 16 * 1024 * 1024


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    return int(raw) if raw else default


def _default_dram() -> int:
    total = host.memory_gb()
    return int(total * GIB / 2) if total else 2 * GIB


@dataclass(frozen=True)
class PlacementSettings:
    root: Path = Path(".grey/placement")
    dram_bytes: int = 2 * GIB
    gpu_bytes: int = DEFAULT_GPU_BYTES
    emulated_gpus: int = 1
    disk_bytes: int | None = None
    file_roots: tuple[Path, ...] = field(default_factory=tuple)
    bind: str = "127.0.0.1"
    advertise: str | None = None
    block_bytes: int = DEFAULT_BLOCK_BYTES
    probe_bytes: int = 64 * 1024 * 1024  # the disk figures measured at start (0: not measured)

    @classmethod
    def from_env(cls) -> PlacementSettings:
        env = os.environ
        roots = tuple(
            Path(part).resolve() for part in env.get("GREY_PLACEMENT_FILE_ROOTS", "").split(":") if part
        )
        disk = env.get("GREY_PLACEMENT_DISK_BYTES", "").strip()
        return cls(
            root=Path(env.get("GREY_PLACEMENT_ROOT", "").strip() or ".grey/placement"),
            dram_bytes=_int("GREY_PLACEMENT_DRAM_BYTES", _default_dram()),
            gpu_bytes=_int("GREY_PLACEMENT_GPU_BYTES", DEFAULT_GPU_BYTES),
            emulated_gpus=_int("GREY_PLACEMENT_EMULATED_GPUS", 1),
            disk_bytes=int(disk) if disk else None,
            file_roots=roots,
            bind=env.get("GREY_PLACEMENT_BIND", "").strip() or "127.0.0.1",
            advertise=env.get("GREY_PLACEMENT_ADVERTISE", "").strip() or None,
            block_bytes=_int("GREY_PLACEMENT_BLOCK_BYTES", DEFAULT_BLOCK_BYTES),
            probe_bytes=_int("GREY_PLACEMENT_PROBE_BYTES", 64 * 1024 * 1024),
        )

    def disk_dir(self, node_id: str) -> Path:
        return (self.root / node_id / "disk").resolve()


def embedded_node_id(broker_kind: str) -> str | None:
    """The in-process placement node of `grey serve` (None: none)."""
    raw = os.environ.get("GREY_PLACEMENT_EMBEDDED_NODE")
    if raw is None:
        return "node1" if broker_kind == "embedded" else None
    return raw.strip() or None
