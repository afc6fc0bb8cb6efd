"""Per-tenant rate limits by endpoint class (seed 000), with the `limits` library.

A sliding-window counter is O(1) per hit. The storage is in-process by default; give a
`redis://` URL so several gateways share the windows.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from limits import RateLimitItem, RateLimitItemPerSecond, storage, strategies

from runtime.api.errors import ApiError
from runtime.api.operation import OperationSpec
from runtime.config import RateLimits


@dataclass(frozen=True, slots=True)
class Window:
    limit: int
    remaining: int
    reset_at: int  # unix seconds

    def headers(self) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(self.reset_at),
        }


BUCKETS = ("submit", "tasks_read", "cluster", "other")


def bucket_of(operation: OperationSpec) -> str:
    if operation.operation_id == "submitTask":
        return "submit"
    if operation.tag == "tasks" and operation.method == "GET":
        return "tasks_read"
    if operation.tag == "cluster":
        return "cluster"
    return "other"


class RateLimiter:
    """Limits from the cluster config's `rate_limits` (None there means unlimited)."""

    def __init__(self, limits: RateLimits, storage_url: str = "memory://") -> None:
        self._storage = storage.storage_from_string(storage_url)
        self._strategy = strategies.SlidingWindowCounterRateLimiter(self._storage)
        window = max(1, round(limits.window_seconds))
        self.window_seconds = window
        self._items: dict[str, RateLimitItem | None] = {
            name: None
            if getattr(limits, name) is None
            else RateLimitItemPerSecond(getattr(limits, name), window)
            for name in BUCKETS
        }

    def hit(self, tenant_id: str, bucket: str) -> Window | None:
        """Counts one request; raises `rate_limited` (with Retry-After) past the limit."""
        item = self._items[bucket]
        if item is None:
            return None
        allowed = self._strategy.hit(item, tenant_id, bucket)
        stats = self._strategy.get_window_stats(item, tenant_id, bucket)
        window = Window(item.amount, stats.remaining, int(stats.reset_time))
        if not allowed:
            retry_after = max(1, int(stats.reset_time - time.time() + 0.999))
            raise ApiError(
                "rate_limited",
                f"Rate limit exceeded. Retry after {retry_after} seconds.",
                {"limit": item.amount, "window_seconds": self.window_seconds, "bucket": bucket},
                headers={**window.headers(), "Retry-After": str(retry_after)},
            )
        return window

    def peek(self, tenant_id: str, bucket: str) -> Window | None:
        item = self._items[bucket]
        if item is None:
            return None
        stats = self._strategy.get_window_stats(item, tenant_id, bucket)
        return Window(item.amount, stats.remaining, int(stats.reset_time))
