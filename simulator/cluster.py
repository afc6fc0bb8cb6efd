"""The cluster's state in the model: task classes and the tasks in flight, nodes with slots
and resources, and per pool the `{pool}.{priority}` queues plus time-weighted counters (queue,
busy, in system, capacity). One module, since tasks, nodes and pools refer to each other.

`__slots__` keeps the per-task records small and fast: there is one per task in the system,
none for finished tasks."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING

from runtime.config import PRIORITIES, ClusterConfig

if TYPE_CHECKING:
    import simpy

    from simulator.gateway import Tenant

OK, FAILED, TIMED_OUT = 0, 1, 2
NPRI = len(PRIORITIES)


class TaskClass:
    """What the model needs to know about a (function, priority, request) combination."""

    __slots__ = (
        "cpu",
        "fail_p",
        "function",
        "gpu",
        "key",
        "mem",
        "pool",
        "pri",
        "reject",
        "sample",
        "timeout",
    )

    def __init__(
        self,
        function: str,
        pri: int,
        pool: Pool,
        cpu: float,
        mem: float,
        gpu: int,
        timeout: float,
        fail_p: float,
        sample: Callable[[], float] | None,
    ) -> None:
        self.function = function
        self.pri = pri
        self.pool = pool
        self.cpu = cpu
        self.mem = mem
        self.gpu = gpu
        self.timeout = timeout
        self.fail_p = fail_p
        self.sample = sample
        self.key = pool.idx * NPRI + pri
        self.reject = pool.refuses(cpu, mem, gpu)


class Task:
    """One submitted task while it is in the system (dropped when it finishes)."""

    __slots__ = (
        "attempt",
        "cls",
        "ev",
        "measured",
        "node",
        "outcome",
        "svc",
        "t_arr",
        "t_enq",
        "tenant",
        "wait",
    )

    def __init__(self, cls: TaskClass, tenant: Tenant, svc: float | None, now: float, measured: bool) -> None:
        self.cls = cls
        self.tenant = tenant
        self.svc = svc
        self.t_arr = now
        self.t_enq = now
        self.wait = 0.0
        self.attempt = 0
        self.measured = measured
        self.node: Node | None = None
        self.ev: simpy.Event | None = None
        self.outcome = OK


#: Slack for float sums of cores / memory released and taken back.
EPS = 1e-9


class Node:
    """A worker node: threads (slots) and the resources task requests are placed against.

    Like the runtime's ResourceGate, a thread that took a task too big for what is free on
    its node holds on to it in `gate` until enough is released there.
    """

    __slots__ = (
        "cpu",
        "fetched",
        "free_cpu",
        "free_gpus",
        "free_mem",
        "free_threads",
        "gate",
        "gpus",
        "idx",
        "last_fetch",
        "mem",
        "outstanding",
        "pool",
        "running",
        "threads",
        "up",
    )

    def __init__(self, pool: Pool, idx: int, threads: int, cpu: float, mem: float, gpus: int) -> None:
        self.pool = pool
        self.idx = idx
        self.threads = threads
        self.cpu = cpu
        self.mem = mem
        self.gpus = gpus
        self.up = True
        # A dict, not a set: it keeps start order, so re-queueing after a failure is the
        # same in every run (a set of objects iterates in memory-address order).
        self.running: dict[Task, None] = {}
        self.gate: deque[Task] = deque()
        # With prefetch (simulator/model.py): per priority, the messages this node's consumer
        # fetched that no thread has taken yet, and how many it holds unacknowledged.
        self.fetched: list[deque[Task]] = [deque() for _ in range(NPRI)]
        self.outstanding = [0] * NPRI
        self.last_fetch = [0] * NPRI  # order of its consumers' last fetches (0: none yet)
        self.reset()

    def reset(self) -> None:
        self.free_threads = self.threads
        self.free_cpu = self.cpu
        self.free_mem = self.mem
        self.free_gpus = self.gpus

    def fits(self, cpu: float, mem: float, gpu: int) -> bool:
        """Is this much free on the node now?"""
        return self.free_cpu + EPS >= cpu and self.free_mem + EPS >= mem and self.free_gpus >= gpu


class Pool:
    """A pool's nodes, its priority queues and its time-weighted counters."""

    __slots__ = (
        "area_busy",
        "area_busy_gpus",
        "area_gpus_up",
        "area_nodes_up",
        "area_q",
        "area_sys",
        "area_threads_up",
        "avail",
        "busy",
        "busy_gpus",
        "free_threads",
        "gpus_up",
        "idx",
        "last",
        "last_cap",
        "name",
        "nodes",
        "nodes_up",
        "nsys",
        "qlen",
        "queues",
        "strict",
        "threads_up",
        "window",
    )

    def __init__(self, idx: int, name: str, cfg: ClusterConfig) -> None:
        pc = cfg.pool(name)
        self.idx = idx
        self.name = name
        self.strict = cfg.queues.policy == "strict"
        self.queues: list[deque[Task]] = [deque() for _ in range(NPRI if self.strict else 1)]
        self.nodes = [
            Node(self, i, pc.threads_per_node, pc.cpu_cores, pc.memory_gb_per_node, pc.gpus_per_node)
            for i in range(pc.nodes)
        ]
        # Up nodes with a free thread, in the order they became free (placement order).
        self.avail: dict[int, Node] = {n.idx: n for n in self.nodes}
        self.free_threads = pc.threads_per_node * pc.nodes
        self.threads_up = self.free_threads
        self.gpus_up = pc.gpus_per_node * pc.nodes
        self.nodes_up = pc.nodes
        self.qlen = 0
        self.busy = 0
        self.busy_gpus = 0
        self.nsys = 0
        self.last = 0.0
        self.last_cap = 0.0
        self.window: dict[str, float] = {}
        self.zero()

    def refuses(self, cpu: float, mem: float, gpu: int) -> str | None:
        """Why no node of this pool could ever run such a request (None when one could)."""
        if not self.nodes:
            return "no_capacity"
        n = self.nodes[0]
        if cpu > n.cpu + EPS or mem > n.mem + EPS or gpu > n.gpus:
            return "unschedulable"
        return None

    def zero(self) -> None:
        self.area_q = self.area_busy = self.area_sys = 0.0
        self.area_threads_up = self.area_nodes_up = 0.0
        self.area_busy_gpus = self.area_gpus_up = 0.0

    def advance(self, now: float) -> None:
        """Accumulate the time-weighted task counters up to `now` (call before any change)."""
        dt = now - self.last
        if dt > 0:
            self.area_q += self.qlen * dt
            self.area_busy += self.busy * dt
            self.area_sys += self.nsys * dt
            self.area_busy_gpus += self.busy_gpus * dt
            self.last = now

    def advance_capacity(self, now: float) -> None:
        """The same for capacity, which changes only when nodes fail or recover."""
        dt = now - self.last_cap
        if dt > 0:
            self.area_threads_up += self.threads_up * dt
            self.area_nodes_up += self.nodes_up * dt
            self.area_gpus_up += self.gpus_up * dt
            self.last_cap = now

    def snapshot(self) -> dict[str, float]:
        return {
            "q": self.area_q,
            "busy": self.area_busy,
            "sys": self.area_sys,
            "threads_up": self.area_threads_up,
            "nodes_up": self.area_nodes_up,
            "busy_gpus": self.area_busy_gpus,
            "gpus_up": self.area_gpus_up,
        }
