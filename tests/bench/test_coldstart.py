"""The cold-start benchmark's eviction really empties the page cache of the file, so every
read it times is a disk read."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bench.coldstart import cached_share, evict

ROOT = Path(__file__).resolve().parents[2]


def _filesystem(path: Path) -> str:
    """The type of the filesystem holding `path` (the longest mount point above it)."""
    best, kind = "", ""
    for line in Path("/proc/mounts").read_text().splitlines():
        _, mount, fstype, *_ = line.split()
        if str(path).startswith(mount) and len(mount) > len(best):
            best, kind = mount, fstype
    return kind


@pytest.fixture
def disk_dir(tmp_path: Path) -> Path:
    """tmp_path, unless it is in memory (tmpfs has no page cache to evict): then out/ of the
    checkout, which is on disk."""
    if _filesystem(tmp_path) != "tmpfs":
        return tmp_path
    here = ROOT / "out" / "test-coldstart"
    here.mkdir(parents=True, exist_ok=True)
    return here


def test_a_read_file_is_cached_and_evict_drops_every_page(disk_dir: Path) -> None:
    path = disk_dir / "blob"
    path.write_bytes(os.urandom(4 * 1024 * 1024))
    path.read_bytes()
    assert cached_share(path) > 0.9
    assert evict(path) == 0.0
    assert cached_share(path) == 0.0
