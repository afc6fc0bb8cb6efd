"""What handlers reach through `ctx.services`: one instance per process."""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass, field

from runtime.config import ClusterConfig, RateLimits, load_cluster_config
from runtime.execution.runtime import Runtime
from runtime.services.auth import Authenticator
from runtime.services.blocking import BlockingPool
from runtime.services.estimates import StartEstimates
from runtime.services.metrics import Metrics
from runtime.services.quotas import TenantQuotas
from runtime.services.ratelimit import RateLimiter
from runtime.services.streams import Streams
from runtime.services.telemetry import TelemetryHub, TelemetrySettings
from runtime.settings import Settings
from runtime.store import Store

VERSION = "0.1.0"


@dataclass
class Services:
    settings: Settings
    store: Store
    auth: Authenticator
    limiter: RateLimiter
    blocking: BlockingPool
    metrics: Metrics
    node_id: str
    cluster: ClusterConfig
    runtime: Runtime
    streams: Streams
    quotas: TenantQuotas  # each tenant's quotas, read at most once a second (submit rate)
    estimates: StartEstimates  # the figures behind a submit's estimated_start
    telemetry: TelemetryHub  # /ws/telemetry: the cluster-event feed of this process
    version: str = VERSION
    started_at: float = field(default_factory=time.time)

    @classmethod
    def open(
        cls,
        settings: Settings,
        rate_limits: RateLimits | None = None,
        cluster: ClusterConfig | None = None,
    ) -> Services:
        """Opens the store and builds the runtime; starts no thread (see `start_runtime`)."""
        if cluster is None:
            cluster = (
                load_cluster_config(settings.cluster_config)
                if settings.cluster_config is not None
                else ClusterConfig.default()
            )
        store = Store.open(settings.database_url)
        blocking = BlockingPool(settings.blocking_threads)
        limiter = RateLimiter(rate_limits or cluster.rate_limits, settings.rate_limit_storage_url)
        return cls(
            settings=settings,
            store=store,
            auth=Authenticator(store, settings.token_ttl_seconds, settings.credential_cache_seconds, limiter),
            limiter=limiter,
            blocking=blocking,
            metrics=Metrics(),
            node_id=f"grey-gateway-{socket.gethostname()}-{settings.rest_port}",
            cluster=cluster,
            runtime=Runtime(settings, store, cluster),
            streams=Streams((rate_limits or cluster.rate_limits).streams_per_tenant),
            quotas=TenantQuotas(store),
            estimates=StartEstimates(store),
            telemetry=TelemetryHub(store, blocking, TelemetrySettings.from_env()),
        )

    def worker_threads(self) -> int:
        """Threads of the in-process cpu pool `grey serve` runs (see Settings.worker_threads)."""
        if self.settings.worker_threads is not None:
            return self.settings.worker_threads
        if self.runtime.kind != "embedded":
            return 0
        return self.cluster.pools["cpu"].threads_per_node

    def tee_threads(self) -> int:
        """Threads of the in-process tee pool (simulation mode) `grey serve` runs with the
        embedded broker, beside its cpu pool: `GREY_TEE_THREADS` (default 2; 0: none)."""
        if self.runtime.kind != "embedded" or self.worker_threads() == 0:
            return 0
        return self.runtime.tee.settings.threads

    def start_runtime(self, worker_threads: int | None = None, tee_threads: int | None = None) -> None:
        """Gateway node, restart recovery, and the in-process pools (explicit: tests may skip
        them). Given `worker_threads` alone, no tee pool starts unless `tee_threads` says so."""
        if tee_threads is None:
            tee_threads = self.tee_threads() if worker_threads is None else 0
        self.runtime.start(
            gateway_node_id=self.node_id,
            address=f"{self.settings.rest_host}:{self.settings.rest_port}",
            worker_threads=self.worker_threads() if worker_threads is None else worker_threads,
            tee_threads=tee_threads,
        )
        self._start_placement_node(explicit_only=worker_threads is not None)

    def _start_placement_node(self, explicit_only: bool) -> None:
        """gswarm: the in-process placement node of `grey serve` (`node1` with the embedded
        broker; GREY_PLACEMENT_EMBEDDED_NODE names another or, empty, none). Tests that pick
        their pools get it only when that variable is set."""
        import os

        from runtime.execution.placement.settings import embedded_node_id
        from runtime.execution.workers import PoolOptions

        if explicit_only and "GREY_PLACEMENT_EMBEDDED_NODE" not in os.environ:
            return
        node_id = embedded_node_id(self.runtime.kind)
        if node_id is not None:
            address = f"{self.settings.rest_host}:{self.settings.rest_port}"
            options = PoolOptions(threads=2, node_id=node_id, address=address, placement_only=True)
            self.runtime.start_pool(options)

    def close(self) -> None:
        self.runtime.close()
        self.blocking.shutdown()
        self.store.dispose()
