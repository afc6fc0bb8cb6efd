"""Placement-aware routing: a request goes to a warm replica of its model; with none, one is
cold-started from the model's fastest location (GPU > DRAM > disk), evicting a routed
replica by policy when every serving slot of the candidate nodes is taken.

The router decides; a `Backend` does (the real one starts serving processes through the
node's serving host and forwards over HTTP: runtime/services/model_services.py; the
routing benchmark plugs in one that only counts). Usage is kept per (tenant, model) for
the life of the router: LFU evicts the replica whose model was asked for least often
(counts survive evictions, so a popular model that was pushed out wins its slot back), LRU
the one used longest ago. Only replicas the router started itself are evicted: a service
somebody deployed stays until they stop it.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import defaultdict
from dataclasses import dataclass
from typing import Protocol

from runtime.execution.serving.errors import NoCapacity, ServingError

LFU = "lfu"
LRU = "lru"
POLICIES = (LFU, LRU)


def device_rank(device: str) -> int:
    """Faster to load from ranks lower: GPU memory, then DRAM, then disk."""
    if device.startswith("gpu"):
        return 0
    if device == "dram":
        return 1
    if device == "disk":
        return 2
    return 3


@dataclass(frozen=True, slots=True)
class Replica:
    service_id: str
    model_name: str
    node_id: str
    device: str
    url: str
    routed: bool  # started by the router (evictable)


@dataclass(frozen=True, slots=True)
class Place:
    node_id: str
    device: str


@dataclass(frozen=True, slots=True)
class Routed:
    """Where a request went: the replica, whether it was cold, how long the load took."""

    replica: Replica
    cold: bool
    cold_start_ms: float | None = None
    evicted: Replica | None = None


class Backend(Protocol):
    def running(self, tenant_id: str, model_name: str) -> list[Replica]:
        """Replicas of the model answering now (warm)."""

    def locations(self, tenant_id: str, model_name: str) -> list[Place]:
        """Where the model's bytes are (MODEL_NOT_FOUND when it is not registered)."""

    def live_on(self, node_id: str) -> list[tuple[str, Replica]]:
        """Every live replica of the node, any tenant: (tenant, replica); each takes a slot."""

    def start(self, tenant_id: str, model_name: str, place: Place) -> Replica:
        """A new routed replica on `place`, answering (the cold start)."""

    def stop(self, tenant_id: str, replica: Replica) -> None: ...


class UsageBook:
    """How often and how recently each (tenant, model) was asked for."""

    def __init__(self) -> None:
        self._count: dict[tuple[str, str], int] = defaultdict(int)
        self._last: dict[tuple[str, str], int] = {}
        self._clock = itertools.count(1)
        self._lock = threading.Lock()

    def touch(self, tenant_id: str, model_name: str) -> None:
        key = (tenant_id, model_name)
        with self._lock:
            self._count[key] += 1
            self._last[key] = next(self._clock)

    def score(self, policy: str, tenant_id: str, model_name: str) -> tuple[int, int]:
        """Lower is evicted first."""
        key = (tenant_id, model_name)
        count, last = self._count.get(key, 0), self._last.get(key, 0)
        return (count, last) if policy == LFU else (last, count)


class Router:
    def __init__(
        self, backend: Backend, slots: int, policy: str = LFU, book: UsageBook | None = None
    ) -> None:
        if policy not in POLICIES:
            raise ServingError(f"eviction policy {policy!r}: use lfu or lru")
        self.backend, self.slots, self.policy = backend, max(1, slots), policy
        self.book = book or UsageBook()
        self._turn = itertools.count()
        self._locks: dict[tuple[str, str], threading.Lock] = defaultdict(threading.Lock)
        self._locks_guard = threading.Lock()
        self._placing = threading.Lock()  # one cold start decides slots at a time

    def _lock(self, tenant_id: str, model_name: str) -> threading.Lock:
        with self._locks_guard:
            return self._locks[(tenant_id, model_name)]

    def _warm(self, tenant_id: str, model_name: str) -> Replica | None:
        replicas = self.backend.running(tenant_id, model_name)
        if not replicas:
            return None
        best = min(device_rank(replica.device) for replica in replicas)
        fastest = [replica for replica in replicas if device_rank(replica.device) == best]
        return fastest[next(self._turn) % len(fastest)]

    def route(self, tenant_id: str, model_name: str) -> Routed:
        """The replica for one request of `model_name` (started first if none is warm)."""
        self.book.touch(tenant_id, model_name)
        warm = self._warm(tenant_id, model_name)
        if warm is not None:
            return Routed(warm, cold=False)
        with self._lock(tenant_id, model_name):  # one cold start per model, the others wait for it
            warm = self._warm(tenant_id, model_name)
            if warm is not None:
                return Routed(warm, cold=False)
            with self._placing:
                place, victim = self.choose(tenant_id, model_name)
                if victim is not None:
                    self.backend.stop(victim[0], victim[1])
            started = time.perf_counter()
            replica = self.backend.start(tenant_id, model_name, place)
            elapsed_ms = (time.perf_counter() - started) * 1000.0
            return Routed(replica, cold=True, cold_start_ms=elapsed_ms, evicted=victim[1] if victim else None)

    def choose(self, tenant_id: str, model_name: str) -> tuple[Place, tuple[str, Replica] | None]:
        """The location to cold-start from and the replica to evict for it (if any)."""
        places = self.backend.locations(tenant_id, model_name)
        if not places:
            raise NoCapacity(f"model {model_name!r} has no location to load from", model_name=model_name)
        best_per_node: dict[str, Place] = {}
        for place in sorted(places, key=lambda p: (device_rank(p.device), p.node_id)):
            best_per_node.setdefault(place.node_id, place)
        candidates = sorted(best_per_node.values(), key=lambda p: (device_rank(p.device), p.node_id))
        live = {place.node_id: self.backend.live_on(place.node_id) for place in candidates}
        free = [place for place in candidates if len(live[place.node_id]) < self.slots]
        if free:
            return free[0], None
        evictable = [
            (
                self.book.score(self.policy, tenant, replica.model_name),
                device_rank(best_per_node[node].device),
                node,
                tenant,
                replica,
            )
            for node, replicas in live.items()
            for tenant, replica in replicas
            if replica.routed
        ]
        if not evictable:
            raise NoCapacity(
                f"every serving slot of the nodes holding {model_name!r} is taken by deployed services",
                model_name=model_name,
                nodes=sorted(live),
            )
        _, _, node, tenant, replica = min(evictable, key=lambda item: (item[0], item[1], item[2]))
        return best_per_node[node], (tenant, replica)
