"""Small builders for clusters and workloads in tests (one pool unless said otherwise)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from runtime.config import ClusterConfig
from simulator.workload import Workload


def cluster(threads: int = 1, nodes: int = 1, policy: str = "strict", **extra: Any) -> ClusterConfig:
    """A cpu pool of `nodes` x `threads`; `extra` merges into the config (pools included)."""
    pools = {"cpu": {"nodes": nodes, "threads_per_node": threads}}
    pools.update(extra.pop("pools", {}))
    return ClusterConfig.model_validate({"pools": pools, "queues": {"policy": policy}, **extra})


def exp_fn(mean: float = 1.0, **extra: Any) -> dict[str, Any]:
    return {"service": {"dist": "exponential", "mean": mean}, **extra}


def poisson(rate: float, *mix: dict[str, Any], tenant: str = "t") -> dict[str, Any]:
    return {
        "tenant": tenant,
        "arrivals": {"process": "poisson", "rate": rate},
        "mix": list(mix) or [{"function": "f"}],
    }


def workload(functions: dict[str, Any], *streams: dict[str, Any]) -> Workload:
    return Workload.model_validate({"functions": functions, "streams": list(streams)})


def trace_workload(
    tmp: Path,
    rows: list[str],
    functions: dict[str, Any] | None = None,
    header: str = "time,tenant,function,priority,service_time",
) -> Workload:
    """A workload replaying `rows` (CSV lines) written to a file under `tmp`."""
    path = tmp / "trace.csv"
    path.write_text("\n".join([header, *rows]) + "\n")
    return workload(functions or {}, {"arrivals": {"process": "trace", "path": str(path)}})
