"""The sampler's settings, from the environment (GREY_PROFILER_*)."""

from __future__ import annotations

import os
from dataclasses import dataclass

POLL_SECONDS = 1.0
HEARTBEAT_SECONDS = 5.0


def _seconds(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if not raw:
        return default
    value = float(raw)
    if value <= 0:
        raise ValueError(f"{name} must be positive, not {raw!r}")
    return value


@dataclass(frozen=True, slots=True)
class SamplerSettings:
    """`enabled` (GREY_PROFILER, default on; `off` runs no sampler in this process);
    `poll_seconds`: how soon a node sees a session start or stop; `heartbeat_seconds`: how
    often the node tells `/clients` it is alive (healthy while heard from within three)."""

    enabled: bool = True
    poll_seconds: float = POLL_SECONDS
    heartbeat_seconds: float = HEARTBEAT_SECONDS

    @classmethod
    def from_env(cls) -> SamplerSettings:
        enabled = os.environ.get("GREY_PROFILER", "on").strip().lower() not in ("off", "0", "false", "no")
        return cls(
            enabled=enabled,
            poll_seconds=_seconds("GREY_PROFILER_POLL_SECONDS", POLL_SECONDS),
            heartbeat_seconds=_seconds("GREY_PROFILER_HEARTBEAT_SECONDS", HEARTBEAT_SECONDS),
        )
