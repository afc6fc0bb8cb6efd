"""Each tenant's quotas as this gateway last read them, for the checks made before a submit
reaches the store: `submit_rate_per_second` (429 `rate_limited`, per tenant).

The limits that must hold across gateways are decided by the store itself, in the statement
that writes (`max_queue_depth` at insert, the running-task quotas at claim:
runtime.store.admission). The rate is per gateway (per shared limiter storage, with a
`redis://` GREY_RATE_LIMIT_STORAGE_URL), so a change reaches it within `ttl_seconds`, at
once on the gateway that made it (`forget`).
"""

from __future__ import annotations

import threading
import time

from runtime.store import QuotaRecord, Store

#: How long a tenant's quotas are used before they are read again.
TTL_SECONDS = 1.0


class TenantQuotas:
    """A short-lived cache of `store.quotas.get`; safe to share between threads."""

    def __init__(self, store: Store, ttl_seconds: float = TTL_SECONDS) -> None:
        self._store, self._ttl = store, ttl_seconds
        self._cache: dict[str, tuple[float, QuotaRecord]] = {}
        self._lock = threading.Lock()

    def cached(self, tenant_id: str) -> QuotaRecord | None:
        """The tenant's quotas if read within the TTL (no store read)."""
        entry = self._cache.get(tenant_id)
        if entry is None or time.monotonic() - entry[0] > self._ttl:
            return None
        return entry[1]

    def read(self, tenant_id: str) -> QuotaRecord:
        """Blocking: reads the tenant's quotas from the store and keeps them."""
        quotas = self._store.quotas.get(tenant_id)
        with self._lock:
            self._cache[tenant_id] = (time.monotonic(), quotas)
        return quotas

    def forget(self, tenant_id: str) -> None:
        """The tenant's quotas changed: read them again next time."""
        with self._lock:
            self._cache.pop(tenant_id, None)
