"""The gateway's per-tenant state: rate limits (429) and quotas (503).

Rate limits use the runtime's algorithm (`limits`' sliding-window counter, see
runtime/services/ratelimit.py): windows aligned to multiples of their length; a request is allowed while
floor(previous window's count x the share of it still inside the sliding window + current
window's count) < limit; an allowed request counts in the current window, a refused one does
not.
"""

from __future__ import annotations

from runtime.config import ClusterConfig

#: Stands for "no limit" in comparisons, so the hot path needs no None checks.
UNLIMITED = 1 << 62

#: Why the gateway refused a submit, and the HTTP status the API would have answered.
REJECT_STATUS = {"rate_limited": 429, "queue_full": 503, "no_capacity": 409, "unschedulable": 409}


class SlidingWindowCounter:
    """One limit of one tenant: `limit` requests per `window` seconds."""

    __slots__ = ("cur", "k", "limit", "prev", "window")

    def __init__(self, limit: float | None, window: float) -> None:
        self.limit = limit or UNLIMITED
        self.window = window
        self.k = 0.0  # index of the current window
        self.cur = 0
        self.prev = 0

    def full(self, now: float) -> bool:
        """Would a request at `now` be refused? (Moves the windows along; counts nothing.)"""
        w = self.window
        k = now // w
        if k != self.k:
            self.prev = self.cur if k == self.k + 1 else 0
            self.cur = 0
            self.k = k
        if not self.prev:
            return self.cur >= self.limit
        return int(self.prev * (1.0 - (now - k * w) / w) + self.cur) >= self.limit


class Tenant:
    """Gateway state of one tenant: its two submit limits and its in-flight counts."""

    __slots__ = ("active", "limited", "max_active", "max_queued", "name", "per_second", "queued", "submit")

    def __init__(self, name: str, cfg: ClusterConfig) -> None:
        q = cfg.quota_for(name)
        rl = cfg.rate_limits
        self.name = name
        self.submit = SlidingWindowCounter(rl.submit, rl.window_seconds)
        self.per_second = SlidingWindowCounter(q.submit_rate_per_second, 1.0)
        self.limited = bool(rl.submit or q.submit_rate_per_second)
        self.max_queued = q.max_queue_depth or UNLIMITED
        self.max_active = q.max_concurrent_tasks or UNLIMITED
        self.queued = 0  # waiting in a queue
        self.active = 0  # accepted and not finished: waiting, running, in backoff

    def rate_limited(self, now: float) -> bool:
        """True if the submit at `now` is refused (429); else it is counted."""
        if not self.limited:
            return False
        if self.submit.full(now) or self.per_second.full(now):
            return True
        self.submit.cur += 1
        self.per_second.cur += 1
        return False
