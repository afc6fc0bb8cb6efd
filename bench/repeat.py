"""Repeated measurements: a ratio is reported as min / median / max over runs, never one run.

A ratio that holds on one run of a fast box is not a target met, so every benchmark that
compares Grey against a baseline measures both in the same run, repeats the pair, and
judges the target on the worst run (`Spread.minimum`).
"""

from __future__ import annotations

import os
import statistics
from dataclasses import dataclass


def runs_from_env(default: int) -> int:
    """`BENCH_RUNS` over the benchmark's default (at least 1)."""
    return max(1, int(os.environ.get("BENCH_RUNS", str(default))))


@dataclass(frozen=True, slots=True)
class Spread:
    """min / median / max of one figure over the runs of a benchmark."""

    values: tuple[float, ...]

    @classmethod
    def of(cls, values: list[float]) -> Spread:
        if not values:
            raise ValueError("a spread needs at least one value")
        return cls(tuple(values))

    @property
    def minimum(self) -> float:
        return min(self.values)

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    @property
    def maximum(self) -> float:
        return max(self.values)

    def format(self, pattern: str = "{:.2f}", suffix: str = "") -> str:
        """e.g. `0.81 / 0.84 / 0.88×`: min / median / max."""
        parts = (pattern.format(self.minimum), pattern.format(self.median), pattern.format(self.maximum))
        return " / ".join(parts) + suffix
