"""Nodes: every gateway and worker process registers, heartbeats, and reaps silent peers.

A node whose heartbeat stops for `heartbeat.timeout_seconds` is marked down by whichever
live node notices first (one conditional UPDATE, so only one of them acts); the tasks it
was running go back to pending and to the queue, and so do the pending tasks of its pool,
whose messages it may have prefetched. Redelivered duplicates are harmless: a task starts
only through the conditional pending -> running transition.

Each heartbeat also runs the reconciler (runtime.execution.reconciler) if this node holds
the coordinator lease: running attempts whose lease expired, whatever their node's state,
and pending tasks whose message is missing from the broker.
"""

from __future__ import annotations

import logging
import math
import os
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from runtime.config import HeartbeatConfig
from runtime.execution import host
from runtime.execution.reconciler import Reconciler
from runtime.store import NodeRecord, Store, TaskRecord
from runtime.store.coltypes import utc_now
from runtime.store.errors import is_unavailable
from runtime.store.records import PENDING, RUNNING

logger = logging.getLogger("grey.nodes")

ACTIVE, DRAINING, QUARANTINED, DOWN = "active", "draining", "quarantined", "down"
ACCEPTING = frozenset({ACTIVE})


@dataclass(frozen=True, slots=True)
class Request:
    """What a task asks of a node (as in CloudAI): cores, memory, storage, GPUs.

    A fractional GPU request reserves whole GPUs (rounded up): devices are not shared.
    """

    cpu: float = 1.0
    memory_gb: float = 0.5
    gpu: int = 0
    storage_gb: float = 0.0

    @classmethod
    def of(cls, resources: dict[str, Any] | None) -> Request:
        resources = resources or {}
        return cls(
            cpu=float(resources.get("cpu", 1.0)),
            memory_gb=float(resources.get("memory_gb", 0.5)),
            gpu=math.ceil(float(resources.get("gpu", 0) or 0)),
            storage_gb=float(resources.get("storage_gb", 0.0) or 0.0),
        )

    def plus(self, other: Request, sign: int = 1) -> Request:
        return Request(
            self.cpu + sign * other.cpu,
            self.memory_gb + sign * other.memory_gb,
            self.gpu + sign * other.gpu,
            self.storage_gb + sign * other.storage_gb,
        )

    def within(self, total: Request) -> bool:
        """Every figure at most `total`'s (a float tolerance for sums of fractions)."""
        return (
            self.cpu <= total.cpu + 1e-9
            and self.memory_gb <= total.memory_gb + 1e-9
            and self.gpu <= total.gpu
            and self.storage_gb <= total.storage_gb + 1e-9
        )


class ResourceGate:
    """A node's capacity, the one place its resources are reserved: a task starts only
    once what it requests is free on the node, and holds it until its outcome is recorded."""

    def __init__(self, cpu: float, memory_gb: float, gpus: int, storage_gb: float = 0.0) -> None:
        self.total = Request(cpu, memory_gb, gpus, storage_gb)
        self._used = Request(0.0, 0.0, 0, 0.0)
        self._cond = threading.Condition()

    def fits(self, request: Request) -> bool:
        """Could this node ever run it?"""
        return request.within(self.total)

    def _free(self, request: Request) -> bool:
        return self._used.plus(request).within(self.total)

    @contextmanager
    def hold(self, request: Request) -> Iterator[None]:
        with self._cond:
            self._cond.wait_for(lambda: self._free(request))
            self._used = self._used.plus(request)
        try:
            yield
        finally:
            with self._cond:
                self._used = self._used.plus(request, -1)
                self._cond.notify_all()

    def allocated(self) -> dict[str, float]:
        with self._cond:
            used = self._used
        return {
            "cpu_cores": round(used.cpu, 6),
            "memory_gb": round(used.memory_gb, 6),
            "gpus": used.gpu,
            "storage_gb": round(used.storage_gb, 6),
        }


def hostname() -> str:
    return socket.gethostname()


@dataclass
class NodeSpec:
    """What a node registers: identity, role, pool, real resources and extra info."""

    node_id: str
    role: str  # gateway | worker
    pool: str | None = None
    address: str = ""
    resources: dict[str, Any] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of_this_machine(
        cls,
        node_id: str,
        role: str,
        pool: str | None = None,
        address: str = "",
        gpus: list[dict[str, Any]] | None = None,
    ) -> NodeSpec:
        devices = gpus or []
        return cls(
            node_id=node_id,
            role=role,
            pool=pool,
            address=address or hostname(),
            resources={
                "cpu_cores": host.cpu_cores(),
                "memory_gb": host.memory_gb(),
                "gpus": len(devices),
                "gpu_devices": devices,
            },
            info={"pid": os.getpid(), "host": hostname()},
        )


class Reaper:
    """Marks silent nodes down and puts their work back in the queue."""

    def __init__(self, store: Store, resend: Callable[[TaskRecord], None], timeout_seconds: float) -> None:
        self.store, self.resend, self.timeout = store, resend, timeout_seconds

    def tick(self) -> list[str]:
        downed = self.store.nodes.mark_stale_down(utc_now() - timedelta(seconds=self.timeout))
        for node_id in downed:
            self.requeue(node_id)
        return downed

    def requeue(self, node_id: str) -> int:
        """Running tasks of `node_id` -> pending -> queue; then its pool's pending tasks again."""
        node = self.store.nodes.get(node_id)
        moved = 0
        for task in self.store.scheduling.running_on(node_id):
            if task.type == "batch":
                self.resend(task)  # items not finished yet are sent again
                continue
            if self.store.lifecycle.transition(
                task.task_id,
                from_statuses=(RUNNING,),
                to_status=PENDING,
                match={"executed_on": node_id, "attempt": task.attempt},
                message=f"node {node_id} stopped heartbeating; attempt {task.attempt} re-queued",
                progress=0,
                sent_at=utc_now(),
            ):
                moved += 1
                self.resend(task)
        if node is not None and node.role == "worker" and node.pool:
            for task in self.store.scheduling.unfinished(statuses=(PENDING,), pool=node.pool):
                self.resend(task)
        if moved:
            logger.warning("node %s is down: %d running tasks re-queued", node_id, moved)
        return moved


class NodeAgent:
    """Registers one node, heartbeats for it and runs the reaper and the reconciler, on
    one daemon thread."""

    def __init__(
        self,
        store: Store,
        spec: NodeSpec,
        heartbeat: HeartbeatConfig,
        *,
        running: Callable[[], int] = lambda: 0,
        details: Callable[[], dict[str, Any]] = dict,
        on_status: Callable[[str], None] | None = None,
        on_beat: Callable[[], None] | None = None,
        reaper: Reaper | None = None,
        reconciler: Reconciler | None = None,
    ) -> None:
        self.store, self.spec, self.heartbeat = store, spec, heartbeat
        self._running, self._details, self._on_status, self.reaper = running, details, on_status, reaper
        self.reconciler = reconciler
        self._on_beat = on_beat
        self.status = ACTIVE
        self.started_at = utc_now()
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def node_id(self) -> str:
        return self.spec.node_id

    def register(self) -> None:
        self.store.nodes.upsert(
            NodeRecord(
                node_id=self.spec.node_id,
                role=self.spec.role,
                status=ACTIVE,
                address=self.spec.address,
                started_at=self.started_at,
                pool=self.spec.pool,
                last_heartbeat=utc_now(),
                resources=self.spec.resources,
                tasks_running=self._running(),
                info={**self.spec.info, **self._details()},
            )
        )
        self._set_status(ACTIVE)

    def start(self) -> None:
        self.register()
        self._stopped.clear()
        self._thread = threading.Thread(target=self._loop, name=f"grey-node-{self.spec.role}", daemon=True)
        self._thread.start()

    def stop(self, mark_down: bool = True) -> None:
        """Stop heartbeating; `mark_down` (a clean stop): the node is down at once, and the
        coordinator lease, if it held it, is released. Without it (a crash, in tests) its
        peers notice by themselves."""
        self._stopped.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        if mark_down:
            try:
                self.store.nodes.set_status(self.spec.node_id, DOWN)
            except Exception:
                logger.warning("could not mark node %s down", self.spec.node_id, exc_info=True)
            if self.reconciler is not None:
                self.reconciler.release(self.spec.node_id)

    def beat(self) -> None:
        """One heartbeat (then the reaper, then the reconciler if this node holds the
        coordinator lease); re-registers a node that was given up on."""
        status = self.store.nodes.heartbeat(
            self.spec.node_id, utc_now(), self._running(), info={**self.spec.info, **self._details()}
        )
        if status is None or status == DOWN:
            logger.warning("node %s was marked down; registering again", self.spec.node_id)
            self.register()
        else:
            self._set_status(status)
        if self._on_beat is not None:
            self._on_beat()
        if self.reaper is not None:
            self.reaper.tick()
        if self.reconciler is not None:
            self.reconciler.tick(self.spec.node_id)

    def _set_status(self, status: str) -> None:
        if status != self.status:
            self.status = status
            if self._on_status is not None:
                self._on_status(status)

    def _loop(self) -> None:
        while not self._stopped.wait(self.heartbeat.interval_seconds):
            try:
                self.beat()
            except Exception as error:
                if self.reconciler is not None and is_unavailable(error):
                    self.reconciler.lost_contact()
                logger.warning("heartbeat of %s failed", self.spec.node_id, exc_info=True)
