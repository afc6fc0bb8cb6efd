"""Serving settings, from the environment (`GREY_SERVING_*`).

- `GREY_SERVING_PORTS` (default `8100-8999`): the range a node gives replica ports from
  (a port asked for may lie outside it, but never below 1024).
- `GREY_SERVING_BIND` (default 127.0.0.1): the address serving processes listen on;
  `GREY_SERVING_ADVERTISE` the host others reach them by (their `url`).
- `GREY_SERVING_SLOTS` (default 4): replicas a node runs at once; the router evicts one
  (LFU by default) to cold-start another when they are all taken.
- `GREY_SERVING_EVICTION` (default `lfu`; or `lru`): the router's eviction policy.
- `GREY_SERVING_START_TIMEOUT` (default 120 s): how long a replica may take to load and answer.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from runtime.execution.serving.errors import InvalidServingRequest

MIN_PORT = 1024
MAX_PORT = 65535
POLICIES = ("lfu", "lru")


def _ports(raw: str) -> tuple[int, int]:
    low, sep, high = raw.partition("-")
    try:
        first, last = int(low), int(high if sep else low)
    except ValueError:
        raise InvalidServingRequest(f"GREY_SERVING_PORTS {raw!r} is not a range like 8100-8999") from None
    if not MIN_PORT <= first <= last <= MAX_PORT:
        raise InvalidServingRequest(f"GREY_SERVING_PORTS {raw!r} must lie within {MIN_PORT}-{MAX_PORT}")
    return first, last


@dataclass(frozen=True)
class ServingSettings:
    ports: tuple[int, int] = (8100, 8999)
    bind: str = "127.0.0.1"
    advertise: str | None = None
    slots: int = 4
    eviction: str = "lfu"
    start_timeout: float = 120.0

    @classmethod
    def from_env(cls) -> ServingSettings:
        env = os.environ
        eviction = env.get("GREY_SERVING_EVICTION", "").strip().lower() or "lfu"
        if eviction not in POLICIES:
            raise InvalidServingRequest(f"GREY_SERVING_EVICTION {eviction!r}: use lfu or lru")
        return cls(
            ports=_ports(env.get("GREY_SERVING_PORTS", "").strip() or "8100-8999"),
            bind=env.get("GREY_SERVING_BIND", "").strip() or "127.0.0.1",
            advertise=env.get("GREY_SERVING_ADVERTISE", "").strip() or None,
            slots=max(1, int(env.get("GREY_SERVING_SLOTS", "").strip() or 4)),
            eviction=eviction,
            start_timeout=float(env.get("GREY_SERVING_START_TIMEOUT", "").strip() or 120.0),
        )

    @property
    def host(self) -> str:
        return self.advertise or self.bind

    def url(self, port: int) -> str:
        return f"http://{self.host}:{port}"
