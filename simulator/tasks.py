"""The per-task records of the model: a task class (what is known ahead) and a task (one
submission in flight).  `__slots__` keeps them small and fast: there is one per task in the
system, none for finished tasks."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from runtime.config import PRIORITIES

if TYPE_CHECKING:
    import simpy

    from simulator.cluster import Node, Pool
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
