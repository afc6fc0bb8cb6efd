"""`Twin`: one replication of the cluster under a workload, from config to results.

The entry point the CLI, the replications, the planner, the benchmark and the tests use; it
only joins the set-up (simulator/build.py) to the running model (simulator/model.py).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from runtime.config import ClusterConfig
from simulator.build import Sources, build_model
from simulator.model import Outage, RunLength
from simulator.results import summarize
from simulator.workload import Workload


class Twin:
    """One replication of the cluster under a workload."""

    def __init__(
        self,
        cluster: ClusterConfig,
        workload: Workload,
        length: RunLength,
        seed: int = 0,
        replication: int = 0,
        progress: Callable[[int, float], None] | None = None,
        outages: Sequence[Outage] = (),
    ) -> None:
        self.model = build_model(cluster, workload, length, seed, replication, progress)
        self.sources = Sources(self.model, cluster, workload, seed, replication)
        self.sources.outages = outages
        self.env = self.model.env

    def run(self) -> dict[str, Any]:
        """Run to the end and return the results as plain data (see `results`)."""
        self.sources.start()
        self.model.run()
        return self.results()

    def results(self) -> dict[str, Any]:
        """Counts, latency summaries, utilization and Little's-law check as plain data."""
        return summarize(self.model)
