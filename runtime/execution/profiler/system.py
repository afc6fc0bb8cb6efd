"""CPU and memory of the node's machine (psutil), as each profiler frame carries them.

CPU use is measured between two reads of this reader's own `cpu_times` snapshot, not with
`psutil.cpu_percent()` (whose one shared baseline any other caller in the process resets).
"""

from __future__ import annotations

import os
from typing import Any

import psutil

MIB = 2**20


def _busy_and_total(times: Any) -> tuple[float, float]:
    total = float(sum(times))
    idle = float(getattr(times, "idle", 0.0)) + float(getattr(times, "iowait", 0.0))
    return total - idle, total


class SystemReader:
    """CPU percent since the previous read, memory, and this process's resident memory."""

    def __init__(self) -> None:
        self._before = _busy_and_total(psutil.cpu_times())
        self._process = psutil.Process(os.getpid())

    def read(self) -> dict[str, Any]:
        busy, total = _busy_and_total(psutil.cpu_times())
        busy_before, total_before = self._before
        self._before = (busy, total)
        elapsed = total - total_before
        cpu_percent = round(100.0 * (busy - busy_before) / elapsed, 1) if elapsed > 0 else None
        memory = psutil.virtual_memory()
        try:
            rss = int(self._process.memory_info().rss // MIB)
        except psutil.Error:
            rss = None
        return {
            "cpu": {
                "percent": cpu_percent,
                "count": psutil.cpu_count() or 1,
                "load_1m": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
            },
            "memory": {
                "total": int(memory.total // MIB),
                "used": int((memory.total - memory.available) // MIB),
                "available": int(memory.available // MIB),
                "percent": round(float(memory.percent), 1),
                "process_rss": rss,
            },
        }
