"""Service-level objectives in plain words, e.g. `p99 e2e <= 2s for critical`, `rejected <= 1%`.

An objective names a statistic of a metric, a limit and optionally a scope (a priority or a
pool).  It is judged for every pool's share of the traffic it names: critical GPU tasks that
miss the target are not excused by fast critical CPU tasks.  That is stricter than the pooled
figure, and it lets the planner size each pool on its own.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from runtime.config import POOLS, PRIORITIES

_LATENCY = {
    "e2e": "e2e",
    "end-to-end": "e2e",
    "latency": "e2e",
    "wait": "wait",
    "queue-wait": "wait",
    "queue_wait": "wait",
}
_FRACTIONS = {"rejected": "rejected_fraction", "utilization": "utilization"}
_PATTERN = re.compile(
    r"^\s*(?:(?P<stat>p50|p95|p99|mean|max)\s+(?P<metric>[a-z0-9_-]+)|(?P<frac>[a-z]+))"
    r"\s*(?:<=|≤|<)\s*(?P<num>\d+(?:\.\d*)?|\.\d+)\s*(?P<unit>ms|s|%)?"
    r"\s*(?:for\s+(?P<scope>[a-z]+))?\s*$"
)
_FORM = (
    "expected '<p50|p95|p99|mean|max> <e2e|wait> <= <number>[s|ms] [for <priority|pool>]' "
    "or '<rejected|utilization> <= <number>[%] [for <priority|pool>]'"
)


@dataclass(frozen=True)
class SLO:
    """`stat` of `metric` must be <= `limit` (seconds, or a fraction) within `scope`."""

    text: str
    metric: str  # "e2e" | "wait" | "rejected_fraction" | "utilization"
    stat: str | None  # "p99", "mean", ... for latencies; None for fractions
    limit: float
    scope: str | None  # a priority, a pool, or None for all traffic

    def applies_to(self, pool: str) -> bool:
        return self.scope is None or self.scope in PRIORITIES or self.scope == pool

    def value(self, tree: dict[str, Any], pool: str, need_traffic: bool = True) -> float:
        """This objective's figure for one pool's share of the traffic (NaN: no such traffic)."""
        if not self.applies_to(pool):
            return math.nan
        if self.metric == "utilization":
            return float(tree["by_pool"][pool]["utilization"])
        block = (
            tree["by_pool_priority"][pool][self.scope] if self.scope in PRIORITIES else tree["by_pool"][pool]
        )
        if self.metric == "rejected_fraction":
            if need_traffic and not block["arrivals"]:
                return math.nan
            return float(block["rejected_fraction"])
        return float(block[self.metric][self.stat])


def parse_slo(text: str) -> SLO:
    """Parse one objective; ValueError says what form was expected."""
    m = _PATTERN.match(text.strip().lower())
    if not m:
        raise ValueError(f"{_FORM}, got {text!r}")
    num = float(m["num"])
    unit = m["unit"]
    scope = m["scope"]
    if scope in ("all", "any"):
        scope = None
    if scope is not None and scope not in PRIORITIES and scope not in POOLS:
        raise ValueError(f"expected a scope among {', '.join(PRIORITIES + POOLS)}, got {scope!r}")
    if m["stat"]:
        metric = _LATENCY.get(m["metric"])
        if metric is None:
            raise ValueError(f"{_FORM}, got metric {m['metric']!r}")
        if unit == "%":
            raise ValueError(f"a latency limit is in s or ms, got {text!r}")
        limit = num / 1000 if unit == "ms" else num
        return SLO(text, metric, m["stat"], limit, scope)
    metric = _FRACTIONS.get(m["frac"])
    if metric is None:
        raise ValueError(f"{_FORM}, got {m['frac']!r}")
    if unit in ("s", "ms"):
        raise ValueError(f"a fraction limit is a number or a percentage, got {text!r}")
    limit = num / 100 if unit == "%" else num
    if metric == "utilization" and scope in PRIORITIES:
        raise ValueError(f"utilization is per pool, got scope {scope!r}")
    return SLO(text, metric, None, limit, scope)


def judge(
    slos: list[SLO], mean: dict[str, Any], ci: dict[str, Any], pool: str, conservative: bool = True
) -> list[dict[str, Any]]:
    """Each objective's figure for a pool: mean, CI half-width, and whether it is met.

    `conservative` judges the upper end of the 95 % interval (when there is one), so the
    answer holds with confidence rather than on average.
    """
    out = []
    for slo in slos:
        m = slo.value(mean, pool)
        h = slo.value(ci, pool, need_traffic=False) if slo.applies_to(pool) else math.nan
        h = 0.0 if math.isnan(h) else h
        # No traffic of that kind in this pool: nothing to miss.
        met = math.isnan(m) or (m + h if conservative else m) <= slo.limit
        out.append({"slo": slo.text, "pool": pool, "mean": m, "ci95": h, "limit": slo.limit, "met": met})
    return out
