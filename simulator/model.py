"""The twin: gateway limits -> `{pool}.{priority}` queues -> nodes with slots that fail and recover.

It mirrors the runtime's decisions one by one:

- routing: `runtime.config.route_pool` (TEE, else GPU if gpu > 0, else CPU);
- gateway: per-tenant sliding-window-counter submit limit (the runtime's `limits` algorithm)
  and per-second submit quota (429 `rate_limited`), queue-depth and concurrency quotas (503
  `queue_full`), pool without nodes or request no node can hold (409 `unschedulable`);
- dispatch: a free worker slot takes the oldest task of the highest non-empty priority queue
  of its pool (`strict`, non-preemptive), or the oldest task of the pool (`fifo`); like the
  runtime's ResourceGate, the task then waits on that slot's node, holding the thread, until
  its cpu / memory / gpu request fits there;
- transient failures are retried up to `retry.max_retries` times after
  min(base * 2**(k-1) * U(1, 1.25), max) seconds, the runtime's backoff with its jitter;
  an attempt longer than the task's timeout is stopped at the timeout;
- a failed node loses its running tasks, which are re-queued once its heartbeat times out.

For speed the per-task path uses two kernel events (arrival and end of attempt) and plain
callbacks; processes are used only for trace replay, node lives and the sampler.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import simpy

from runtime.config import POOLS, PRIORITIES, ClusterConfig, ConfigError, route_pool
from simulator.arrivals import TraceRow, arrival_times, trace_rows
from simulator.cluster import Node, Pool
from simulator.gateway import Tenant
from simulator.results import REJECT_STATUS, summarize
from simulator.rng import rng_for
from simulator.service import Batched, make_sampler
from simulator.stats import Metric, Series
from simulator.tasks import FAILED, NPRI, OK, TIMED_OUT, Task, TaskClass
from simulator.workload import Trace, Workload, mean_rate

_REASONS = tuple(REJECT_STATUS)
_NKEYS = len(POOLS) * NPRI


@dataclass(frozen=True)
class RunLength:
    """How long to run: `tasks` arrivals in total or until time `until`; the first
    `warmup_tasks` arrivals / `warmup_time` seconds are not measured.  After the measured
    window the run continues (arrivals included) until every measured task has finished, or
    `drain_factor` windows (at least the longest one task can take) have passed; the rest are
    reported as unfinished."""

    tasks: int | None = None
    until: float | None = None
    warmup_tasks: int = 0
    warmup_time: float = 0.0
    drain_factor: float = 1.0

    def __post_init__(self) -> None:
        if (self.tasks is None) == (self.until is None):
            raise ValueError("give exactly one of tasks or until")
        if self.tasks is not None and self.tasks < 1:
            raise ValueError("tasks must be >= 1")
        if self.until is not None and not self.until > 0:
            raise ValueError("until must be > 0")

    @classmethod
    def default_warmup(
        cls,
        tasks: int | None = None,
        until: float | None = None,
        warmup: float | None = None,
        fraction: float = 0.1,
    ) -> RunLength:
        """`warmup` seconds if given, else the first `fraction` of the tasks / of the time."""
        if warmup is not None:
            return cls(tasks=tasks, until=until, warmup_time=warmup)
        if tasks is not None:
            return cls(tasks=tasks, warmup_tasks=int(tasks * fraction))
        return cls(until=until, warmup_time=(until or 0.0) * fraction)


class _Stream:
    """Arrivals of one synthetic stream as timeout callbacks, not a process: resuming a
    generator per arrival costs more than the rest of the arrival's bookkeeping."""

    __slots__ = ("classes", "only", "pick", "submit", "tenant", "timeout", "times")

    def __init__(
        self,
        twin: Twin,
        times: Iterator[float],
        classes: list[TaskClass],
        pick: Callable[[], float],
        tenant: Tenant,
    ) -> None:
        self.times = times
        self.classes = classes
        self.only = classes[0] if len(classes) == 1 else None
        self.pick = pick
        self.tenant = tenant
        self.submit = twin.submit
        self.timeout = twin.env.timeout

    def next(self, now: float) -> None:
        t = next(self.times)
        ev = self.timeout(t - now if t > now else 0.0)
        ev.callbacks.append(self.fire)

    def fire(self, ev: simpy.Event) -> None:
        now = ev.env.now
        cls = self.only or self.classes[int(self.pick())]
        self.submit(cls, self.tenant, None, now)
        self.next(now)


class Twin:
    """One replication of the cluster under a workload."""

    def __init__(
        self,
        cluster: ClusterConfig,
        workload: Workload,
        length: RunLength,
        seed: int = 0,
        replication: int = 0,
        progress: Callable[[int, float], None] | None = None,
    ) -> None:
        self.cfg = cluster
        self.workload = workload
        self.length = length
        self.seed = seed
        self.rep = replication
        self.progress = progress
        self.env = simpy.Environment()
        self.pools = [Pool(i, name, cluster) for i, name in enumerate(POOLS)]
        self.tenants: dict[str, Tenant] = {}
        self._fn_samplers: dict[str, Callable[[], float]] = {}
        self._classes: dict[tuple[Any, ...], TaskClass] = {}
        self._uniform = Batched(rng_for(seed, replication, "attempt-failure").random)
        retry = cluster.retry
        self.max_retries = retry.max_retries
        self.backoff_base = retry.backoff_base_seconds
        self.backoff_max = retry.backoff_max_seconds
        self.detect_delay = cluster.heartbeat.timeout_seconds

        self.n_arrivals = 0
        self.phase = 0  # 0 warm-up, 1 measuring, 2 window closed (draining)
        self.task_limit = length.tasks or 0
        self.warmup_tasks = length.warmup_tasks
        self.warmup_time = length.warmup_time
        self.t0 = self.t1 = 0.0
        self.outstanding = 0
        self.sources = 0
        self.unfinished = 0
        self.soj_sum = 0.0
        self.soj_n = 0
        self.stop = self.env.event()

        zeros = [0] * _NKEYS
        self.c_arr = list(zeros)
        self.c_acc = list(zeros)
        self.c_rej = {r: list(zeros) for r in _REASONS}
        self.c_done = list(zeros)
        self.c_failed = list(zeros)
        self.c_timeout = list(zeros)
        self.c_retry = list(zeros)
        self.c_requeue = list(zeros)
        self.m_wait = [Metric() for _ in range(_NKEYS)]
        self.m_e2e = [Metric() for _ in range(_NKEYS)]
        self._wait_bufs = [m.buf for m in self.m_wait]
        self._e2e_bufs = [m.buf for m in self.m_e2e]
        self.series = Series(self._sample_dt(), len(POOLS))

    # ---------------------------------------------------------------- set-up helpers

    def _sample_dt(self) -> float:
        rates = [mean_rate(s.arrivals) for s in self.workload.streams]
        known = sum(r for r in rates if r)
        horizon = self.length.until
        if horizon is None and known > 0:
            horizon = (self.length.tasks or 0) / known
        return (horizon or 512.0) / 512

    def tenant(self, name: str) -> Tenant:
        t = self.tenants.get(name)
        if t is None:
            t = self.tenants[name] = Tenant(name, self.cfg)
        return t

    def _sampler(self, function: str) -> Callable[[], float]:
        s = self._fn_samplers.get(function)
        if s is None:
            spec = self.workload.functions[function].service
            s = self._fn_samplers[function] = make_sampler(
                spec, rng_for(self.seed, self.rep, f"service:{function}")
            )
        return s

    def task_class(
        self,
        function: str,
        priority: str,
        cpu: float | None = None,
        mem: float | None = None,
        gpu: int | None = None,
        tee: bool | None = None,
    ) -> TaskClass:
        """The class for a function at a priority, with optional request overrides (traces)."""
        key = (function, priority, cpu, mem, gpu, tee)
        cls = self._classes.get(key)
        if cls is not None:
            return cls
        fn = self.workload.functions.get(function)
        res = fn.resources if fn else None
        cpu_ = cpu if cpu is not None else (res.cpu if res else 1.0)
        mem_ = mem if mem is not None else (res.memory_gb if res else 0.5)
        gpu_ = gpu if gpu is not None else (res.gpu if res else 0)
        tee_ = tee if tee is not None else (fn.tee_required if fn else False)
        pool = self.pools[POOLS.index(route_pool(gpu_, tee_))]
        cls = TaskClass(
            function,
            PRIORITIES.index(priority),
            pool,
            cpu_,
            mem_,
            gpu_,
            fn.timeout_seconds if fn else 300.0,
            fn.failure_probability if fn else 0.0,
            self._sampler(function) if fn else None,
        )
        self._classes[key] = cls
        return cls

    # ---------------------------------------------------------------- processes

    def _start_stream(self, index: int) -> None:
        """A synthetic stream: a chain of timeouts, each arrival scheduling the next."""
        stream = self.workload.streams[index]
        classes = [self.task_class(m.function, m.priority) for m in stream.mix]
        times = arrival_times(rng_for(self.seed, self.rep, "arrivals", index), stream.arrivals)  # type: ignore[arg-type]
        if len(classes) == 1:
            pick: Callable[[], float] = lambda: 0  # noqa: E731
        else:
            weights = np.asarray([m.weight for m in stream.mix], dtype=float)
            weights /= weights.sum()
            mix_rng = rng_for(self.seed, self.rep, "mix", index)
            pick = Batched(lambda n: mix_rng.choice(len(classes), n, p=weights))
        _Stream(self, times, classes, pick, self.tenant(stream.tenant)).next(0.0)

    def _trace_process(self, index: int) -> Iterator[simpy.Event]:
        stream = self.workload.streams[index]
        spec = stream.arrivals
        assert isinstance(spec, Trace)
        env = self.env
        default_tenant = stream.tenant
        for row in trace_rows(spec):
            cls = self._trace_class(row, spec.path)
            delay = row.time - env.now
            if delay > 0:
                yield env.timeout(delay)
            self.submit(cls, self.tenant(row.tenant or default_tenant), row.service_time, env.now)
        self.sources -= 1
        if self.sources == 0 and self.phase < 2:
            self._close_window(env.now)

    def _trace_class(self, row: TraceRow, path: str) -> TaskClass:
        if row.function not in self.workload.functions and row.service_time is None:
            raise ConfigError(
                path,
                [
                    (
                        f"time {row.time}",
                        f"function {row.function!r} is not in the workload, so the row needs a service_time",
                    )
                ],
            )
        return self.task_class(row.function, row.priority, row.cpu, row.memory_gb, row.gpu, row.tee_required)

    def _node_life(self, node: Node, mtbf: float, mttr: float) -> Iterator[simpy.Event]:
        rng = rng_for(self.seed, self.rep, f"node:{node.pool.name}", node.idx)
        env = self.env
        while True:
            yield env.timeout(float(rng.exponential(mtbf)))
            self._node_down(node, env.now)
            yield env.timeout(float(rng.exponential(mttr)))
            self._node_up(node, env.now)

    def _sampler_process(self) -> Iterator[simpy.Event]:
        env = self.env
        series = self.series
        pools = self.pools
        while True:
            series.add(env.now, [float(p.qlen) for p in pools])
            yield env.timeout(series.dt)

    # ---------------------------------------------------------------- the task path

    def submit(self, cls: TaskClass, tenant: Tenant, svc: float | None, now: float) -> None:
        """A submit reaches the gateway (the arrival of one task)."""
        n = self.n_arrivals = self.n_arrivals + 1
        if not n & 0x3FFF and self.progress is not None:
            self.progress(n, now)
        if self.phase == 0 and n > self.warmup_tasks and now >= self.warmup_time:
            self._open_window(now)
        self._admit(cls, tenant, svc, now, self.phase == 1)
        if n == self.task_limit and self.phase == 1:
            self._close_window(now)

    def _admit(self, cls: TaskClass, tenant: Tenant, svc: float | None, now: float, measured: bool) -> None:
        k = cls.key
        if measured:
            self.c_arr[k] += 1
        # The rate limiter first, as the API's middleware runs before the handler.
        if tenant.limited and tenant.rate_limited(now):
            if measured:
                self.c_rej["rate_limited"][k] += 1
            return
        if cls.reject is not None or tenant.queued >= tenant.max_queued or tenant.active >= tenant.max_active:
            if measured:
                self.c_rej[cls.reject or "queue_full"][k] += 1
            return
        task = Task(cls, tenant, svc, now, measured)
        if measured:
            self.c_acc[k] += 1
            self.outstanding += 1
        tenant.queued += 1
        tenant.active += 1
        pool = cls.pool
        pool.advance(now)
        pool.nsys += 1
        pool.qlen += 1
        pool.queues[cls.pri if pool.strict else 0].append(task)
        if pool.free_threads:
            self._dispatch(pool, now)

    def _dispatch(self, pool: Pool, now: float) -> None:
        """Free slots take the oldest task of the highest non-empty priority queue.

        As in the runtime, the slot takes the task first and then waits at its node's
        resource gate until the request fits there: a task that does not fit holds the thread.
        """
        queues = pool.queues
        avail = pool.avail
        while pool.free_threads and pool.qlen:
            for q in queues:
                if q:
                    break
            task = q.popleft()
            pool.qlen -= 1
            # Idle threads take turns (round robin over nodes), as idle workers polling the
            # broker share the messages between them.
            node = next(iter(avail.values()))
            node.free_threads -= 1
            del avail[node.idx]
            if node.free_threads:
                avail[node.idx] = node
            pool.free_threads -= 1
            task.tenant.queued -= 1
            task.node = node
            cls = task.cls
            if not node.fits(cls.cpu, cls.mem, cls.gpu):
                node.gate.append(task)
            else:
                self._start(task, node, pool, now)

    def _open_gate(self, node: Node, pool: Pool, now: float) -> None:
        """Resources came free on `node`: tasks waiting there start, in order, if they fit."""
        waiting = node.gate
        node.gate = deque()
        for task in waiting:
            cls = task.cls
            if node.fits(cls.cpu, cls.mem, cls.gpu):
                self._start(task, node, pool, now)
            else:
                node.gate.append(task)

    def _start(self, task: Task, node: Node, pool: Pool, now: float) -> None:
        """The task's thread is held already; take its resources and run one attempt."""
        cls = task.cls
        task.wait += now - task.t_enq
        node.free_cpu -= cls.cpu
        node.free_mem -= cls.mem
        node.free_gpus -= cls.gpu
        node.running[task] = None
        pool.busy += 1
        pool.busy_gpus += cls.gpu
        task.attempt += 1
        svc = task.svc if task.svc is not None else cls.sample()  # type: ignore[misc]
        if cls.fail_p and self._uniform() < cls.fail_p:
            dur = svc * self._uniform()  # the error surfaces part-way through the attempt
            task.outcome = FAILED
        elif svc > cls.timeout:
            dur = cls.timeout
            task.outcome = TIMED_OUT
        else:
            dur = svc
            task.outcome = OK
        ev = self.env.timeout(dur, task)
        ev.callbacks.append(self._on_end)
        task.ev = ev

    def _on_end(self, ev: simpy.Event) -> None:
        task: Task = ev.value
        if task.ev is not ev:
            return  # the node died under it; the task was already taken back
        now = self.env.now
        node: Node = task.node  # type: ignore[assignment]
        cls = task.cls
        pool = cls.pool
        pool.advance(now)
        del node.running[task]
        node.free_threads += 1
        node.free_cpu += cls.cpu
        node.free_mem += cls.mem
        node.free_gpus += cls.gpu
        if node.free_threads == 1:
            pool.avail[node.idx] = node
        pool.free_threads += 1
        pool.busy -= 1
        pool.busy_gpus -= cls.gpu
        if node.gate:
            self._open_gate(node, pool, now)
        task.ev = None
        task.node = None
        outcome = task.outcome
        if outcome == OK:
            self._finish(task, OK, now)
        elif task.attempt <= self.max_retries and (outcome == FAILED or self.cfg.retry.retry_on_timeout):
            self._retry_later(task)
        else:
            self._finish(task, outcome, now)
        if pool.qlen:
            self._dispatch(pool, now)

    def _retry_later(self, task: Task) -> None:
        if task.measured:
            self.c_retry[task.cls.key] += 1
        # runtime/execution/executor.py: base * 2**(retry-1) * U(1, 1.25), capped
        jitter = 1.0 + 0.25 * self._uniform()
        backoff = min(self.backoff_base * 2 ** (task.attempt - 1) * jitter, self.backoff_max)
        ev = self.env.timeout(backoff, task)
        ev.callbacks.append(self._on_retry)

    def _on_retry(self, ev: simpy.Event) -> None:
        self._requeue([ev.value], self.env.now)

    def _requeue(self, tasks: list[Task], now: float) -> None:
        pool = tasks[0].cls.pool
        pool.advance(now)
        for task in tasks:
            task.t_enq = now
            task.tenant.queued += 1
            pool.qlen += 1
            pool.queues[task.cls.pri if pool.strict else 0].append(task)
        self._dispatch(pool, now)

    def _finish(self, task: Task, outcome: int, now: float) -> None:
        task.tenant.active -= 1
        task.cls.pool.nsys -= 1
        if not task.measured:
            return
        k = task.cls.key
        e2e = now - task.t_arr
        if outcome == OK:
            self.c_done[k] += 1
            self._wait_bufs[k].append(task.wait)
            self._e2e_bufs[k].append(e2e)
            if len(self._e2e_bufs[k]) >= 4096:
                self.m_wait[k].flush()
                self.m_e2e[k].flush()
        elif outcome == FAILED:
            self.c_failed[k] += 1
        else:
            self.c_timeout[k] += 1
        self.soj_sum += e2e
        self.soj_n += 1
        self.outstanding -= 1
        if self.phase == 2 and not self.outstanding and not self.stop.triggered:
            self.stop.succeed()

    # ---------------------------------------------------------------- node failures

    def _node_down(self, node: Node, now: float) -> None:
        pool = node.pool
        pool.advance(now)
        pool.advance_capacity(now)
        node.up = False
        pool.nodes_up -= 1
        pool.threads_up -= node.threads
        pool.gpus_up -= node.gpus
        pool.free_threads -= node.free_threads
        pool.avail.pop(node.idx, None)
        running = list(node.running)
        for task in running:
            task.ev = None
            task.attempt -= 1  # losing a node is not the task's failure: no retry is spent
            pool.busy -= 1
            pool.busy_gpus -= task.cls.gpu
        lost = running + list(node.gate)  # tasks waiting at its gate held its threads
        for task in lost:
            task.node = None
            if task.measured:
                self.c_requeue[task.cls.key] += 1
        node.running.clear()
        node.gate.clear()
        node.reset()
        if lost:
            ev = self.env.timeout(self.detect_delay, lost)
            ev.callbacks.append(self._on_detect)

    def _on_detect(self, ev: simpy.Event) -> None:
        self._requeue(ev.value, self.env.now)

    def _node_up(self, node: Node, now: float) -> None:
        pool = node.pool
        pool.advance(now)
        pool.advance_capacity(now)
        node.up = True
        pool.nodes_up += 1
        pool.threads_up += node.threads
        pool.gpus_up += node.gpus
        pool.free_threads += node.free_threads
        pool.avail[node.idx] = node
        if pool.qlen:
            self._dispatch(pool, now)

    # ---------------------------------------------------------------- the window

    def _open_window(self, now: float) -> None:
        self.phase = 1
        self.t0 = now
        for p in self.pools:
            p.advance(now)
            p.advance_capacity(now)
            p.zero()

    def _close_window(self, now: float) -> None:
        if self.phase == 0:
            self._open_window(now)
        self.phase = 2
        self.t1 = now
        for p in self.pools:
            p.advance(now)
            p.advance_capacity(now)
            p.window = p.snapshot()
        if not self.outstanding:
            self.stop.succeed()
            return
        cap = self.env.timeout(self.length.drain_factor * max(now - self.t0, self._one_task_max()))
        cap.callbacks.append(self._on_drain_cap)

    def _one_task_max(self) -> float:
        """Longest a task can take with every attempt timing out: the drain never gives up
        before that, however short the window."""
        timeouts = [fn.timeout_seconds for fn in self.workload.functions.values()] + [300.0]
        attempts = self.max_retries + 1
        return attempts * (max(timeouts) + self.backoff_max) + self.detect_delay

    def _on_drain_cap(self, _ev: simpy.Event) -> None:
        if not self.stop.triggered:
            self.unfinished = self.outstanding
            self.stop.succeed()

    # ---------------------------------------------------------------- running

    def run(self) -> dict[str, Any]:
        """Run to the end and return the results as plain data (see `results`)."""
        env = self.env
        for i, stream in enumerate(self.workload.streams):
            self.sources += 1
            if isinstance(stream.arrivals, Trace):
                env.process(self._trace_process(i))
            else:
                self._start_stream(i)
        for pool in self.pools:
            fm = self.cfg.pools[pool.name].failures  # type: ignore[index]
            if fm is not None:
                for node in pool.nodes:
                    env.process(self._node_life(node, fm.mtbf_seconds, fm.mttr_seconds))
        env.process(self._sampler_process())
        if self.length.until is not None:
            at_end = env.timeout(self.length.until)
            at_end.callbacks.append(lambda _e: self._close_window(env.now) if self.phase < 2 else None)
        env.run(until=self.stop)
        return self.results()

    # ---------------------------------------------------------------- results

    def results(self) -> dict[str, Any]:
        """Counts, latency summaries, utilization and Little's-law check as plain data."""
        return summarize(self)
