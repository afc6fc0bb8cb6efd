"""The deliverer: the coordinator's duty of sending what the outbox holds.

Every process that runs nodes has one (runtime.execution.runtime); only the one whose node
holds the coordinator lease (`reconciler`, runtime/store/coordination.py) sends. Its loop
thread, every `poll_seconds` or as soon as an attempt ends: records the attempts that
ended (one transaction), then claims as many due deliveries as it has free senders
(`concurrency` threads) and hands them over. Submits never wait for it: it shares nothing
with them but the store, and its transactions are short.

At least once: a delivery row leaves the outbox only once its POST got a 2xx (or it
became a dead letter). A deliverer that dies mid-attempt leaves its claims to expire
(`claim_seconds`), and the next coordinator sends them again with the same `webhook-id`.
Retries follow `retry_schedule`, waiting at least the receiver's `Retry-After`; 410 Gone
disables the webhook; a delivery out of attempts is a dead letter (listed and redelivered
through the API).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Collection
from datetime import datetime, timedelta

from runtime.execution.reconciler import RECONCILER
from runtime.execution.webhooks.egress import EgressPolicy
from runtime.execution.webhooks.payload import body, headers
from runtime.execution.webhooks.sender import Attempt, Sender
from runtime.execution.webhooks.settings import WebhookSettings
from runtime.store import Store
from runtime.store.coltypes import utc_now
from runtime.store.webhook_deliveries import DueDelivery, Settlement

logger = logging.getLogger("grey.webhooks")

#: How long a reading of the coordinator lease is trusted.
LEASE_CHECK_SECONDS = 1.0


class WebhookDeliverer:
    def __init__(
        self,
        store: Store,
        settings: WebhookSettings,
        own_nodes: Callable[[], Collection[str]],
        policy: EgressPolicy | None = None,
    ) -> None:
        self.store, self.settings, self._own_nodes = store, settings, own_nodes
        self.policy = policy or EgressPolicy(settings.allowed_networks)
        self._sender: Sender | None = None
        self._sender_lock = threading.Lock()
        self._stopping = threading.Event()
        self._wake = threading.Event()
        self._jobs: queue.SimpleQueue[DueDelivery | None] = queue.SimpleQueue()
        self._ended: queue.SimpleQueue[Settlement] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._in_flight = 0  # claimed and not settled (loop thread only)
        self._lease_seen = (-LEASE_CHECK_SECONDS, False)
        self._failing = False

    @property
    def sender(self) -> Sender:
        with self._sender_lock:
            if self._sender is None:
                self._sender = Sender(self.policy, self.settings.timeout_seconds)
            return self._sender

    # -- threads ----------------------------------------------------------------------------

    def start(self) -> None:
        if self._threads:
            return
        self._stopping.clear()
        self._jobs = queue.SimpleQueue()  # senders left over from a stop keep the old one
        self._threads = [threading.Thread(target=self._loop, name="grey-webhooks", daemon=True)]
        self._threads += [
            threading.Thread(
                target=self._send_loop, args=(self._jobs,), name=f"grey-webhooks-{n}", daemon=True
            )
            for n in range(self.settings.concurrency)
        ]
        for thread in self._threads:
            thread.start()

    def stop(self, grace_seconds: float = 2.0) -> None:
        """Stops claiming; attempts in flight get `grace_seconds` to end (those that do not
        are sent again once their claim expires)."""
        if not self._threads:
            return
        self._stopping.set()
        self._wake.set()
        for _ in self._threads[1:]:
            self._jobs.put(None)
        deadline = time.monotonic() + grace_seconds
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        self._threads = []
        try:
            self._settle()
        except Exception:
            logger.warning("webhooks: could not record the last attempts", exc_info=True)
        with self._sender_lock:
            if self._sender is not None:
                self._sender.close()
                self._sender = None

    def _loop(self) -> None:
        while not self._stopping.is_set():
            self._wake.clear()
            try:
                self.step()
                self._failing = False
            except Exception:
                if not self._failing:  # once per streak of failures
                    logger.warning("webhooks: delivery pass failed", exc_info=True)
                self._failing = True
            self._wake.wait(self.settings.poll_seconds)

    def _send_loop(self, jobs: queue.SimpleQueue[DueDelivery | None]) -> None:
        while (delivery := jobs.get()) is not None:
            self._ended.put(self.attempt(delivery))
            self._wake.set()

    # -- one pass ---------------------------------------------------------------------------

    def step(self) -> int:
        """Records ended attempts, then claims due deliveries for the free senders (holding
        the coordinator lease); how many it claimed."""
        self._settle()
        free = self.settings.concurrency - self._in_flight
        if free <= 0 or self._stopping.is_set() or not self.holds_coordinator():
            return 0
        now = utc_now()
        until = now + timedelta(seconds=self.settings.claim_seconds)
        due = self.store.webhooks.deliveries.claim_due(now, free, until)
        self._in_flight += len(due)
        for delivery in due:
            self._jobs.put(delivery)
        return len(due)

    def _settle(self) -> None:
        ended: list[Settlement] = []
        while True:
            try:
                ended.append(self._ended.get_nowait())
            except queue.Empty:
                break
        if not ended:
            return
        try:
            self.store.webhooks.deliveries.settle(ended, utc_now())
        except Exception:
            for settlement in ended:  # recorded at the next pass
                self._ended.put(settlement)
            raise
        self._in_flight -= len(ended)

    def holds_coordinator(self) -> bool:
        """Does a node of this process hold the coordinator lease? (read at most once a second)"""
        at, held = self._lease_seen
        if time.monotonic() - at < LEASE_CHECK_SECONDS:
            return held
        lease = self.store.coordination.current(RECONCILER)
        held = lease is not None and lease.holder in self._own_nodes() and lease.expires_at > utc_now()
        self._lease_seen = (time.monotonic(), held)
        return held

    # -- one attempt ------------------------------------------------------------------------

    def attempt(self, delivery: DueDelivery) -> Settlement:
        """Sends the delivery once; how it ended (never raises)."""
        now = utc_now()
        payload = delivery.body
        try:
            payload = payload or body(delivery)
            signed = headers(delivery.delivery_id, delivery.event, delivery.secret, payload, now)
            result = self.sender.post(delivery.url, payload.encode(), signed)
        except Exception as error:  # a bug, not the receiver: retried on the schedule
            logger.warning("webhooks: attempt of %s failed", delivery.delivery_id, exc_info=True)
            result = Attempt(None, f"{type(error).__name__}: {error}")
        return self.settlement(delivery, payload or "", result, now)

    def settlement(self, delivery: DueDelivery, payload: str, result: Attempt, now: datetime) -> Settlement:
        """What the store records of `result`: delivered, due again later, or dead."""
        ids = (delivery.delivery_id, delivery.webhook_id, payload)
        if result.delivered:
            return Settlement(*ids, delivered=True, status_code=result.status_code)
        error, retry_at = result.error, None
        attempts = delivery.attempts + 1
        if result.gone:
            error = "HTTP 410 Gone: the webhook is disabled"
        elif attempts <= len(self.settings.retry_schedule):
            delay = self.settings.retry_schedule[attempts - 1]
            if result.retry_after is not None:
                delay = max(delay, min(result.retry_after, self.settings.max_retry_after_seconds))
            retry_at = now + timedelta(seconds=delay)
        return Settlement(
            *ids,
            delivered=False,
            status_code=result.status_code,
            error=error,
            retry_at=retry_at,
            disable=result.gone,
        )
