"""`grey plan`: the fewest nodes per pool that meet the SLOs, found by search, not a grid.

Per pool with traffic: start at the stability floor (utilization < 1 in every resource), gallop
upwards (+1, +2, +4, ...) until the pool's objectives are met, then bisect between the last
miss and the first hit.  All pools search in lockstep, so one simulation (with replications)
answers every pool's current question; common random numbers across candidates make the
comparisons far less noisy than independent runs would be.  The search assumes that adding
nodes to a pool never makes its own figures worse, which holds in this model up to noise.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from runtime.config import POOLS, ClusterConfig, route_pool
from simulator.model import RunLength
from simulator.replications import ProgressHook, run_replications
from simulator.service import mean_capped
from simulator.slo import SLO, judge
from simulator.workload import Workload, mean_rate


@dataclass
class Evaluation:
    """One simulated candidate: node counts, every objective's figure, and the verdicts."""

    nodes: dict[str, int]
    checks: list[dict[str, Any]]
    met: dict[str, bool]
    mean: dict[str, Any]
    ci95: dict[str, Any]

    @property
    def all_met(self) -> bool:
        return all(self.met.values())


@dataclass
class PlanResult:
    nodes: dict[str, int]
    feasible: bool
    answer: Evaluation
    evaluations: list[Evaluation]
    floor: dict[str, int]
    active_pools: list[str]
    infeasible_pools: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "feasible": self.feasible,
            "nodes": self.nodes,
            "total_nodes": sum(self.nodes.values()),
            "stability_floor": self.floor,
            "active_pools": self.active_pools,
            "infeasible_pools": self.infeasible_pools,
            "answer": {"checks": self.answer.checks, "mean": self.answer.mean, "ci95": self.answer.ci95},
            "evaluations": [{"nodes": e.nodes, "met": e.met, "checks": e.checks} for e in self.evaluations],
        }


@dataclass
class _Search:
    lo: int  # largest count known (or assumed) to miss
    hi: int | None = None  # smallest count known to meet
    step: int = 1
    infeasible: bool = False
    candidate: int = 0

    @property
    def done(self) -> bool:
        return self.infeasible or (self.hi is not None and self.hi - self.lo <= 1)

    def propose(self, max_nodes: int) -> int:
        if self.done:
            return self.hi if self.hi is not None else max_nodes
        if self.hi is None:
            self.candidate = min(self.lo + self.step, max_nodes)
            self.step *= 2
        else:
            self.candidate = (self.lo + self.hi) // 2
        return self.candidate

    def update(self, met: bool, max_nodes: int) -> None:
        if self.done:
            return
        if met:
            self.hi = self.candidate
        else:
            self.lo = self.candidate
            if self.hi is None and self.candidate >= max_nodes:
                self.infeasible = True


def plan_capacity(
    cluster: ClusterConfig,
    workload: Workload,
    slos: list[SLO],
    length: RunLength,
    *,
    seed: int = 0,
    replications: int = 5,
    max_nodes: int = 256,
    conservative: bool = True,
    on_eval: Callable[[Evaluation], None] | None = None,
    on_progress: ProgressHook | None = None,
) -> PlanResult:
    """Search the smallest node count per pool meeting `slos` (see the module docstring)."""
    if not slos:
        raise ValueError("no objectives: give --slo or an `slo:` list in the workload file")
    floor = min_stable_nodes(cluster, workload)
    cache: dict[tuple[int, ...], Evaluation] = {}
    order: list[Evaluation] = []

    def evaluate(nodes: dict[str, int]) -> Evaluation:
        key = tuple(nodes[p] for p in POOLS)
        if key in cache:
            return cache[key]
        agg = run_replications(
            cluster.with_nodes(nodes),
            workload,
            length,
            seed=seed,
            replications=replications,
            on_progress=on_progress,
        )
        checks: list[dict[str, Any]] = []
        met = {}
        for pool in POOLS:
            pool_checks = judge(slos, agg["mean"], agg["ci95"], pool, conservative)
            checks.extend(pool_checks)
            met[pool] = all(c["met"] for c in pool_checks)
        ev = Evaluation(dict(nodes), checks, met, agg["mean"], agg["ci95"])
        cache[key] = ev
        order.append(ev)
        if on_eval is not None:
            on_eval(ev)
        return ev

    # A first candidate at the floor also tells which pools get any traffic at all.
    start = {p: min(max(floor[p], 1), max_nodes) for p in POOLS}
    first = evaluate(start)
    active = [p for p in POOLS if first.mean["by_pool"][p]["arrivals"] > 0]
    searches = {p: _Search(lo=start[p] - 1) for p in active}
    for p in active:
        searches[p].propose(max_nodes)
        searches[p].update(first.met[p], max_nodes)

    while not all(s.done for s in searches.values()):
        nodes = {p: 0 for p in POOLS}
        for p, s in searches.items():
            nodes[p] = s.propose(max_nodes)
        ev = evaluate(nodes)
        for p, s in searches.items():
            s.update(ev.met[p], max_nodes)

    answer_nodes = {p: 0 for p in POOLS}
    for p, s in searches.items():
        answer_nodes[p] = s.hi if s.hi is not None else max_nodes
    answer = evaluate(answer_nodes)
    # Pools interact only through tenant-wide quotas; if that tips a pool over, add nodes.
    for _ in range(8):
        short = [
            p
            for p in active
            if not answer.met[p] and answer_nodes[p] < max_nodes and not searches[p].infeasible
        ]
        if not short:
            break
        for p in short:
            answer_nodes[p] += 1
        answer = evaluate(answer_nodes)
    infeasible = [p for p in active if not answer.met[p]]
    return PlanResult(answer_nodes, not infeasible, answer, order, floor, active, infeasible)


def offered_load(workload: Workload) -> dict[str, dict[str, float]]:
    """Mean busy threads / cores / memory / GPUs each pool must supply, counting first
    attempts only and no trace streams: an underestimate, so the floor it gives is safe."""
    out = {p: {"threads": 0.0, "cpu": 0.0, "memory_gb": 0.0, "gpu": 0.0} for p in POOLS}
    for stream in workload.streams:
        rate = mean_rate(stream.arrivals)
        if not rate:
            continue
        total = sum(m.weight for m in stream.mix)
        for m in stream.mix:
            fn = workload.functions[m.function]
            lam = rate * m.weight / total
            es = mean_capped(fn.service, fn.timeout_seconds)
            pool = route_pool(fn.resources.gpu, fn.tee_required)
            work = lam * es
            out[pool]["threads"] += work
            out[pool]["cpu"] += work * fn.resources.cpu
            out[pool]["memory_gb"] += work * fn.resources.memory_gb
            out[pool]["gpu"] += work * fn.resources.gpu
    return out


def min_stable_nodes(cluster: ClusterConfig, workload: Workload) -> dict[str, int]:
    """Smallest node count per pool whose capacity exceeds the offered load in every resource
    (utilization < 1), ignoring fragmentation: a lower bound for the planner."""
    load = offered_load(workload)
    out = {}
    for name in POOLS:
        pc = cluster.pool(name)
        need = 0
        for res, cap in (
            ("threads", pc.threads_per_node),
            ("cpu", pc.cpu_cores),
            ("memory_gb", pc.memory_gb_per_node),
            ("gpu", pc.gpus_per_node),
        ):
            amount = load[name][res]
            if amount <= 0:
                continue
            if cap <= 0:
                need = max(need, 1)
                continue
            need = max(need, math.floor(amount / cap) + 1)
        out[name] = need
    return out
