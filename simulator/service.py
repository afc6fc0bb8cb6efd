"""Service-time distributions, drawn in numpy batches so the per-task cost is a list index."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from simulator.samples import read_samples
from simulator.workload import Constant, Empirical, Exponential, Lognormal

BATCH = 4096


class Batched:
    """Calls `draw(n)` for n values at a time and hands them out one by one."""

    __slots__ = ("_buf", "_draw", "_i")

    def __init__(self, draw: Callable[[int], np.ndarray]) -> None:
        self._draw = draw
        self._buf: list[float] = []
        self._i = 0

    def __call__(self) -> float:
        i = self._i
        if i == len(self._buf):
            self._buf = self._draw(BATCH).tolist()
            i = 0
        self._i = i + 1
        return self._buf[i]


def lognormal_params(mean: float, cv: float) -> tuple[float, float]:
    """(mu, sigma) of the underlying normal for a lognormal with this mean and CV."""
    sigma2 = math.log1p(cv * cv)
    return math.log(mean) - sigma2 / 2, math.sqrt(sigma2)


def make_sampler(
    spec: Constant | Exponential | Lognormal | Empirical, rng: np.random.Generator
) -> Callable[[], float]:
    """A zero-argument callable returning one service time per call."""
    if isinstance(spec, Constant):
        value = float(spec.value)
        return lambda: value
    if isinstance(spec, Exponential):
        mean = spec.mean
        return Batched(lambda n: rng.exponential(mean, n))
    if isinstance(spec, Lognormal):
        mu, sigma = lognormal_params(spec.mean, spec.cv)
        return Batched(lambda n: rng.lognormal(mu, sigma, n))
    samples = read_samples(spec.path)
    return Batched(lambda n: rng.choice(samples, n))


def _phi(x: float) -> float:
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


def mean_capped(spec: Constant | Exponential | Lognormal | Empirical, cap: float) -> float:
    """E[min(S, cap)]: the mean time an attempt holds its slot when cut at a timeout."""
    if isinstance(spec, Constant):
        return min(spec.value, cap)
    if isinstance(spec, Exponential):
        return spec.mean * -math.expm1(-cap / spec.mean)
    if isinstance(spec, Lognormal):
        mu, sigma = lognormal_params(spec.mean, spec.cv)
        z = (math.log(cap) - mu) / sigma
        return spec.mean * _phi(z - sigma) + cap * (1.0 - _phi(z))
    return float(np.minimum(read_samples(spec.path), cap).mean())


def moments(spec: Constant | Exponential | Lognormal | Empirical) -> tuple[float, float]:
    """(E[S], E[S^2]): what load and queueing formulas need."""
    if isinstance(spec, Constant):
        return spec.value, spec.value**2
    if isinstance(spec, Exponential):
        return spec.mean, 2 * spec.mean**2
    if isinstance(spec, Lognormal):
        return spec.mean, (1 + spec.cv**2) * spec.mean**2
    s = read_samples(spec.path)
    return float(s.mean()), float((s * s).mean())
