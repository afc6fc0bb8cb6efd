"""Worker pools: a Dramatiq Worker consuming one pool's queues, as one node.

`WorkerPool` runs in-process (the embedded cpu pool of `grey serve`, tests). `grey worker`
starts worker *processes* with Dramatiq's CLI semantics (`--processes`, `--threads`,
`--queues`), each one a `WorkerPool` and a node of its own; a GPU pool starts one process
per GPU, pinned with CUDA_VISIBLE_DEVICES.
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
from dataclasses import dataclass
from typing import Any

import dramatiq

from runtime.config import PRIORITIES, ClusterConfig
from runtime.execution import host
from runtime.execution.actors import Dispatch
from runtime.execution.batches import Batches
from runtime.execution.brokers import remove_worker_middleware
from runtime.execution.events import EventBus
from runtime.execution.executor import Executor
from runtime.execution.gpu import GpuDevice, refresh
from runtime.execution.interrupts import Interrupter
from runtime.execution.nodes import ACCEPTING, NodeAgent, NodeSpec, Reaper, ResourceGate, hostname
from runtime.execution.queues import pool_queues
from runtime.store import Store
from runtime.store.records import CANCELLED

logger = logging.getLogger("grey.workers")

_POOLS_STARTED = itertools.count()

#: Idle wake-up of worker and consumer threads (ms); Redis polls urgent queues faster still.
WORKER_TIMEOUT_MS = 100


@dataclass(frozen=True)
class PoolOptions:
    pool: str = "cpu"
    threads: int = 8
    priorities: tuple[str, ...] = PRIORITIES
    device: GpuDevice | None = None
    node_id: str | None = None
    address: str = ""

    def default_node_id(self) -> str:
        where = f"gpu{self.device.index}" if self.device is not None else self.pool
        nth = next(_POOLS_STARTED)  # several pools in one process (tests) are several nodes
        return f"grey-worker-{hostname()}-{where}-{os.getpid()}" + (f"-{nth}" if nth else "")


class WorkerPool:
    """One Dramatiq Worker for one pool, registered as one node; started and stopped explicitly.

    It consumes from `dispatch`'s broker, runs what it receives with an executor attached
    to `dispatch`, hears cancel requests on `bus`, and its node runs `reaper` on each beat.
    """

    def __init__(
        self,
        options: PoolOptions,
        *,
        store: Store,
        dispatch: Dispatch,
        bus: EventBus,
        cluster: ClusterConfig,
        reaper: Reaper | None,
    ) -> None:
        self.options, self.store, self.dispatch, self.bus = options, store, dispatch, bus
        self.node_id = options.node_id or options.default_node_id()
        pool_config = cluster.pool(options.pool)
        gpus = 1 if options.device is not None else 0
        self.gate = ResourceGate(
            cpu=pool_config.cpu_cores_per_node or float(options.threads),
            memory_gb=host.memory_gb() or pool_config.memory_gb_per_node,
            gpus=gpus,
        )
        self.interrupter = Interrupter()
        self.executor = Executor(
            store,
            dispatch,
            node_id=self.node_id,
            gate=self.gate,
            interrupter=self.interrupter,
            retry=cluster.retry,
            batches=Batches,
            device=options.device,
        )
        spec = NodeSpec.of_this_machine(
            self.node_id,
            "worker",
            pool=options.pool,
            address=options.address,
            gpus=[options.device.as_dict()] if options.device is not None else None,
        )
        spec.info.update(
            threads=options.threads,
            queues=self.queues,
            emulated=bool(options.device and options.device.emulated),
        )
        self.agent = NodeAgent(
            store,
            spec,
            cluster.heartbeat,
            running=lambda: len(self.interrupter.running_task_ids()),
            details=self._details,
            on_status=self._on_status,
            on_beat=self._sweep_cancelled,
            reaper=reaper,
        )
        self._worker: dramatiq.Worker | None = None
        self._lock = threading.Lock()

    @property
    def queues(self) -> list[str]:
        return pool_queues(self.options.pool, self.options.priorities)

    def start(self) -> WorkerPool:
        self.dispatch.attach(self.options.pool, self.executor)
        self.bus.on_cancel(self._on_cancel)
        self.interrupter.start()
        self.agent.start()
        self._consume()
        return self

    def stop(self, timeout_ms: int = 10000) -> None:
        self.agent.stop(mark_down=True)
        self._pause(timeout_ms)
        self.interrupter.stop()
        self.bus.remove_cancel_handler(self._on_cancel)
        self.dispatch.detach(self.options.pool, self.executor)

    def kill(self) -> None:
        """As close to a crash as threads allow (tests): running tasks are abandoned unrecorded,
        heartbeats stop, and the node is *not* marked down: its peers must notice."""
        self.agent.stop(mark_down=False)
        for task_id in self.interrupter.running_task_ids():
            self.interrupter.interrupt(task_id, "lost")
        self._pause(0)
        self.interrupter.stop()
        self.bus.remove_cancel_handler(self._on_cancel)

    # -- consuming ------------------------------------------------------------------------

    def _consume(self) -> None:
        with self._lock:
            if self._worker is not None:
                return
            worker = dramatiq.Worker(
                self.dispatch.broker,
                queues=set(self.queues),
                worker_threads=self.options.threads,
                worker_timeout=WORKER_TIMEOUT_MS,
            )
            worker.start()
            self._worker = worker

    def _pause(self, timeout_ms: int = 600000) -> None:
        """Stop taking work: running tasks finish, prefetched messages go back to the broker."""
        with self._lock:
            worker, self._worker = self._worker, None
        if worker is None:
            return
        worker.stop(timeout=timeout_ms)
        remove_worker_middleware(self.dispatch.broker, worker)

    def _on_status(self, status: str) -> None:
        if status in ACCEPTING:
            logger.info("node %s is %s again: consuming", self.node_id, status)
            self._consume()
        else:
            logger.info("node %s is %s: taking no new work", self.node_id, status)
            threading.Thread(target=self._pause, name="grey-pause", daemon=True).start()

    @property
    def consuming(self) -> bool:
        return self._worker is not None

    # -- cancel and heartbeat details ---------------------------------------------------------

    def _on_cancel(self, task_id: str) -> None:
        self.interrupter.interrupt(task_id, "cancelled")

    def _sweep_cancelled(self) -> None:
        """Without a cross-process bus, a cancel reaches the worker through the store here."""
        running = self.interrupter.running_task_ids()
        if running:
            for task_id, status in self.store.tasks.statuses(None, running).items():
                if status == CANCELLED:
                    self.interrupter.interrupt(task_id, "cancelled")

    def _details(self) -> dict[str, Any]:
        details: dict[str, Any] = {
            "capacity": {
                "cpu_cores": self.gate.total.cpu,
                "memory_gb": self.gate.total.memory_gb,
                "gpus": self.gate.total.gpu,
            },
            "allocated": self.gate.allocated(),
            "consuming": self.consuming,
            "cpu_percent": host.cpu_percent(),
            "memory_percent": host.memory_percent(),
        }
        if self.options.device is not None:
            device = refresh(self.options.device)
            details["gpu"] = device.as_dict()
        return details
