"""Per-tenant rate limits by endpoint class (Grey Distributed's), with the `limits` library.

A sliding-window counter is O(1) per hit. The storage is in-process by default; give a
`redis://` URL so several gateways share the windows.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from limits import RateLimitItem, RateLimitItemPerSecond, storage, strategies

from runtime.config import ApiRateLimits, RateLimits


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


class RateLimited(Exception):
    """Past the limit of a bucket; `retry_after` seconds until the window has room again."""

    def __init__(self, window: Window, retry_after: int, bucket: str, window_seconds: int) -> None:
        super().__init__(f"Rate limit exceeded. Retry after {retry_after} seconds.")
        self.window, self.retry_after = window, retry_after
        self.bucket, self.window_seconds = bucket, window_seconds


BUCKETS = ("submit", "tasks_read", "cluster", "other", "auth_failures")
#: The buckets an API may limit on its own (`rate_limits.apis.<api>`).
API_BUCKETS = ("submit", "tasks_read", "cluster", "other")


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
        self._per_second: dict[int, RateLimitItem] = {}  # per-tenant quota limits, by amount
        # An API with limits of its own (`rate_limits.apis`) counts in its own windows.
        self._api_limits: dict[str, ApiRateLimits] = dict(limits.apis)
        self._api_items: dict[tuple[str, str], RateLimitItem | None] = {
            (api, name): None
            if getattr(own, name) is None
            else RateLimitItemPerSecond(getattr(own, name), window)
            for api, own in limits.apis.items()
            for name in API_BUCKETS
        }

    def api_limits(self, api: str) -> ApiRateLimits | None:
        """An API's own limits (`rate_limits.apis.<api>`): e.g. CloudAI's
        `websocket_connections` per client; None when the API has none of its own."""
        return self._api_limits.get(api)

    def hit(self, tenant_id: str, bucket: str, api: str | None = None) -> Window | None:
        """Counts one request (in `api`'s own windows when it has limits of its own); raises
        RateLimited past the limit."""
        namespace = bucket
        if api is not None and (api, bucket) in self._api_items:
            item, namespace = self._api_items[(api, bucket)], f"{api}:{bucket}"
        else:
            item = self._items[bucket]
        if item is None:
            return None
        allowed = self._strategy.hit(item, tenant_id, namespace)
        stats = self._strategy.get_window_stats(item, tenant_id, namespace)
        window = Window(item.amount, stats.remaining, int(stats.reset_time))
        if not allowed:
            retry_after = max(1, int(stats.reset_time - time.time() + 0.999))
            raise RateLimited(window, retry_after, bucket, self.window_seconds)
        return window

    def hit_per_second(self, tenant_id: str, name: str, per_second: int) -> Window:
        """Counts one request against a per-tenant limit of `per_second` (a quota, e.g.
        `submit_rate_per_second`: one second's sliding window); raises RateLimited past it.
        0 refuses every request."""
        item = self._per_second.get(per_second)
        if item is None:
            item = self._per_second[per_second] = RateLimitItemPerSecond(max(1, per_second), 1)
        allowed = per_second > 0 and self._strategy.hit(item, tenant_id, name)
        stats = self._strategy.get_window_stats(item, tenant_id, name)
        window = Window(per_second, stats.remaining if per_second > 0 else 0, int(stats.reset_time))
        if not allowed:
            retry_after = max(1, int(stats.reset_time - time.time() + 0.999))
            raise RateLimited(window, retry_after, name, 1)
        return window

    def count(self, key: str, bucket: str) -> None:
        """Counts one event against `key` without refusing it (e.g. a failed sign-in)."""
        item = self._items[bucket]
        if item is not None:
            self._strategy.hit(item, key, bucket)

    def refuse_if_spent(self, key: str, bucket: str) -> None:
        """Raises RateLimited when `key` has used up the window, counting nothing."""
        item = self._items[bucket]
        if item is None:
            return
        stats = self._strategy.get_window_stats(item, key, bucket)
        if stats.remaining <= 0:
            retry_after = max(1, int(stats.reset_time - time.time() + 0.999))
            window = Window(item.amount, 0, int(stats.reset_time))
            raise RateLimited(window, retry_after, bucket, self.window_seconds)

    def peek(self, tenant_id: str, bucket: str) -> Window | None:
        item = self._items[bucket]
        if item is None:
            return None
        stats = self._strategy.get_window_stats(item, tenant_id, bucket)
        return Window(item.amount, stats.remaining, int(stats.reset_time))
