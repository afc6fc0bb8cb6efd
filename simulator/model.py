"""The running model: gateway limits -> `{pool}.{priority}` queues -> nodes with slots that
fail and recover.

It mirrors the runtime's decisions one by one:

- routing: `runtime.config.route_pool` (TEE, else GPU if gpu > 0, else CPU);
- gateway: per-tenant sliding-window-counter submit limit (the runtime's `limits` algorithm)
  and per-second submit quota (429 `rate_limited`), queue-depth and concurrency quotas (503
  `queue_full`), pool without nodes or request no node can hold (409 `unschedulable`);
- dispatch: a free worker slot takes the oldest task of the highest non-empty priority queue
  of its pool (`strict`, non-preemptive), or the oldest task of the pool (`fifo`); like the
  runtime's ResourceGate, the task then waits on that slot's node, holding the thread, until
  its cpu / memory / gpu request fits there. With the workload's `prefetch_per_thread` (the
  runtime's Dramatiq workers: 2), each node's consumer of each queue holds up to that many
  messages per thread unacknowledged: a message goes to the node with room whose consumer
  has waited longest on the queue's doorbell (a Redis BLPOP serves its blocked clients first
  come, first served, and a consumer that got a message queues up again behind the others),
  and waits there for one of that node's threads, the most urgent of the node's fetched
  messages first, even while another node has a thread free;
- transient failures are retried up to `retry.max_retries` times after
  min(base * 2**(k-1) * U(1, 1.25), max) seconds, the runtime's backoff with its jitter;
  an attempt longer than the task's timeout is stopped at the timeout;
- a failed node loses its running tasks, which are re-queued when a live peer's reaper, at
  one of its heartbeats, finds the dead node's last beat `heartbeat.timeout_seconds` old
  (simulator/heartbeats.py: from one interval before the timeout to one after it).

Only the decisions live here, so that the hot path reads as the runtime does; what the config
and the workload turn into (pools, tenants, task classes, arrival and failure sources) is
built by simulator/build.py.  For speed the per-task path uses two kernel events (arrival and
end of attempt) and plain callbacks; processes are used only for trace replay, node lives and
the sampler, all in simulator/build.py.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import simpy

from runtime.config import POOLS, ClusterConfig
from simulator.cluster import FAILED, NPRI, OK, TIMED_OUT, Node, Pool, Task, TaskClass
from simulator.gateway import REJECT_STATUS, Tenant
from simulator.heartbeats import GATEWAYS, Beats, Heartbeats
from simulator.stats import Metric, Series

_REASONS = tuple(REJECT_STATUS)
_NKEYS = len(POOLS) * NPRI


@dataclass(frozen=True)
class Outage:
    """A node failure at a set time rather than a drawn one: the test-bed kills a worker at
    a chosen second and the twin must be told the same event to predict its recovery."""

    pool: str
    node: int  # index of the node in its pool
    at: float  # seconds from the run's start
    down_for: float  # seconds until the node is back, empty (its supervisor's restart)
    on_start_within: float = 0.0
    """> 0: the failure comes as the node next starts a task, at most this long after `at`
    (the test-bed kills a worker that way: an idle one's death would test nothing)."""
    beats: Beats | None = None
    """The heartbeat phases the test-bed read at its kill (the killed node's last beat, the
    peers' reaper ticks), used instead of drawn ones: part of the event, like `down_for`."""


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


class Model:
    """The cluster's decisions on each task, and the counts the results are made of.

    Sources (simulator/build.py) call `submit` for arrivals, `node_down` / `node_up` for
    failures and `source_ended` when a trace runs out; everything else happens in callbacks.
    """

    def __init__(
        self,
        cluster: ClusterConfig,
        pools: list[Pool],
        length: RunLength,
        uniform: Callable[[], float],
        series: Series,
        longest_timeout: float,
        progress: Callable[[int, float], None] | None = None,
    ) -> None:
        self.cfg = cluster
        self.pools = pools
        self.length = length
        self.progress = progress
        self.series = series
        self.env = simpy.Environment()
        self._uniform = uniform  # U(0, 1) draws for attempt failures and backoff jitter
        self.longest_timeout = longest_timeout
        retry = cluster.retry
        self.max_retries = retry.max_retries
        self.backoff_base = retry.backoff_base_seconds
        self.backoff_max = retry.backoff_max_seconds
        self.detect_delay = cluster.heartbeat.timeout_seconds
        self.beat_interval = cluster.heartbeat.interval_seconds
        # When a peer notices a dead node (simulator/heartbeats.py); build_model gives it a
        # random stream of its own.
        self.heartbeats = Heartbeats(self.beat_interval, self.detect_delay, lambda: 0.5)
        # Lost tasks of each failure not noticed yet: (when the dead node's silence reaches the
        # timeout, the tasks); a live peer's reaper or a node coming back hands them back.
        self._undetected: dict[int, tuple[float, list[Task]]] = {}
        self._failures = 0
        # Messages a node fetches ahead per queue and thread (0: none, the pooled queue); set
        # by build_model from the workload. `_fetches` orders the consumers' fetches.
        self.prefetch_per_thread = 0
        self._fetches = 0

        self.n_arrivals = 0
        self.phase = 0  # 0 warm-up, 1 measuring, 2 window closed (draining)
        self.task_limit = length.tasks or 0
        self.warmup_tasks = length.warmup_tasks
        self.warmup_time = length.warmup_time
        self.t0 = self.t1 = 0.0
        self.outstanding = 0
        self.sources = 0  # arrival sources still running; set by whoever starts them
        self.unfinished = 0
        self.soj_sum = 0.0
        self.soj_n = 0
        self.stop = self.env.event()
        # Seconds from an accepted submit to the task joining its queue (None: at once); set by
        # build_model from the workload's `dispatch`. The task holds no thread meanwhile.
        self.dispatch_delay: Callable[[], float] | None = None
        # (arrival, finish, task) of every task, warm-up included, when a caller asks for it
        # (simulator/recovery.py reads the throughput around an outage from it); None: not kept.
        self.finished: list[tuple[float, float, Task]] | None = None

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
        if self.dispatch_delay is not None:
            arrive = self.env.timeout(self.dispatch_delay(), value=task)
            arrive.callbacks.append(self._on_dispatched)
            return
        self._enqueue(task, now)

    def _on_dispatched(self, ev: simpy.Event) -> None:
        task: Task = ev.value  # type: ignore[assignment]
        self._enqueue(task, self.env.now)

    def _enqueue(self, task: Task, now: float) -> None:
        """The task joins its pool's queue (after the dispatch delay, if any)."""
        cls = task.cls
        pool = cls.pool
        pool.advance(now)
        pool.qlen += 1
        q = cls.pri if pool.strict else 0
        pool.queues[q].append(task)
        if self.prefetch_per_thread:
            self._fetch(pool, q, now)
        elif pool.free_threads:
            self._dispatch(pool, now)

    def _fetch(self, pool: Pool, q: int, now: float) -> None:
        """Prefetch: nodes whose consumer of queue `q` has room take its oldest messages, each
        to the consumer that has waited longest for one (its last fetch the oldest), where a
        free thread takes it."""
        queue = pool.queues[q]
        per_thread = self.prefetch_per_thread
        while queue:
            node = None
            for n in pool.nodes:
                has_room = n.up and n.outstanding[q] < per_thread * n.threads
                if has_room and (node is None or n.last_fetch[q] < node.last_fetch[q]):
                    node = n
            if node is None:
                return
            task = queue.popleft()
            self._fetches += 1
            node.last_fetch[q] = self._fetches
            node.outstanding[q] += 1
            node.fetched[q].append(task)
            if node.free_threads:
                self._take(node, pool, now)

    def _take(self, node: Node, pool: Pool, now: float) -> None:
        """Prefetch: `node`'s free threads take its fetched messages, most urgent first (the
        worker's in-memory priority queue), then wait at its resource gate as without."""
        fetched = node.fetched
        while node.free_threads:
            for q in fetched:
                if q:
                    break
            else:
                return
            task = q.popleft()
            pool.qlen -= 1
            node.free_threads -= 1
            if not node.free_threads:
                pool.avail.pop(node.idx, None)
            pool.free_threads -= 1
            task.tenant.queued -= 1
            task.node = node
            cls = task.cls
            if not node.fits(cls.cpu, cls.mem, cls.gpu):
                node.gate.append(task)
            else:
                self._start(task, node, pool, now)

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
        task: Task = ev.value  # type: ignore[assignment]  # no cast(): this runs per attempt
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
        if self.prefetch_per_thread:
            q = cls.pri if pool.strict else 0
            node.outstanding[q] -= 1  # acknowledged: its consumer has room for one more
            self._take(node, pool, now)
            self._fetch(pool, q, now)
        elif pool.qlen:
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
        self._requeue([ev.value], self.env.now)  # type: ignore[list-item]

    def _requeue(self, tasks: list[Task], now: float) -> None:
        pool = tasks[0].cls.pool
        pool.advance(now)
        for task in tasks:
            task.t_enq = now
            task.tenant.queued += 1
            pool.qlen += 1
            pool.queues[task.cls.pri if pool.strict else 0].append(task)
        if self.prefetch_per_thread:
            for q in range(len(pool.queues)):
                self._fetch(pool, q, now)
        else:
            self._dispatch(pool, now)

    def _finish(self, task: Task, outcome: int, now: float) -> None:
        task.tenant.active -= 1
        task.cls.pool.nsys -= 1
        if self.finished is not None:
            self.finished.append((task.t_arr, now, task))
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

    def node_down(self, node: Node, now: float, beats: Beats | None = None) -> None:
        """`node` fails: its tasks are lost until a peer's reaper finds its heartbeat stale
        (`beats`: the phases measured at a test-bed kill instead of the drawn ones)."""
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
        for q in node.fetched:  # fetched by its consumers, no thread yet: pending, held there
            for task in q:
                pool.qlen -= 1
                task.tenant.queued -= 1  # counted again as they are re-queued
            lost += q
            q.clear()
        node.outstanding = [0] * len(node.outstanding)
        for task in lost:
            task.node = None
            if task.measured:
                self.c_requeue[task.cls.key] += 1
        node.running.clear()
        node.gate.clear()
        node.reset()
        if not lost:
            return
        key = (pool.name, node.idx)
        hb = self.heartbeats
        last = now - beats.killed_ago if beats is not None else hb.last_beat(key, now)
        self._failures += 1
        self._undetected[self._failures] = (max(last + self.detect_delay, now), lost)
        peers: list[object] = [("gateway", i) for i in range(GATEWAYS)]
        peers += [(p.name, n.idx) for p in self.pools for n in p.nodes if n.up]
        self._detect_at(self._failures, hb.detected(key, now, peers, beats), now)

    def _detect_at(self, failure: int, at: float, now: float) -> None:
        if at < float("inf"):
            ev = self.env.timeout(at - now, failure)
            ev.callbacks.append(self._on_detect)

    def _on_detect(self, ev: simpy.Event) -> None:
        failure: int = ev.value  # type: ignore[assignment]
        pending = self._undetected.pop(failure, None)
        if pending is not None:  # else handed back already, at an earlier tick
            self._requeue(pending[1], self.env.now)

    def node_up(self, node: Node, now: float) -> None:
        """`node` is back, empty: its slots take waiting tasks at once."""
        pool = node.pool
        pool.advance(now)
        pool.advance_capacity(now)
        node.up = True
        pool.nodes_up += 1
        pool.threads_up += node.threads
        pool.gpus_up += node.gpus
        pool.free_threads += node.free_threads
        pool.avail[node.idx] = node
        # A new node process: it registers now and its reaper first ticks an interval later.
        self.heartbeats.restarted((pool.name, node.idx), now)
        for failure, (due, _lost) in self._undetected.items():
            tick = self.heartbeats.next_tick(now, max(due, now + self.beat_interval))
            self._detect_at(failure, tick, now)  # whichever tick comes first hands them back
        if self.prefetch_per_thread:
            for q in range(len(pool.queues)):
                self._fetch(pool, q, now)
        elif pool.qlen:
            self._dispatch(pool, now)

    # ---------------------------------------------------------------- the window

    def source_ended(self, now: float) -> None:
        """An arrival source (a trace) ran out; when the last one has, the window closes."""
        self.sources -= 1
        if self.sources == 0 and self.phase < 2:
            self._close_window(now)

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
        attempts = self.max_retries + 1
        return attempts * (self.longest_timeout + self.backoff_max) + self.detect_delay + self.beat_interval

    def _on_drain_cap(self, _ev: simpy.Event) -> None:
        if not self.stop.triggered:
            self.unfinished = self.outstanding
            self.stop.succeed()

    # ---------------------------------------------------------------- running

    def run(self) -> None:
        """Run until every measured task has finished or the drain gave up.

        Start the sources first: a timed window's end is scheduled here, after them, because
        SimPy orders simultaneous events by when they were scheduled.
        """
        env = self.env
        if self.length.until is not None:
            at_end = env.timeout(self.length.until)
            at_end.callbacks.append(lambda _e: self._close_window(env.now) if self.phase < 2 else None)
        env.run(until=self.stop)
