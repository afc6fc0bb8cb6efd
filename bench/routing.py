"""Warm-hit rate of placement-aware routing on a Zipf request trace (`make bench-routing`).

More models than fit in the serving slots: `--models` models, each on the disk of every one
of `--nodes` nodes, `--slots` replicas per node. A trace of `--requests` requests draws
models from a Zipf law of exponent `--zipf` (rank k asked with probability ∝ k^-s; ranks
shuffled per seed). Each request goes through the real router
(runtime/execution/serving/router.py: warm replica first, else a cold start evicting by
policy) over a backend that only keeps books — no processes — so the figure is the routing
decision's, not the machine's. LRU and LFU (the default) run on the same trace as the
offline optimum (Belady: evict the model asked for again furthest ahead, total capacity
nodes × slots), repeated over `--seeds` seeds: min / median / max. Target: the default
policy's warm-hit rate ≥ 0.90. No online policy beats the popularity mass of the models
that fit (printed as the ceiling): a sweep over the Zipf exponent shows where the target holds.

    .venv/bin/python -m bench.routing [--models 32 --nodes 4 --slots 4 --requests 20000
                                       --zipf 1.3 --seeds 5]
"""

from __future__ import annotations

import argparse
import itertools
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from bench.repeat import Spread
from runtime.execution.serving.router import LFU, LRU, Place, Replica, Router

TARGET = 0.90
OUT = Path("out/bench/routing.png")


class BookBackend:
    """The router's backend without processes: replicas are entries, starts are counted."""

    def __init__(self, models: Sequence[str], nodes: Sequence[str]) -> None:
        self.places = [Place(node, "disk") for node in nodes]
        self.live: dict[str, list[tuple[str, Replica]]] = {node: [] for node in nodes}
        self.by_model: dict[str, Replica] = {}
        self.models = set(models)
        self._ids = itertools.count()

    def running(self, tenant_id: str, model_name: str) -> list[Replica]:
        replica = self.by_model.get(model_name)
        return [replica] if replica is not None else []

    def locations(self, tenant_id: str, model_name: str) -> list[Place]:
        return self.places if model_name in self.models else []

    def live_on(self, node_id: str) -> list[tuple[str, Replica]]:
        return self.live[node_id]

    def start(self, tenant_id: str, model_name: str, place: Place) -> Replica:
        replica = Replica(
            f"{model_name}-{next(self._ids)}", model_name, place.node_id, place.device, "", True
        )
        self.live[place.node_id].append((tenant_id, replica))
        self.by_model[model_name] = replica
        return replica

    def stop(self, tenant_id: str, replica: Replica) -> None:
        self.live[replica.node_id].remove((tenant_id, replica))
        del self.by_model[replica.model_name]


def zipf_trace(models: int, requests: int, s: float, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    weights = np.arange(1, models + 1, dtype=np.float64) ** -s
    names = [f"model-{i:03d}" for i in rng.permutation(models)]  # popularity not in name order
    draws = rng.choice(models, size=requests, p=weights / weights.sum())
    return [names[i] for i in draws]


def router_hits(trace: Sequence[str], models: int, nodes: int, slots: int, policy: str) -> int:
    node_ids = [f"node{i + 1}" for i in range(nodes)]
    backend = BookBackend([f"model-{i:03d}" for i in range(models)], node_ids)
    router = Router(backend, slots=slots, policy=policy)
    return sum(not router.route("bench", model).cold for model in trace)


def belady_hits(trace: Sequence[str], capacity: int) -> int:
    """Warm hits of the offline optimum: on a miss with every slot taken, evict the model
    whose next request is furthest ahead (never again: furthest of all)."""
    horizon = len(trace)
    next_use = [0] * horizon
    seen: dict[str, int] = {}
    for index in range(horizon - 1, -1, -1):
        next_use[index] = seen.get(trace[index], horizon + 1)
        seen[trace[index]] = index
    resident: dict[str, int] = {}
    hits = 0
    for index, model in enumerate(trace):
        if model in resident:
            hits += 1
        elif len(resident) >= capacity:
            del resident[max(resident, key=resident.__getitem__)]
        resident[model] = next_use[index]
    return hits


def measure(
    models: int, nodes: int, slots: int, requests: int, s: float, seeds: Sequence[int]
) -> dict[str, Spread]:
    rates: dict[str, list[float]] = {LFU: [], LRU: [], "belady": []}
    for seed in seeds:
        trace = zipf_trace(models, requests, s, seed)
        for policy in (LFU, LRU):
            rates[policy].append(router_hits(trace, models, nodes, slots, policy) / requests)
        rates["belady"].append(belady_hits(trace, nodes * slots) / requests)
    return {name: Spread.of(values) for name, values in rates.items()}


def plot(sweep: dict[float, dict[str, Spread]], args: argparse.Namespace, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    exponents = sorted(sweep)
    figure, axes = plt.subplots(figsize=(7.5, 4.5))
    for name, label in ((LFU, "LFU (default)"), (LRU, "LRU"), ("belady", "Belady (offline optimum)")):
        medians = [sweep[s][name].median for s in exponents]
        lows = [sweep[s][name].minimum for s in exponents]
        highs = [sweep[s][name].maximum for s in exponents]
        axes.plot(exponents, medians, marker="o", label=label)
        axes.fill_between(exponents, lows, highs, alpha=0.2)
    axes.axhline(TARGET, color="grey", linestyle="--", label=f"target {TARGET:.2f}")
    axes.axvline(args.zipf, color="black", linestyle=":", linewidth=1)
    axes.set_xlabel("Zipf exponent s")
    axes.set_ylabel("warm-hit rate")
    axes.set_title(
        f"Placement-aware routing: {args.models} models, {args.nodes}×{args.slots} slots, "
        f"{args.requests} requests\n(min/median/max over {args.sweep_seeds} seeds; routing decisions only)",
        fontsize=9,
    )
    axes.legend(fontsize=8)
    axes.grid(alpha=0.3)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.tight_layout()
    figure.savefig(path, dpi=120)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.routing", description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=32)
    parser.add_argument("--nodes", type=int, default=4)
    parser.add_argument("--slots", type=int, default=4, help="serving slots per node")
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--zipf", type=float, default=1.3, help="Zipf exponent s")
    parser.add_argument("--seeds", type=int, default=int(os.environ.get("BENCH_RUNS", "5")))
    parser.add_argument("--sweep", default="0.8,1.0,1.1,1.2,1.3,1.4,1.6", help="exponents for the plot")
    parser.add_argument("--sweep-seeds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    if args.models <= args.nodes * args.slots:
        parser.error("use more models than fit: --models > --nodes × --slots")
    print(
        f"routing: {args.models} models, {args.nodes} nodes × {args.slots} slots = {args.nodes * args.slots} "
        f"replicas at once, {args.requests} requests, Zipf s={args.zipf}, seeds 0..{args.seeds - 1}, "
        f"policy default {LFU} (vs {LRU} and Belady on the same traces); routing decisions only, "
        f"no serving processes (machine: shared, {os.cpu_count()} cores)"
    )
    spreads = measure(args.models, args.nodes, args.slots, args.requests, args.zipf, range(args.seeds))
    for name, spread in spreads.items():
        print(f"  warm-hit {name:>6}: {spread.format('{:.3f}')}  (min / median / max)")
    ratio = Spread.of([a / b for a, b in zip(spreads[LFU].values, spreads["belady"].values, strict=True)])
    print(f"  LFU ÷ Belady: {ratio.format('{:.3f}')}")
    weights = np.arange(1, args.models + 1, dtype=np.float64) ** -args.zipf
    ceiling = float(np.sort(weights)[::-1][: args.nodes * args.slots].sum() / weights.sum())
    print(
        f"  ceiling of any online policy on independent Zipf requests (mass of the "
        f"{args.nodes * args.slots} most asked models): {ceiling:.3f}"
    )
    met = spreads[LFU].minimum >= TARGET
    print(
        f"  target: default policy warm-hit ≥ {TARGET:.2f} on the worst seed: {'met' if met else 'NOT met'}"
    )
    sweep = {
        float(s): measure(
            args.models, args.nodes, args.slots, args.requests, float(s), range(args.sweep_seeds)
        )
        for s in args.sweep.split(",")
    }
    for s, row in sorted(sweep.items()):
        print(f"  s={s:.1f}: " + ", ".join(f"{name} {spread.median:.3f}" for name, spread in row.items()))
    plot(sweep, args, args.out)
    print(f"  plot: {args.out}")
    return 0 if met else 1


if __name__ == "__main__":
    raise SystemExit(main())
