"""Worker pools: a Dramatiq Worker consuming one pool's queues, as one node.

`WorkerPool` runs in-process (the embedded cpu pool of `grey serve`, tests). `grey worker`
starts worker *processes* with Dramatiq's CLI semantics (`--processes`, `--threads`,
`--queues`), each one a `WorkerPool` and a node of its own; a GPU pool starts one process
per GPU, pinned with CUDA_VISIBLE_DEVICES. A tee pool's node runs its tasks in a (simulated)
TEE (runtime.execution.tee): it attests itself before consuming, renews its attestation at
its heartbeats, consumes only while attested, and writes each completion with its proof.

At every heartbeat a pool renews the leases of the attempts it runs (one UPDATE). Stopping
is bounded (`stop(grace_seconds)`): it takes no new work (prefetched messages go back to
the broker), lets running tasks finish for the grace, then interrupts what still runs
and hands those attempts back to pending (no retry spent) for another worker.
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
import time
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import dramatiq
from dramatiq.common import iter_queue

from runtime.config import PRIORITIES, ClusterConfig
from runtime.execution import host
from runtime.execution.actors import Dispatch
from runtime.execution.batches import Batches
from runtime.execution.brokers import remove_worker_middleware
from runtime.execution.containers.probe import Capability, probe_once, storage_gb
from runtime.execution.containers.runner import ContainerRunner
from runtime.execution.containers.settings import ContainerSettings
from runtime.execution.containers.sweep import sweep
from runtime.execution.containers.task import ContainerTasks
from runtime.execution.events import EventBus
from runtime.execution.executor import Executor
from runtime.execution.functions import load_builtins
from runtime.execution.gpu import GpuDevice, refresh
from runtime.execution.interrupts import GRACE_SECONDS, Interrupter
from runtime.execution.nodes import ACCEPTING, DRAINING, NodeAgent, NodeSpec, Reaper, ResourceGate, hostname
from runtime.execution.placement.boot import start_placement
from runtime.execution.placement.node import PlacementNode
from runtime.execution.profiler import ProfilerSampler, placement_gpus, start_sampler
from runtime.execution.queues import container_queues, node_pool, node_queues, pool_queues
from runtime.execution.reconciler import Reconciler
from runtime.execution.tee.attester import Attester
from runtime.execution.tee.node import TeeNode
from runtime.execution.tee.service import DOORBELL_PREFIX, answer_challenges
from runtime.execution.tee.settings import TeeSettings
from runtime.store import Store
from runtime.store.coltypes import utc_now
from runtime.store.records import CANCELLED, RUNNING

logger = logging.getLogger("grey.workers")

_POOLS_STARTED = itertools.count()

#: Idle wake-up of worker and consumer threads (ms); Redis polls urgent queues faster still.
WORKER_TIMEOUT_MS = 100
#: Running tasks get this long to finish when a pool stops (GREY_SHUTDOWN_GRACE_SECONDS).
DEFAULT_GRACE_SECONDS = 20.0
#: After the grace, interrupted tasks get this long to hand themselves back.
HAND_BACK_SECONDS = GRACE_SECONDS + 1.0


class _SeveralWorkers(logging.Filter):
    """Several pools in one process (`grey serve`: cpu and tee) each add their Dramatiq
    Worker's middleware to the one broker; each consumes only its own queues, so Dramatiq's
    warning about a middleware added twice is noise there."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "_WorkerMiddleware" not in record.getMessage()


_SEVERAL_WORKERS = _SeveralWorkers()


@dataclass(frozen=True)
class PoolOptions:
    pool: str = "cpu"
    threads: int = 8
    priorities: tuple[str, ...] = PRIORITIES
    device: GpuDevice | None = None
    node_id: str | None = None
    address: str = ""
    tee: TeeSettings | None = None  # tee pool: its settings (None: from the environment)
    containers: ContainerSettings | None = None  # None: from the environment (GREY_CONTAINER_*)
    attester: Attester | None = None  # tee pool: None for the simulated SGX attester
    placement: bool = False  # a gswarm placement node: devices, byte server, queues node.<node_id>.*
    placement_only: bool = False  # consumes only its node queues (grey serve's in-process node1)

    def default_node_id(self) -> str:
        where = f"gpu{self.device.index}" if self.device is not None else self.pool
        nth = next(_POOLS_STARTED)  # several pools in one process (tests) are several nodes
        return f"grey-worker-{hostname()}-{where}-{os.getpid()}" + (f"-{nth}" if nth else "")


def _container_settings(options: PoolOptions) -> tuple[ContainerSettings, str | None]:
    """The pool's container settings; settings the operator got wrong make the node report
    that it cannot run containers, and why, rather than stop it from starting."""
    if options.containers is not None:
        return options.containers, None
    try:
        return ContainerSettings.from_env(), None
    except ValueError as error:
        logger.warning("container settings: %s", error)
        return ContainerSettings(enabled=False), f"invalid container settings: {error}"


class WorkerPool:
    """One Dramatiq Worker for one pool, registered as one node; started and stopped explicitly.

    It consumes from `dispatch`'s broker, runs what it receives with an executor attached
    to `dispatch`, hears cancel requests on `bus`, and its node runs `reaper` and
    `reconciler` on each beat.
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
        reconciler: Reconciler | None = None,
    ) -> None:
        self.options, self.store, self.dispatch, self.bus = options, store, dispatch, bus
        self.node_id = options.node_id or options.default_node_id()
        pool_config = cluster.pool(options.pool)
        gpus = 1 if options.device is not None else 0
        self.container_settings, settings_error = _container_settings(options)
        self.capability = self._probe(settings_error)
        self.gate = ResourceGate(
            cpu=pool_config.cpu_cores_per_node or float(options.threads),
            memory_gb=host.memory_gb() or pool_config.memory_gb_per_node,
            gpus=gpus,
            storage_gb=self.capability.storage_gb,
        )
        self.interrupter = Interrupter()
        self.tee: TeeNode | None = None
        if options.pool == "tee":
            self.tee = TeeNode.simulated(
                self.node_id, options.tee or TeeSettings.from_env(), store, options.attester
            )
        self.executor = Executor(
            store,
            dispatch,
            node_id=self.node_id,
            gate=self.gate,
            interrupter=self.interrupter,
            retry=cluster.retry,
            batches=Batches,
            device=options.device,
            heartbeat=cluster.heartbeat,
            prover=self.tee,
            containers=ContainerTasks(self.container_settings, store) if self.capability.available else None,
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
            containers=self.capability.available,
            containers_reason=self.capability.reason,
        )
        spec.resources["storage_gb"] = self.capability.storage_gb
        self.agent = NodeAgent(
            store,
            spec,
            cluster.heartbeat,
            running=lambda: len(self.interrupter.running_task_ids()),
            details=self._details,
            on_status=self._on_status,
            on_beat=self._on_beat,
            reaper=reaper,
            reconciler=reconciler,
        )
        self._worker: dramatiq.Worker | None = None
        self._lock = threading.Lock()
        self._stopping = self._killed = False
        self.profiler: ProfilerSampler | None = None  # samples the node while a profiling session is active
        self.placement: PlacementNode | None = None  # its devices and byte server (gswarm), once started

    @property
    def queues(self) -> list[str]:
        """Its pool's queues, and their container queues when its probe ran a container."""
        if self.options.placement_only:
            return node_queues(self.node_id)
        queues = pool_queues(self.options.pool, self.options.priorities)
        if self.capability.available:
            queues += container_queues(self.options.pool, self.options.priorities)
        if self.options.placement:
            queues += node_queues(self.node_id)
        return queues

    def _probe(self, settings_error: str | None) -> Capability:
        """Can this node run containers? (A tee pool runs none: they are never routed there.)"""
        if self.options.pool == "tee" or self.options.placement_only or settings_error is not None:
            kind = "placement-only" if self.options.placement_only else "tee"
            reason = settings_error or f"{kind} pools run no container tasks"
            return Capability(False, reason, storage_gb(self.container_settings))
        return probe_once(self.container_settings)

    def _sweep_containers(self) -> None:
        """Leftover containers of attempts that are over (a worker that died): removed, at
        most once a minute per process (runtime.execution.containers.sweep)."""
        if self.capability.available:
            sweep(ContainerRunner(self.container_settings), self.store)

    def start(self) -> WorkerPool:
        # Task modules (numpy and friends: seconds) load now, not under the first task.
        load_builtins()
        self._sweep_containers()
        if not self.options.placement_only:
            # A placement-only node (grey serve's in-process node1) shares its process with
            # the real cpu pool: it must not take that pool's messages over.
            self.dispatch.attach(self.options.pool, self.executor)
        self.bus.on_cancel(self._on_cancel)
        self.interrupter.start()
        self.agent.start()
        if self.options.placement or self.options.placement_only:
            self.placement = start_placement(self.store.engine, self.node_id)
            self.dispatch.declare_node_pool(node_pool(self.node_id))
            self.dispatch.attach(node_pool(self.node_id), self.executor)
        self.profiler = start_sampler(self.store.engine, self.node_id, self._gpus(), pool=self.options.pool)
        if self.tee is not None:
            try:
                self.tee.attest()
            except Exception:  # not attested: consumes nothing; retried at each heartbeat
                logger.warning("TEE node %s could not attest", self.node_id, exc_info=True)
        self._consume()
        return self

    def stop(self, grace_seconds: float = DEFAULT_GRACE_SECONDS) -> list[str]:
        """Bounded stop: no new work, running tasks get `grace_seconds` to finish, then
        what still runs is interrupted and handed back to pending (its attempt recorded,
        no retry spent) and sent again for another worker. Returns the ids of the tasks
        still running after the grace (interrupted).

        Heartbeats, and so lease renewals, go on until the end; the node is marked
        draining meanwhile and down at the end. Takes at most the grace plus ~2 s (the
        hand-back wait, `HAND_BACK_SECONDS`, and Dramatiq's own stop).
        """
        killed = self._killed  # a crash (tests): nothing left to drain
        self._stopping = True
        deadline = time.monotonic() + (0.0 if killed else grace_seconds)
        try:
            if not killed:
                self.store.nodes.set_status(self.node_id, DRAINING)
        except Exception:
            logger.warning("could not mark node %s draining", self.node_id, exc_info=True)
        with self._lock:
            worker, self._worker = self._worker, None
        if worker is not None:  # (None: paused by a drain or quarantine, or stopped before)
            self._stop_taking_work(worker)
        self._wait_idle(worker, deadline)
        running = set() if killed else {task_id for task_id, _ in self.interrupter.running_attempts()}
        for task_id in running:
            self.interrupter.interrupt(task_id, "shutdown")
        if running:
            logger.warning("node %s: %d tasks still running after the grace", self.node_id, len(running))
            self._wait_idle(worker, time.monotonic() + HAND_BACK_SECONDS)
            self._hand_back_stuck()
        if worker is not None:
            worker.stop(timeout=500)  # Dramatiq's own stop: requeues what is left, closes consumers
            remove_worker_middleware(self.dispatch.broker, worker)
        self.agent.stop(mark_down=True)
        if self.profiler is not None:
            self.profiler.stop()
        self.interrupter.stop()
        self.bus.remove_cancel_handler(self._on_cancel)
        self.dispatch.detach(self.options.pool, self.executor)
        if self.placement is not None:
            self.dispatch.detach(node_pool(self.node_id), self.executor)
            self.placement.stop()
        return sorted(running)

    def _stop_taking_work(self, worker: dramatiq.Worker) -> None:
        """Worker threads take no new message (each finishes the one it runs); consumers
        stop fetching; what they had fetched goes back to the broker now, not after the
        grace. (Dramatiq's `Worker.stop` would keep consuming while the threads finish.)"""
        for thread in worker.workers:
            thread.stop()
        consumers = list(worker.consumers.values())
        for consumer in consumers:
            consumer.stop()
        deadline = time.monotonic() + 2.0  # a consumer waiting to reconnect may not return sooner
        for consumer in consumers:
            consumer.join(timeout=max(0.0, deadline - time.monotonic()))
        by_queue: dict[str, list[Any]] = defaultdict(list)
        for item in iter_queue(worker.work_queue):  # fetched, not started
            by_queue[item.message.queue_name].append(item.message)
        for name, consumer in worker.consumers.items():  # delayed messages held in memory
            by_queue[name] += [item.message for item in iter_queue(consumer.delay_queue)]
        for name, messages in by_queue.items():
            if not messages:
                continue
            try:
                worker.consumers[name].requeue_messages(messages)
            except Exception:  # redelivered once the broker notices (duplicates are harmless)
                logger.warning("could not requeue %d messages of %s", len(messages), name, exc_info=True)

    def _wait_idle(self, worker: dramatiq.Worker | None, deadline: float) -> None:
        """Until every worker thread has finished its message and no task runs, or `deadline`."""
        for thread in worker.workers if worker is not None else ():
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
        while self.interrupter.running_task_ids() and time.monotonic() < deadline:
            time.sleep(0.05)

    def _hand_back_stuck(self) -> list[str]:
        """Attempts still running after their interrupt (a thread inside C code that never
        returns to Python): handed back from here; the stuck thread can no longer record
        anything for them (its attempt no longer matches). Batches keep their claim: their
        lease brings their items back."""
        stuck = self.interrupter.running_attempts()
        handed: list[str] = []
        for task_id, attempt in stuck:
            task = self.store.tasks.get(None, task_id)
            if task is None or task.status != RUNNING or task.type == "batch":
                continue
            if self.executor.hand_back(task, attempt, "its worker stopped (the task did not stop)"):
                handed.append(task_id)
        return handed

    def kill(self) -> None:
        """As close to a crash as threads allow (tests): running tasks are abandoned unrecorded,
        heartbeats stop, and the node is *not* marked down: its peers must notice."""
        self._stopping = self._killed = True
        self.agent.stop(mark_down=False)
        if self.profiler is not None:
            self.profiler.stop(disconnect=False)
        for task_id in self.interrupter.running_task_ids():
            self.interrupter.interrupt(task_id, "lost")
        self._pause(0)
        self.interrupter.stop()
        self.bus.remove_cancel_handler(self._on_cancel)

    # -- consuming ------------------------------------------------------------------------

    def _consume(self) -> None:
        if self.tee is not None and not self.tee.ready():
            return  # a TEE node takes work only while attested
        with self._lock:
            if self._worker is not None or self._stopping:
                return
            broker_logger = logging.getLogger(f"dramatiq.broker.{type(self.dispatch.broker).__name__}")
            broker_logger.addFilter(_SEVERAL_WORKERS)
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
        if self._stopping:
            return
        if status in ACCEPTING:
            logger.info("node %s is %s again: consuming", self.node_id, status)
            self._consume()
        else:
            logger.info("node %s is %s: taking no new work", self.node_id, status)
            threading.Thread(target=self._pause, name="grey-pause", daemon=True).start()

    def _gpus(self) -> list[GpuDevice] | None:
        """The node's GPUs for its profiler: its pinned device, else its placement node's `gpuN`
        (emulated ones stay emulated), else the machine's (None)."""
        if self.options.device is not None:
            return [self.options.device]
        if self.placement is not None:
            return placement_gpus(self.placement.devices)
        return None

    @property
    def consuming(self) -> bool:
        return self._worker is not None

    # -- cancel and heartbeat details ---------------------------------------------------------

    def _on_cancel(self, task_id: str) -> None:
        if task_id.startswith(DOORBELL_PREFIX):
            if self.tee is not None and task_id == DOORBELL_PREFIX + self.node_id:
                threading.Thread(target=self._answer, name="grey-tee-challenge", daemon=True).start()
            return
        self.interrupter.interrupt(task_id, "cancelled")

    def _on_beat(self) -> None:
        self.renew_leases()
        self._sweep_cancelled()
        self._sweep_containers()
        if self.tee is not None:
            self._tee_beat(self.tee)

    def _answer(self) -> None:
        if self.tee is not None:
            try:
                answer_challenges(self.tee, self.store)
            except Exception:
                logger.warning("TEE node %s could not answer a challenge", self.node_id, exc_info=True)

    def _tee_beat(self, tee: TeeNode) -> None:
        """Renew the attestation when due; take TEE work only while attested."""
        ready = tee.beat()
        answer_challenges(tee, self.store)
        if self._stopping:
            return
        if not ready and self.consuming:
            logger.warning("TEE node %s is not attested: taking no TEE work", self.node_id)
            threading.Thread(target=self._pause, name="grey-pause", daemon=True).start()
        elif ready and not self.consuming and self.agent.status in ACCEPTING:
            self._consume()

    def renew_leases(self) -> int:
        """Extends the lease of every attempt running here: one UPDATE."""
        attempts = self.interrupter.running_attempts()
        if not attempts:
            return 0
        return self.store.lifecycle.renew_leases(attempts, self.executor.lease_until(utc_now()))

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
                "storage_gb": self.gate.total.storage_gb,
            },
            "containers": self.capability.available,
            "containers_reason": self.capability.reason,
            "allocated": self.gate.allocated(),
            "consuming": self.consuming,
            "cpu_percent": host.cpu_percent(),
            "memory_percent": host.memory_percent(),
        }
        if self.options.device is not None:
            device = refresh(self.options.device)
            details["gpu"] = device.as_dict()
        if self.tee is not None:
            details["tee"] = self.tee.summary()
        return details
