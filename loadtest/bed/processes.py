"""CPU used by each process of the cluster over a load level (psutil), children included."""

from __future__ import annotations

import time

import psutil


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process and of every process under it."""
    try:
        root = psutil.Process(pid)
        family = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0.0
    total = 0.0
    for process in family:
        try:
            times = process.cpu_times()
        except psutil.Error:
            continue
        total += times.user + times.system
    return total


class CpuMeter:
    """Started before a level, read after it: percent of one core per named process."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self.started = time.monotonic()
        self.before = {name: _cpu_seconds(pid) for name, pid in pids.items()}

    def wall(self) -> float:
        return max(time.monotonic() - self.started, 1e-9)

    def percent(self) -> dict[str, float]:
        wall = self.wall()
        return {
            name: round(100 * max(0.0, _cpu_seconds(pid) - self.before[name]) / wall, 1)
            for name, pid in self.pids.items()
        }
