"""Which placement nodes are alive, and so which locations are real.

A disk location is real while its row exists (the file was complete before the row was
written, and a node removes the row before the file). A DRAM or GPU location is real only
while the process that holds it lives: its row's `holder` must be the node's current boot
and the node's byte server must answer `/alive` with that boot id. Asked at most once a
second per node (`CACHE_SECONDS`), with a short timeout, so a SIGKILLed holder's bytes
stop being listed at once, before anyone notices the node is down.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from collections.abc import Iterable

from runtime.execution.placement.names import is_volatile
from runtime.store.placement import LocationRecord, PlacementNodeRecord

CACHE_SECONDS = 1.0
PROBE_TIMEOUT_SECONDS = 0.5

_cache: dict[tuple[str, str], tuple[float, bool]] = {}
_lock = threading.Lock()


def alive(node: PlacementNodeRecord) -> bool:
    """The node's process answers, and it is the boot the store knows."""
    if node.status != "online":
        return False
    key = (node.address, node.boot_id)
    now = time.monotonic()
    with _lock:
        cached = _cache.get(key)
    if cached is not None and now - cached[0] < CACHE_SECONDS:
        return cached[1]
    try:
        with urllib.request.urlopen(f"{node.address}/alive", timeout=PROBE_TIMEOUT_SECONDS) as answer:
            answered = json.loads(answer.read()).get("boot_id") == node.boot_id
    except (OSError, ValueError):
        answered = False
    with _lock:
        _cache[key] = (now, answered)
    return answered


def forget() -> None:
    """Drops the cache (tests, and a node that just started)."""
    with _lock:
        _cache.clear()


def real(rows: Iterable[LocationRecord], nodes: dict[str, PlacementNodeRecord]) -> list[LocationRecord]:
    """The rows whose bytes are there (see the module docstring)."""
    kept = []
    for row in rows:
        if not is_volatile(row.device) or row.holder is None:
            kept.append(row)
            continue
        node = nodes.get(row.node_id)
        if node is not None and row.holder == node.boot_id and alive(node):
            kept.append(row)
    return kept
