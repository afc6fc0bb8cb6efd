"""Turn a finished replication into plain data: counts, latencies, utilization, Little's law.

Plain nested dicts of numbers so replications can be averaged leaf by leaf and written as JSON.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from runtime.config import POOLS, PRIORITIES
from simulator.gateway import REJECT_STATUS
from simulator.stats import Metric

if TYPE_CHECKING:
    from simulator.model import Model

_NPRI = len(PRIORITIES)


def _keys(pool: str | None = None, priority: str | None = None) -> list[int]:
    pools = [POOLS.index(pool)] if pool else range(len(POOLS))
    pris = [PRIORITIES.index(priority)] if priority else range(_NPRI)
    return [p * _NPRI + q for p in pools for q in pris]


def _merged(metrics: list[Metric], keys: list[int]) -> dict[str, float]:
    if len(keys) == 1:
        return metrics[keys[0]].summary()
    out = Metric()
    for k in keys:
        out.merge(metrics[k])
    return out.summary()


def _block(tw: Model, keys: list[int], window: float) -> dict[str, Any]:
    def total(counts: list[int]) -> int:
        return sum(counts[k] for k in keys)

    arrivals = total(tw.c_arr)
    accepted = total(tw.c_acc)
    by_reason = {r: total(c) for r, c in tw.c_rej.items()}
    by_status: dict[str, int] = {}
    for reason, n in by_reason.items():
        code = str(REJECT_STATUS[reason])
        by_status[code] = by_status.get(code, 0) + n
    rejected = sum(by_reason.values())
    completed = total(tw.c_done)
    failed = total(tw.c_failed)
    timed_out = total(tw.c_timeout)
    return {
        "arrivals": arrivals,
        "accepted": accepted,
        "rejected": rejected,
        "rejected_fraction": rejected / arrivals if arrivals else 0.0,
        "rejected_by_reason": by_reason,
        "rejected_by_status": by_status,
        "completed": completed,
        "failed": failed,
        "timed_out": timed_out,
        "unfinished": accepted - completed - failed - timed_out,
        "retries": total(tw.c_retry),
        "requeued_node_failure": total(tw.c_requeue),
        "throughput": completed / window if window > 0 else 0.0,
        "wait": _merged(tw.m_wait, keys),
        "e2e": _merged(tw.m_e2e, keys),
    }


def _pool_block(tw: Model, name: str, window: float) -> dict[str, Any]:
    pool = tw.pools[POOLS.index(name)]
    pc = tw.cfg.pool(name)
    w = pool.window
    threads = pc.nodes * pc.threads_per_node
    gpus = pc.nodes * pc.gpus_per_node

    def ratio(area: float, capacity: float) -> float:
        return area / (capacity * window) if capacity and window > 0 else 0.0

    return {
        **_block(tw, _keys(pool=name), window),
        "nodes": pc.nodes,
        "threads": threads,
        "utilization": ratio(w.get("busy", 0.0), threads),
        "gpu_utilization": ratio(w.get("busy_gpus", 0.0), gpus),
        "availability": ratio(w.get("nodes_up", 0.0), pc.nodes),
        "mean_queue_length": w.get("q", 0.0) / window if window > 0 else 0.0,
        "mean_in_system": w.get("sys", 0.0) / window if window > 0 else 0.0,
    }


def summarize(tw: Model) -> dict[str, Any]:
    """The results of one replication."""
    window = tw.t1 - tw.t0
    in_system = sum(p.window.get("sys", 0.0) for p in tw.pools) / window if window > 0 else 0.0
    accepted = sum(tw.c_acc)
    lam = accepted / window if window > 0 else 0.0
    w_mean = tw.soj_sum / tw.soj_n if tw.soj_n else 0.0
    little_rhs = lam * w_mean
    series = tw.series
    return {
        "window": {"start": tw.t0, "end": tw.t1, "length": window, "run_end": tw.env.now},
        "arrivals_total": tw.n_arrivals,
        "overall": _block(tw, _keys(), window),
        "by_priority": {p: _block(tw, _keys(priority=p), window) for p in PRIORITIES},
        "by_pool": {p: _pool_block(tw, p, window) for p in POOLS},
        "by_pool_priority": {
            pool: {p: _block(tw, _keys(pool, p), window) for p in PRIORITIES} for pool in POOLS
        },
        "littles_law": {
            "L": in_system,
            "lambda": lam,
            "W": w_mean,
            "lambda_W": little_rhs,
            "rel_error": abs(in_system - little_rhs) / in_system if in_system > 0 else 0.0,
        },
        "unfinished_at_stop": tw.unfinished,
        "queue_length": {
            "t": list(series.t),
            **{p: list(v) for p, v in zip(POOLS, series.values, strict=True)},
        },
    }


def is_number(x: object) -> bool:
    return (
        isinstance(x, int | float)
        and not isinstance(x, bool)
        and not (isinstance(x, float) and math.isnan(x))
    )
