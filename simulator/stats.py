"""Streaming statistics with memory that does not grow with the number of tasks.

- `Welford`: mean and variance in one pass (batches merged with Chan et al.'s formula).
- `LogHistogram`: quantiles from log-spaced bins of fixed relative width (like HdrHistogram),
  so p99 costs a fixed few kilobytes however many tasks there are.
- `Metric`: the two together behind a small append buffer, flushed in numpy batches so the
  hot path of the model is one `list.append`.
- `Series`: a time series that halves its resolution instead of growing.
"""

from __future__ import annotations

import math

import numpy as np


class Welford:
    """Running count, mean and sum of squared deviations."""

    __slots__ = ("m2", "mean", "n")

    def __init__(self) -> None:
        self.n = 0
        self.mean = 0.0
        self.m2 = 0.0

    def add(self, x: float) -> None:
        self.n += 1
        d = x - self.mean
        self.mean += d / self.n
        self.m2 += d * (x - self.mean)

    def add_batch(self, xs: np.ndarray) -> None:
        """Merge a batch: the parallel form of Welford's update (Chan, Golub, LeVeque)."""
        nb = len(xs)
        if nb == 0:
            return
        mb = float(xs.mean())
        m2b = float(((xs - mb) ** 2).sum())
        self._merge(nb, mb, m2b)

    def merge(self, other: Welford) -> None:
        self._merge(other.n, other.mean, other.m2)

    def _merge(self, nb: int, mb: float, m2b: float) -> None:
        if nb == 0:
            return
        n = self.n + nb
        d = mb - self.mean
        self.mean += d * nb / n
        self.m2 += m2b + d * d * self.n * nb / n
        self.n = n

    @property
    def variance(self) -> float:
        return self.m2 / (self.n - 1) if self.n > 1 else 0.0


class LogHistogram:
    """Counts in bins [lo*(1+p)^k, lo*(1+p)^(k+1)); values <= `lo` count as zero.

    A quantile is reported as the bin's geometric centre, so its relative error is at most
    about p/2 (0.25 % by default).  Exact min and max are kept too.
    """

    __slots__ = ("_inv_log", "counts", "hi", "lo", "max", "n", "precision", "zeros")

    def __init__(self, precision: float = 0.005, lo: float = 1e-6, hi: float = 1e8) -> None:
        self.precision = precision
        self.lo = lo
        self.hi = hi
        self._inv_log = 1.0 / math.log1p(precision)
        nbins = math.ceil(math.log(hi / lo) * self._inv_log) + 1
        self.counts = np.zeros(nbins, dtype=np.int64)
        self.zeros = 0
        self.n = 0
        self.max = 0.0

    def add_many(self, xs: np.ndarray) -> None:
        if len(xs) == 0:
            return
        self.n += len(xs)
        self.max = max(self.max, float(xs.max()))
        pos = xs[xs > self.lo]
        self.zeros += len(xs) - len(pos)
        if len(pos):
            idx = (np.log(pos / self.lo) * self._inv_log).astype(np.int64)
            np.minimum(idx, len(self.counts) - 1, out=idx)
            self.counts += np.bincount(idx, minlength=len(self.counts))

    def merge(self, other: LogHistogram) -> None:
        self.counts += other.counts
        self.zeros += other.zeros
        self.n += other.n
        self.max = max(self.max, other.max)

    def quantile(self, q: float) -> float:
        """The q-quantile (0 < q <= 1), nearest-rank; NaN when empty."""
        if self.n == 0:
            return math.nan
        rank = max(1, math.ceil(q * self.n))
        if rank <= self.zeros:
            return 0.0
        cum = np.cumsum(self.counts)
        k = int(np.searchsorted(cum, rank - self.zeros))
        centre = self.lo * (1 + self.precision) ** (k + 0.5)
        return min(centre, self.max)


class Metric:
    """A stream of observations (seconds): count, mean, std, quantiles, share above zero."""

    __slots__ = ("buf", "hist", "positive", "welford")

    QUANTILES = (0.5, 0.95, 0.99)

    def __init__(self) -> None:
        self.buf: list[float] = []
        self.welford = Welford()
        self.hist = LogHistogram()
        self.positive = 0

    def flush(self) -> None:
        if not self.buf:
            return
        xs = np.asarray(self.buf, dtype=float)
        self.buf.clear()
        self.welford.add_batch(xs)
        self.hist.add_many(xs)
        self.positive += int(np.count_nonzero(xs > 0))

    def merge(self, other: Metric) -> None:
        self.flush()
        other.flush()
        self.welford.merge(other.welford)
        self.hist.merge(other.hist)
        self.positive += other.positive

    @property
    def n(self) -> int:
        self.flush()
        return self.welford.n

    def summary(self) -> dict[str, float]:
        """Plain numbers for reports: NaN where there were no observations."""
        self.flush()
        n = self.welford.n
        nan = math.nan
        return {
            "count": n,
            "mean": self.welford.mean if n else nan,
            "std": math.sqrt(self.welford.variance) if n else nan,
            "p50": self.hist.quantile(0.5),
            "p95": self.hist.quantile(0.95),
            "p99": self.hist.quantile(0.99),
            "max": self.hist.max if n else nan,
            "p_positive": self.positive / n if n else nan,
        }


class Series:
    """(t, values) sampled every `dt`; past `max_points` every other point is dropped and `dt`
    doubles, so a run of any length keeps at most `max_points` points."""

    __slots__ = ("dt", "max_points", "t", "values")

    def __init__(self, dt: float, width: int, max_points: int = 1024) -> None:
        self.dt = dt
        self.max_points = max_points
        self.t: list[float] = []
        self.values: list[list[float]] = [[] for _ in range(width)]

    def add(self, t: float, row: list[float]) -> None:
        self.t.append(t)
        for col, v in zip(self.values, row, strict=True):
            col.append(v)
        if len(self.t) >= self.max_points:
            self.t = self.t[::2]
            self.values = [col[::2] for col in self.values]
            self.dt *= 2
