"""Set-up of one replication: what the cluster config and the workload become before the clock
starts, and the sources that then feed the model its events.

Kept apart from simulator/model.py so that the model holds only the runtime's decisions.  Here
are the pools and their nodes, the tenants' gateway state, the task classes with their service
samplers, and the event sources: synthetic arrival streams, trace replays, node failures and
the queue-length sampler.  Random streams are keyed by purpose (simulator/rng.py), so the order
in which things are built does not matter; the order in which `Sources.start` schedules them
does, because SimPy orders simultaneous events by when they were scheduled.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator, Sequence
from typing import Any

import numpy as np
import simpy

from runtime.config import POOLS, PRIORITIES, ClusterConfig, ConfigError, route_pool
from simulator.arrivals import TraceRow, arrival_times, trace_rows
from simulator.cluster import Node, Pool, Task, TaskClass
from simulator.gateway import Tenant
from simulator.heartbeats import Heartbeats
from simulator.model import Model, Outage, RunLength
from simulator.rng import rng_for
from simulator.service import Batched, make_sampler
from simulator.stats import Series
from simulator.workload import Trace, Workload, mean_rate

#: Timeout of a task whose function the workload does not define (a trace row's).
DEFAULT_TIMEOUT = 300.0

Process = Generator[simpy.Event, Any, None]


def build_model(
    cluster: ClusterConfig,
    workload: Workload,
    length: RunLength,
    seed: int = 0,
    replication: int = 0,
    progress: Callable[[int, float], None] | None = None,
) -> Model:
    """A model of `cluster` with nothing scheduled yet; `Sources` then feeds it `workload`."""
    pools = [Pool(i, name, cluster) for i, name in enumerate(POOLS)]
    uniform = Batched(rng_for(seed, replication, "attempt-failure").random)
    series = Series(sample_interval(workload, length), len(POOLS))
    longest = max([fn.timeout_seconds for fn in workload.functions.values()] + [DEFAULT_TIMEOUT])
    model = Model(cluster, pools, length, uniform, series, longest, progress)
    beat = cluster.heartbeat
    model.heartbeats = Heartbeats(
        beat.interval_seconds, beat.timeout_seconds, Batched(rng_for(seed, replication, "heartbeat").random)
    )
    if workload.prefetch_per_thread:
        model.prefetch_per_thread = workload.prefetch_per_thread
    if workload.dispatch is not None:
        model.dispatch_delay = make_sampler(workload.dispatch, rng_for(seed, replication, "dispatch"))
    return model


def sample_interval(workload: Workload, length: RunLength) -> float:
    """Queue lengths are sampled about 512 times over the expected run (the series halves
    its resolution if the run goes on longer, so memory stays flat either way)."""
    rates = [mean_rate(s.arrivals) for s in workload.streams]
    known = sum(r for r in rates if r)
    horizon = length.until
    if horizon is None and known > 0:
        horizon = (length.tasks or 0) / known
    return (horizon or 512.0) / 512


class Tenants(dict[str, Tenant]):
    """Gateway state per tenant, made on a tenant's first submit (trace rows name any)."""

    def __init__(self, cluster: ClusterConfig) -> None:
        super().__init__()
        self.cfg = cluster

    def __missing__(self, name: str) -> Tenant:
        tenant = self[name] = Tenant(name, self.cfg)
        return tenant


class TaskClasses:
    """One `TaskClass` per (function, priority, request overrides), made on first use, so the
    per-task path finds everything about a task in one object; each function's service times
    come from one random stream, however many classes share it."""

    def __init__(self, workload: Workload, pools: list[Pool], seed: int, replication: int) -> None:
        self.workload = workload
        self.pools = pools
        self.seed = seed
        self.rep = replication
        self._samplers: dict[str, Callable[[], float]] = {}
        self._classes: dict[tuple[Any, ...], TaskClass] = {}

    def _sampler(self, function: str) -> Callable[[], float]:
        s = self._samplers.get(function)
        if s is None:
            spec = self.workload.functions[function].service
            s = self._samplers[function] = make_sampler(
                spec, rng_for(self.seed, self.rep, f"service:{function}")
            )
        return s

    def get(
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
            fn.timeout_seconds if fn else DEFAULT_TIMEOUT,
            fn.failure_probability if fn else 0.0,
            self._sampler(function) if fn else None,
        )
        self._classes[key] = cls
        return cls

    def for_row(self, row: TraceRow, path: str) -> TaskClass:
        """The class of a trace row, which needs its own service time if the workload does
        not define its function."""
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
        return self.get(row.function, row.priority, row.cpu, row.memory_gb, row.gpu, row.tee_required)


class SyntheticStream:
    """Arrivals of one synthetic stream as timeout callbacks, not a process: resuming a
    generator per arrival costs more than the rest of the arrival's bookkeeping."""

    __slots__ = ("classes", "only", "pick", "submit", "tenant", "timeout", "times")

    def __init__(
        self,
        model: Model,
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
        self.submit = model.submit
        self.timeout = model.env.timeout

    def next(self, now: float) -> None:
        """Schedule the next arrival (each arrival schedules the one after it)."""
        t = next(self.times)
        ev = self.timeout(t - now if t > now else 0.0)
        ev.callbacks.append(self.fire)

    def fire(self, ev: simpy.Event) -> None:
        """One arrival: a task of a class drawn from the stream's mix."""
        now = ev.env.now
        cls = self.only or self.classes[int(self.pick())]
        self.submit(cls, self.tenant, None, now)
        self.next(now)


class Sources:
    """Everything that feeds a model events: the workload's arrival streams, node failures
    and recoveries, and the queue-length sampler."""

    def __init__(
        self, model: Model, cluster: ClusterConfig, workload: Workload, seed: int = 0, replication: int = 0
    ) -> None:
        self.model = model
        self.cfg = cluster
        self.workload = workload
        self.seed = seed
        self.rep = replication
        self.tenants = Tenants(cluster)
        self.classes = TaskClasses(workload, model.pools, seed, replication)
        self.outages: Sequence[Outage] = ()
        self.lost: list[Task] = []  # what each scheduled outage took down with its node
        self.killed_at: list[float] = []  # when each scheduled outage took its node down

    def start(self) -> None:
        """Schedule every source, streams first, then node lives, then the sampler: this
        order breaks ties between simultaneous events, so it is part of the results."""
        model = self.model
        env = model.env
        model.sources = len(self.workload.streams)
        for i, stream in enumerate(self.workload.streams):
            if isinstance(stream.arrivals, Trace):
                env.process(self._replay(i))
            else:
                self._start_stream(i)
        for pool in model.pools:
            fm = self.cfg.pool(pool.name).failures
            if fm is not None:
                for node in pool.nodes:
                    env.process(self._node_life(node, fm.mtbf_seconds, fm.mttr_seconds))
        for outage in self.outages:
            env.process(self._outage(outage))
        env.process(self._sample_queues())

    def _start_stream(self, index: int) -> None:
        """A synthetic stream: a chain of timeouts, each arrival scheduling the next."""
        stream = self.workload.streams[index]
        classes = [self.classes.get(m.function, m.priority) for m in stream.mix]
        times = arrival_times(rng_for(self.seed, self.rep, "arrivals", index), stream.arrivals)  # type: ignore[arg-type]
        if len(classes) == 1:
            pick: Callable[[], float] = lambda: 0  # noqa: E731
        else:
            weights = np.asarray([m.weight for m in stream.mix], dtype=float)
            weights /= weights.sum()
            mix_rng = rng_for(self.seed, self.rep, "mix", index)
            pick = Batched(lambda n: mix_rng.choice(len(classes), n, p=weights))
        SyntheticStream(self.model, times, classes, pick, self.tenants[stream.tenant]).next(0.0)

    def _replay(self, index: int) -> Process:
        """A trace stream: its rows, submitted at their times, read one at a time."""
        stream = self.workload.streams[index]
        spec = stream.arrivals
        assert isinstance(spec, Trace)
        model = self.model
        env = model.env
        tenants = self.tenants
        default_tenant = stream.tenant
        for row in trace_rows(spec):
            cls = self.classes.for_row(row, spec.path)
            delay = row.time - env.now
            if delay > 0:
                yield env.timeout(delay)
            model.submit(cls, tenants[row.tenant or default_tenant], row.service_time, env.now)
        model.source_ended(env.now)

    def _node_life(self, node: Node, mtbf: float, mttr: float) -> Process:
        """Up for Exp(MTBF), down for Exp(MTTR), over and over, from the node's own stream."""
        rng = rng_for(self.seed, self.rep, f"node:{node.pool.name}", node.idx)
        model = self.model
        env = model.env
        while True:
            yield env.timeout(float(rng.exponential(mtbf)))
            model.node_down(node, env.now)
            yield env.timeout(float(rng.exponential(mttr)))
            model.node_up(node, env.now)

    def _outage(self, outage: Outage) -> Process:
        """One scheduled failure: `outage.node` goes down at `outage.at`, back `down_for` later
        (a worker killed on purpose and restarted by its supervisor)."""
        pools = {p.name: p for p in self.model.pools}
        if outage.pool not in pools or not 0 <= outage.node < len(pools[outage.pool].nodes):
            raise ValueError(f"outage: no node {outage.node} in pool {outage.pool!r}")
        node = pools[outage.pool].nodes[outage.node]
        env = self.model.env
        yield env.timeout(outage.at)
        running, give_up = set(node.running), env.now + outage.on_start_within
        while env.now < give_up and set(node.running) <= running:
            running = set(node.running)
            yield env.timeout(0.01)
        if node.up:
            self.killed_at.append(env.now)
            self.lost.extend([*node.running, *node.gate])
            self.model.node_down(node, env.now, outage.beats)
            yield env.timeout(outage.down_for)
            self.model.node_up(node, env.now)

    def _sample_queues(self) -> Process:
        """Each pool's queue length, every `series.dt` seconds, for the plots."""
        env = self.model.env
        series = self.model.series
        pools = self.model.pools
        while True:
            series.add(env.now, [float(p.qlen) for p in pools])
            yield env.timeout(series.dt)
