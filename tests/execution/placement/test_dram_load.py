"""Disk -> DRAM loads map the checkpoint's pages into the node's process and lock them (no
block copy), the bytes are exactly the file's and outlive it; a bandwidth limit or a
non-DRAM memory device still takes the block-by-block copy."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable
from pathlib import Path

from runtime.execution.placement.copying import pump
from runtime.execution.placement.devices import FileSource, Key, MemoryDevice, map_resident
from runtime.execution.placement.node import DISK_TO_DRAM, PlacementNode, measure_disk
from runtime.store.placement import PlacementRepository

KEY = Key("t", "model", "m")


def locked_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmLck:"):
            return int(line.split()[1])
    return 0


def mapped_in_process(path: Path) -> bool:
    return str(path) in Path("/proc/self/maps").read_text()


def blob(tmp_path: Path, size: int = 3 * 1024 * 1024 + 123) -> tuple[Path, bytes]:
    path = tmp_path / "ckpt.safetensors"
    data = os.urandom(size)
    path.write_bytes(data)
    return path, data


def test_map_resident_holds_the_files_bytes_locked_when_allowed(tmp_path: Path) -> None:
    path, data = blob(tmp_path)
    before = locked_kib()
    seen: list[int] = []
    mapping = map_resident(path, len(data), seen.append)
    try:
        assert bytes(mapping) == data
        assert seen[-1] == len(data)
        if os.geteuid() == 0:  # root may lock any amount; others within RLIMIT_MEMLOCK
            assert locked_kib() - before >= len(data) // 1024
    finally:
        mapping.close()


def test_disk_to_dram_adopts_the_file_and_the_bytes_outlive_it(tmp_path: Path) -> None:
    path, data = blob(tmp_path)
    dram = MemoryDevice("dram", 1 << 30)
    sink = dram.sink(KEY, len(data), path.name)
    copied = pump(FileSource(path), sink, len(data), block=1 << 20, hash_bytes=True)
    sink.commit()
    assert copied.sha256 == hashlib.sha256(data).hexdigest()
    assert mapped_in_process(path)
    path.unlink()  # a move removes the disk copy
    assert bytes(dram.buffer(KEY)) == data
    assert dram.drop(KEY)
    assert dram.held_bytes() == 0


def test_a_bandwidth_limit_or_an_emulated_gpu_copies_block_by_block(tmp_path: Path) -> None:
    path, data = blob(tmp_path, 256 * 1024)
    for device, limit in ((MemoryDevice("dram", 1 << 30), 64e6), (MemoryDevice("gpu0", 1 << 30, True), None)):
        sink = device.sink(KEY, len(data), path.name)
        pump(FileSource(path), sink, len(data), block=64 * 1024, bandwidth_limit=limit)
        sink.commit()
        assert not mapped_in_process(path)
        assert bytes(device.buffer(KEY)) == data
        device.drop(KEY)


def test_the_disk_probe_measures_a_read_pass_and_a_mapping_each_for_its_route(tmp_path: Path) -> None:
    figures = measure_disk(tmp_path, 8 * 1024 * 1024)
    assert set(figures) == {"disk_read", DISK_TO_DRAM} and all(f > 0 for f in figures.values())
    assert list(tmp_path.iterdir()) == []  # the probe file is gone
    assert not mapped_in_process(tmp_path)


def test_a_node_started_with_a_probe_reports_both_disk_figures(
    make_node: Callable[..., PlacementNode], repo: PlacementRepository
) -> None:
    make_node(probe_bytes=8 * 1024 * 1024)  # measured in its first beat, then stored

    def stored() -> dict[str, float]:
        record = repo.get_node("node1")
        return record.bandwidth if record is not None else {}

    deadline = time.monotonic() + 10
    while DISK_TO_DRAM not in stored() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert {"disk_read", DISK_TO_DRAM} <= set(stored())
