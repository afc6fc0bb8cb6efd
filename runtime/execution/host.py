"""Real figures of the machine this process runs on (Linux /proc, with portable fallbacks)."""

from __future__ import annotations

import os
from pathlib import Path


def cpu_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _meminfo() -> dict[str, int]:
    info: dict[str, int] = {}
    path = Path("/proc/meminfo")
    if path.exists():
        for line in path.read_text().splitlines():
            name, _, rest = line.partition(":")
            info[name] = int(rest.split()[0]) * 1024
    return info


def memory_gb() -> float:
    total = _meminfo().get("MemTotal", 0)
    return round(total / 2**30, 2)


def memory_percent() -> float:
    info = _meminfo()
    total, available = info.get("MemTotal", 0), info.get("MemAvailable", 0)
    return round(100.0 * (total - available) / total, 1) if total else 0.0


def cpu_percent() -> float:
    """One-minute load average over the cores, as a percentage (capped at 100)."""
    return round(min(100.0, 100.0 * os.getloadavg()[0] / cpu_cores()), 1)
