"""Warm-hit rate of placement-aware routing on a Zipf request trace (`make bench-routing`).

More models than fit in the serving slots: `--models` models, each on the disk of every one
of `--nodes` nodes, `--slots` replicas per node. A trace of `--requests` requests draws
models from a Zipf law of exponent `--zipf` (rank k asked with probability ∝ k^-s; ranks
shuffled per seed). Each request goes through the real router
(runtime/execution/serving/router.py: warm replica first, else a cold start evicting by
policy) over a backend that only keeps books — no processes — so the figure is the routing
decision's, not the machine's. On the same traces, for comparison:

- LRU (the router's other policy) and LFU (its default);
- A0 (Aho, Denning & Ullman 1971): evict the resident model of lowest *true* probability.
  It knows the law the trace is drawn from, so it is an upper bound, not a policy: on
  independent requests no online policy that must load the model it serves (a request is
  served by a loaded replica: every miss takes a slot) does better in expectation. Its
  expected rate is exact: mass of the top C-1 models + Σ_tail p² / Σ_tail p (C slots);
- the static optimum: the C models asked most in the measured window, fixed in hindsight
  (an upper bound for a policy allowed to serve a miss without loading it; not this system);
- Belady: evict the model asked for again furthest ahead (knows the future; capacity C).

Every rate is printed twice: over all requests, and in steady state, over the requests after
a declared warm-up (`--warmup`, the first 10 % by default: LFU's counts start at zero).
Repeated over `--seeds` seeds: min / median / max. Target: the default policy's warm-hit rate
≥ 0.90. A sweep over the Zipf exponent and the models ÷ slots ratio (table + plot) shows
where 0.90 is reachable by any online policy (A0 ≥ 0.90) and where it is not.

    .venv/bin/python -m bench.routing [--models 32 --nodes 4 --slots 4 --requests 20000
                                       --zipf 1.3 --seeds 5 --warmup 2000]
"""

from __future__ import annotations

import argparse
import itertools
import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.repeat import Spread
from runtime.execution.serving.router import LFU, LRU, Place, Replica, Router

TARGET = 0.90
OUT = Path("out/bench/routing.png")
#: A0 this close above the target: in expectation only; seeds land on either side.
EDGE = 0.005
BELADY = "belady"
A0 = "a0"
STATIC = "static"
#: Printed order and labels of what is compared.
POLICIES = (
    (LFU, "LFU (default)"),
    (LRU, "LRU"),
    (A0, "A0 (knows the law; online bound)"),
    (STATIC, "static top-C in hindsight"),
    (BELADY, "Belady (knows the future)"),
)


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


def model_names(models: int) -> list[str]:
    return [f"model-{i:03d}" for i in range(models)]


def zipf_law(models: int, s: float) -> np.ndarray:
    """Probabilities of the ranks 1..models (descending)."""
    weights = np.arange(1, models + 1, dtype=np.float64) ** -s
    return weights / weights.sum()


@dataclass(frozen=True, slots=True)
class Trace:
    requests: list[str]
    probability: dict[str, float]  # the law it was drawn from, per model name


def zipf_trace(models: int, requests: int, s: float, seed: int) -> Trace:
    rng = np.random.default_rng(seed)
    law = zipf_law(models, s)
    names = [model_names(models)[i] for i in rng.permutation(models)]  # popularity not in name order
    draws = rng.choice(models, size=requests, p=law)
    return Trace([names[i] for i in draws], {names[i]: float(law[i]) for i in range(models)})


def router_hits(trace: Sequence[str], models: int, nodes: int, slots: int, policy: str) -> list[bool]:
    """Per request: warm (True) or cold, through the real router."""
    backend = BookBackend(model_names(models), [f"node{i + 1}" for i in range(nodes)])
    router = Router(backend, slots=slots, policy=policy)
    return [not router.route("bench", model).cold for model in trace]


def belady_hits(trace: Sequence[str], capacity: int) -> list[bool]:
    """The offline optimum: on a miss with every slot taken, evict the model whose next
    request is furthest ahead (never again: furthest of all)."""
    horizon = len(trace)
    next_use = [0] * horizon
    seen: dict[str, int] = {}
    for index in range(horizon - 1, -1, -1):
        next_use[index] = seen.get(trace[index], horizon + 1)
        seen[trace[index]] = index
    resident: dict[str, int] = {}
    hits = []
    for index, model in enumerate(trace):
        hits.append(model in resident)
        if model not in resident and len(resident) >= capacity:
            del resident[max(resident, key=resident.__getitem__)]
        resident[model] = next_use[index]
    return hits


def a0_hits(trace: Trace, capacity: int) -> list[bool]:
    """A0: demand loading, evicting the resident model of lowest true probability."""
    resident: set[str] = set()
    hits = []
    for model in trace.requests:
        hits.append(model in resident)
        if model not in resident:
            if len(resident) >= capacity:
                resident.remove(min(resident, key=trace.probability.__getitem__))
            resident.add(model)
    return hits


def a0_expected(law: np.ndarray, capacity: int) -> float:
    """A0's steady-state warm-hit rate on independent requests: the top C-1 models stay,
    the last slot holds the latest of the rest."""
    if capacity >= len(law):
        return 1.0
    tail = law[capacity - 1 :]
    return float(law[: capacity - 1].sum() + (tail**2).sum() / tail.sum())


def static_share(window: Sequence[str], capacity: int) -> float:
    """Share of the window's requests that go to its `capacity` most asked models."""
    counts = Counter(window).most_common(capacity)
    return sum(count for _, count in counts) / len(window)


def rate(hits: Sequence[bool], skip: int) -> float:
    measured = hits[skip:]
    return sum(measured) / len(measured)


@dataclass(frozen=True, slots=True)
class Rates:
    """Per compared policy: warm-hit rate over all requests and after the warm-up."""

    overall: dict[str, Spread]
    steady: dict[str, Spread]


def measure(
    models: int, nodes: int, slots: int, requests: int, s: float, seeds: Sequence[int], warmup: int
) -> Rates:
    capacity = nodes * slots
    overall: dict[str, list[float]] = {name: [] for name, _ in POLICIES}
    steady: dict[str, list[float]] = {name: [] for name, _ in POLICIES}
    for seed in seeds:
        trace = zipf_trace(models, requests, s, seed)
        runs = {
            LFU: router_hits(trace.requests, models, nodes, slots, LFU),
            LRU: router_hits(trace.requests, models, nodes, slots, LRU),
            A0: a0_hits(trace, capacity),
            BELADY: belady_hits(trace.requests, capacity),
        }
        for name, hits in runs.items():
            overall[name].append(rate(hits, 0))
            steady[name].append(rate(hits, warmup))
        overall[STATIC].append(static_share(trace.requests, capacity))
        steady[STATIC].append(static_share(trace.requests[warmup:], capacity))
    return Rates(
        {name: Spread.of(values) for name, values in overall.items()},
        {name: Spread.of(values) for name, values in steady.items()},
    )


@dataclass(frozen=True, slots=True)
class Cell:
    s: float
    models: int
    rates: Rates
    a0_expected: float
    top_mass: float


def sweep(args: argparse.Namespace) -> list[Cell]:
    capacity = args.nodes * args.slots
    cells = []
    for models in (int(m) for m in args.sweep_models.split(",")):
        for s in (float(x) for x in args.sweep.split(",")):
            law = zipf_law(models, s)
            rates = measure(
                models, args.nodes, args.slots, args.requests, s, range(args.sweep_seeds), args.warmup
            )
            cells.append(Cell(s, models, rates, a0_expected(law, capacity), float(law[:capacity].sum())))
    return cells


def print_sweep(cells: Sequence[Cell], capacity: int) -> None:
    print(
        f"\nsweep (C = {capacity} slots; steady state; LFU/LRU/Belady = median over the sweep seeds; "
        f"A0 = expected rate of the online bound; top-C = popularity mass of the C most asked):"
    )
    header = (
        f"  {'s':>4} {'models':>6} {'÷C':>4}  {'LFU':>6} {'LFU min':>7} {'LRU':>6} "
        f"{'A0':>6} {'top-C':>6} {'Belady':>6}  0.90 reachable online?"
    )
    print(header)
    for cell in cells:
        steady = cell.rates.steady
        reachable = (
            "no (A0 < 0.90)"
            if cell.a0_expected < TARGET
            else "at the edge (A0 < 0.905)"
            if cell.a0_expected < TARGET + EDGE
            else "yes"
        )
        print(
            f"  {cell.s:>4.1f} {cell.models:>6} {cell.models / capacity:>4.1f}  "
            f"{steady[LFU].median:>6.3f} {steady[LFU].minimum:>7.3f} {steady[LRU].median:>6.3f} "
            f"{cell.a0_expected:>6.3f} {cell.top_mass:>6.3f} {steady[BELADY].median:>6.3f}  {reachable}"
        )


def plot(cells: Sequence[Cell], args: argparse.Namespace, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    capacity = args.nodes * args.slots
    figure, (policies, ratios) = plt.subplots(1, 2, figsize=(13, 4.8))
    ratio_models = sorted({cell.models for cell in cells})
    here = [cell for cell in cells if cell.models == args.models] or [
        cell for cell in cells if cell.models == ratio_models[0]
    ]
    exponents = [cell.s for cell in here]
    for name, label in POLICIES:
        if name == A0:
            continue
        medians = [cell.rates.steady[name].median for cell in here]
        lows = [cell.rates.steady[name].minimum for cell in here]
        highs = [cell.rates.steady[name].maximum for cell in here]
        policies.plot(exponents, medians, marker="o", label=label)
        policies.fill_between(exponents, lows, highs, alpha=0.2)
    policies.plot(exponents, [cell.a0_expected for cell in here], "k--", label="A0 expected (online bound)")
    policies.set_title(
        f"{here[0].models} models, {args.nodes}×{args.slots} slots, steady state "
        f"(after {args.warmup} of {args.requests} requests)\nmin/median/max over {args.sweep_seeds} seeds",
        fontsize=9,
    )
    for models in ratio_models:
        row = [cell for cell in cells if cell.models == models]
        line = ratios.plot(
            [cell.s for cell in row],
            [cell.rates.steady[LFU].median for cell in row],
            marker="o",
            label=f"LFU, {models} models ({models / capacity:.1f}× C)",
        )[0]
        ratios.plot(
            [cell.s for cell in row], [cell.a0_expected for cell in row], "--", color=line.get_color()
        )
    ratios.set_title(
        f"LFU steady state (solid) vs the online bound A0 (dashed), C = {capacity} slots", fontsize=9
    )
    for axes in (policies, ratios):
        axes.axhline(TARGET, color="grey", linestyle=":", label=f"target {TARGET:.2f}")
        axes.set_xlabel("Zipf exponent s")
        axes.set_ylabel("warm-hit rate")
        axes.legend(fontsize=7)
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
    parser.add_argument(
        "--warmup", type=int, default=None, help="requests not measured in steady state (10 %%)"
    )
    parser.add_argument("--zipf", type=float, default=1.3, help="Zipf exponent s")
    parser.add_argument("--seeds", type=int, default=int(os.environ.get("BENCH_RUNS", "5")))
    parser.add_argument("--sweep", default="0.8,1.0,1.2,1.3,1.4,1.6", help="Zipf exponents of the sweep")
    parser.add_argument("--sweep-models", default="24,32,64,128", help="model counts of the sweep")
    parser.add_argument("--sweep-seeds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    capacity = args.nodes * args.slots
    if args.models <= capacity:
        parser.error("use more models than fit: --models > --nodes × --slots")
    if args.warmup is None:
        args.warmup = args.requests // 10
    if not 0 <= args.warmup < args.requests:
        parser.error("--warmup must leave requests to measure")
    print(
        f"routing: {args.models} models, {args.nodes} nodes × {args.slots} slots = C = {capacity} "
        f"replicas at once, {args.requests} requests (warm-up: the first {args.warmup}), "
        f"Zipf s={args.zipf}, seeds 0..{args.seeds - 1}; routing decisions only, no serving "
        f"processes (machine: shared, {os.cpu_count()} cores)"
    )
    rates = measure(
        args.models, args.nodes, args.slots, args.requests, args.zipf, range(args.seeds), args.warmup
    )
    print(f"  {'warm-hit rate (min / median / max)':<36} {'all requests':<23}  after the warm-up")
    for name, label in POLICIES:
        print(
            f"  {label:<36} {rates.overall[name].format('{:.3f}'):<23}  {rates.steady[name].format('{:.3f}')}"
        )
    law = zipf_law(args.models, args.zipf)
    print(
        f"  expected, from the law: A0 {a0_expected(law, capacity):.3f} (no online policy that loads "
        f"what it serves does better on independent requests), top-{capacity} mass "
        f"{float(law[:capacity].sum()):.3f}"
    )
    ratio = Spread.of([a / b for a, b in zip(rates.steady[LFU].values, rates.steady[A0].values, strict=True)])
    print(f"  LFU ÷ A0 on the same traces, steady state: {ratio.format('{:.3f}')}")
    for label, spreads in (("all requests", rates.overall), ("steady state", rates.steady)):
        met = spreads[LFU].minimum >= TARGET
        print(
            f"  target: default policy warm-hit ≥ {TARGET:.2f} on the worst seed, {label}: "
            f"{'met' if met else 'NOT met'} ({spreads[LFU].minimum:.3f})"
        )
    cells = sweep(args)
    print_sweep(cells, capacity)
    plot(cells, args, args.out)
    print(f"  plot: {args.out}")
    return 0 if rates.steady[LFU].minimum >= TARGET else 1


if __name__ == "__main__":
    raise SystemExit(main())
