"""What handlers reach through `ctx.services`: one instance per process."""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass, field

from runtime.auth import Authenticator
from runtime.blocking import BlockingPool
from runtime.metrics import Metrics
from runtime.ratelimit import RateLimiter, RateLimits
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
    version: str = VERSION
    started_at: float = field(default_factory=time.time)

    @classmethod
    def open(cls, settings: Settings, rate_limits: RateLimits | None = None) -> Services:
        store = Store.open(settings.database_url)
        return cls(
            settings=settings,
            store=store,
            auth=Authenticator(store, settings.token_ttl_seconds, settings.credential_cache_seconds),
            limiter=RateLimiter(rate_limits or RateLimits(), settings.rate_limit_storage_url),
            blocking=BlockingPool(settings.blocking_threads),
            metrics=Metrics(),
            node_id=f"grey-gateway-{socket.gethostname()}-{settings.rest_port}",
        )

    def close(self) -> None:
        self.blocking.shutdown()
        self.store.dispose()
