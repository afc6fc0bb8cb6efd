"""Open streams per tenant, bounded, and the gateway's word that it is closing.

A stream holds a watch and wakes every poll interval until its task ends; without a bound a
tenant could open thousands within its read limit and pin a gateway's CPU. The count is per
gateway process (each gateway bounds its own load).
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager


class TooManyStreams(Exception):
    """The tenant already has `limit` streams open on this gateway."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"At most {limit} open streams per tenant; close one first")
        self.limit = limit


class Streams:
    def __init__(self, per_tenant: int | None) -> None:
        self.per_tenant = per_tenant
        self.closing = threading.Event()  # set on shutdown: streams end with a final event
        self._open: Counter[str] = Counter()
        self._lock = threading.Lock()

    @contextmanager
    def slot(self, tenant_id: str) -> Iterator[None]:
        with self._lock:
            if self.per_tenant is not None and self._open[tenant_id] >= self.per_tenant:
                raise TooManyStreams(self.per_tenant)
            self._open[tenant_id] += 1
        try:
            yield
        finally:
            with self._lock:
                self._open[tenant_id] -= 1
                if not self._open[tenant_id]:
                    del self._open[tenant_id]

    def open_count(self, tenant_id: str) -> int:
        return self._open.get(tenant_id, 0)
