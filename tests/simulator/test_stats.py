"""Streaming statistics are accurate and their memory does not grow with the task count."""

from __future__ import annotations

import gc
import sys

import numpy as np
import pytest

from simulator.model import RunLength
from simulator.stats import LogHistogram, Metric, Series, Welford
from simulator.twin import Twin
from tests.simulator.builders import cluster, exp_fn, poisson, workload


def test_log_histogram_quantiles_are_within_its_relative_precision() -> None:
    xs = np.random.default_rng(1).lognormal(0.0, 1.5, 200_000)
    h = LogHistogram(precision=0.005)
    for chunk in np.array_split(xs, 7):
        h.add_many(chunk)
    for q in (0.5, 0.9, 0.95, 0.99, 0.999):
        assert h.quantile(q) == pytest.approx(np.quantile(xs, q, method="inverted_cdf"), rel=0.005)
    assert h.max == xs.max() and h.n == len(xs)


def test_atom_at_zero_is_kept_exactly() -> None:
    m = Metric()
    m.buf.extend([0.0] * 700 + [1.0] * 300)
    s = m.summary()
    assert s["p50"] == 0.0 and s["p_positive"] == pytest.approx(0.3)
    assert s["p99"] == pytest.approx(1.0, rel=0.005)


def test_welford_batches_and_merges_agree_with_numpy() -> None:
    xs = np.random.default_rng(2).normal(3.0, 2.0, 10_001)
    a, b = Welford(), Welford()
    a.add_batch(xs[:4000])
    for x in xs[4000:4100]:
        a.add(float(x))
    b.add_batch(xs[4100:])
    a.merge(b)
    assert a.n == len(xs)
    assert a.mean == pytest.approx(xs.mean(), rel=1e-12)
    assert a.variance == pytest.approx(xs.var(ddof=1), rel=1e-10)


def test_metric_merge_equals_one_metric_over_everything() -> None:
    xs = np.random.default_rng(3).exponential(1.0, 5000)
    whole, left, right = Metric(), Metric(), Metric()
    whole.buf.extend(xs.tolist())
    left.buf.extend(xs[:1234].tolist())
    right.buf.extend(xs[1234:].tolist())
    left.merge(right)
    assert left.summary() == pytest.approx(whole.summary())


def test_series_halves_its_resolution_instead_of_growing() -> None:
    s = Series(dt=1.0, width=2, max_points=64)
    t = 0.0
    for i in range(10_000):
        s.add(t, [float(i), 0.0])
        t += s.dt
    assert len(s.t) < 64 and s.dt >= 128
    assert s.t == sorted(s.t) and s.t[-1] > 5000


def blocks_held_after_a_run(tasks: int) -> int:
    """Memory blocks the interpreter holds for a finished run that is still referenced."""
    wl = workload({"f": exp_fn(1.0)}, poisson(0.7))
    gc.collect()
    before = sys.getallocatedblocks()
    twin = Twin(cluster(threads=1), wl, RunLength(tasks=tasks, warmup_tasks=0))
    result = twin.run()
    gc.collect()
    held = sys.getallocatedblocks() - before
    assert result["overall"]["completed"] >= tasks  # the run and its statistics are all there
    return held


def test_memory_held_does_not_grow_with_the_number_of_tasks() -> None:
    blocks_held_after_a_run(500)  # first-run allocations (imports, caches) are not the model's
    small, large = blocks_held_after_a_run(2_000), blocks_held_after_a_run(50_000)
    # 25x the tasks; keeping even one float per task would add ~48,000 blocks
    assert large <= small + 500, (small, large)
