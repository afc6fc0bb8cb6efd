"""The reconciler: unfinished tasks whose work was lost are made to run again.

The store is the record; the broker and the workers only carry work, and either can lose
it while every node stays alive: a worker wedged, or cut off from the store, stops
renewing the leases of its running attempts; a broker restarted empty holds none of the
messages of pending tasks. Two passes, at every heartbeat:

1. **Expired leases.** A claim leases its attempt until `now + heartbeat.lease_seconds`
   (`tasks.lease_expires_at`); the worker running it renews the leases of all its running
   attempts at each heartbeat (one UPDATE per worker). An attempt whose lease has run out
   goes back to pending, the attempt named in its event, and its message is sent again,
   whatever its node's state (the reaper covers nodes that stopped heartbeating). A batch
   keeps its one claim: its lease is extended and its unfinished items are sent again if
   its queue holds fewer messages than it has items missing.
2. **Pending tasks whose message may be gone.** Every send records its time
   (`tasks.sent_at`: submit, retry (the time it is due), re-check, re-queue, re-send).
   Per queue, pending tasks sent more than `heartbeat.pending_resend_seconds` ago are
   *stale*; when the broker holds fewer ready messages in that queue than there are stale
   tasks, the difference is sent again, oldest first (a queue is first in, first out, so
   the messages left are the newest). A real backlog (its messages in the queue) is not
   duplicated. Duplicates that do arise are harmless: a task starts only through the
   conditional pending -> running claim, and finishes at most once.

**One node at a time** runs the passes: the coordinator lease `reconciler` in the store
(`store.coordination`, one row: holder, term, expiry). Every node competes for it at
each heartbeat, gateways and workers alike (so the cluster reconciles as long as any
node runs); the holder renews it, another node takes it over (term + 1) once it has
expired, and a node that stops cleanly releases it at once.

**Bounds** (`heartbeat` of the cluster config; defaults interval 5 s, timeout 15 s):
lease L = max(timeout, 2 x interval) (15 s), renewed every interval; reconcile interval
= the heartbeat interval. A running attempt whose worker stops renewing is back in the
queue within L + interval of its last renewal (20 s), plus up to L more when the
coordinator itself died (its lease expires first). A reconciler that lost contact with the
store (a failed or late tick) waits one L of unbroken contact before expiring any lease,
so that live workers renew theirs first after an outage they shared. A pending task whose
message is gone is sent again within pending_resend_seconds (default 2 L = 30 s) + interval
of its last send. Lease expiry is judged by the coordinator's clock against times written
by other nodes: clocks must agree to well within L (as heartbeats already assume).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta

from runtime.config import HeartbeatConfig, RetentionConfig, queue_name
from runtime.execution.actors import Dispatch
from runtime.execution.queues import container_queue
from runtime.execution.retention import RetentionSchedule
from runtime.store import Store, TaskRecord
from runtime.store.cluster_events import PRUNE_EVERY_SECONDS
from runtime.store.coltypes import utc_now
from runtime.store.errors import is_unavailable
from runtime.store.records import PENDING, RUNNING, LeaseRecord

logger = logging.getLogger("grey.reconciler")

#: The coordinator lease's name in `store.coordination`.
RECONCILER = "reconciler"
#: At most this many running attempts re-queued per pass (one transition each).
MAX_REQUEUE_PER_PASS = 500
#: At most this many pending tasks sent again per queue per pass (one broker round trip).
MAX_RESEND_PER_PASS = 5000

ReadyCounts = Callable[[list[str]], dict[str, int]]


class Reconciler:
    """The two passes, run by whichever node holds the coordinator lease; one per process,
    shared by its nodes' agents (`tick(node_id)` at each of their heartbeats)."""

    def __init__(
        self,
        store: Store,
        dispatch: Dispatch,
        resend: Callable[[TaskRecord], None],
        heartbeat: HeartbeatConfig,
        ready: ReadyCounts,
        retention: RetentionConfig | None = None,
    ) -> None:
        self.store, self.dispatch, self.resend, self.ready = store, dispatch, resend, ready
        self.interval = heartbeat.interval_seconds
        self.lease_seconds = heartbeat.lease_seconds
        self.resend_after_seconds = heartbeat.pending_resend_seconds
        self._lock = threading.Lock()
        self._last_contact: float | None = None  # monotonic time of the last tick that reached the store
        self._contact_since = 0.0  # since when every tick has reached the store
        self._pruned_at = -PRUNE_EVERY_SECONDS  # monotonic time of the last cluster-event prune
        self._held_until = 0.0  # monotonic time until which this process surely holds the lease
        # Expired finished tasks: deleted on a thread of their own while the lease is held.
        self.retention = RetentionSchedule(store, retention or RetentionConfig(), self.holds_lease)

    # -- the coordinator ---------------------------------------------------------------------

    def tick(self, node_id: str) -> bool:
        """Take or renew the coordinator lease for `node_id`; holding it, run the passes.
        True when this node held it. Raises what the store raised (the agent logs it)."""
        if not self._lock.acquire(blocking=False):
            return False  # another agent of this process is ticking
        try:
            return self._tick(node_id)
        finally:
            self._lock.release()

    def _tick(self, node_id: str) -> bool:
        start = time.monotonic()
        if self._last_contact is None or start - self._last_contact > 2 * self.interval + 1.0:
            self._contact_since = start  # unbroken contact starts now
        try:
            lease = self.store.coordination.acquire(RECONCILER, node_id, utc_now(), self.lease_seconds)
        except Exception:
            self._held_until = 0.0
            self.lost_contact()
            raise
        self._last_contact = time.monotonic()
        if lease is None:
            self._held_until = 0.0
            return False
        self._held_until = start + self.lease_seconds  # taken or renewed after `start`
        if start - self._contact_since >= self.lease_seconds:
            try:
                self.expire_leases()
            except Exception as error:
                self._failed("expiring leases", error)
        try:
            self.resend_pending()
        except Exception as error:
            self._failed("sending stale pending tasks again", error)
        if start - self._pruned_at >= PRUNE_EVERY_SECONDS:
            self._pruned_at = start
            try:
                self.store.cluster_events.prune()  # /ws/telemetry's replay: bounded retention
            except Exception as error:
                self._failed("pruning cluster events", error)
        self.retention.poke()  # expired finished tasks (runtime.execution.retention)
        return True

    def holds_lease(self) -> bool:
        """This process holds the coordinator lease now (as of its last renewal)."""
        return time.monotonic() < self._held_until

    def _failed(self, what: str, error: Exception) -> None:
        if is_unavailable(error):
            self.lost_contact()
        logger.warning("reconciler: %s failed: %s: %s", what, type(error).__name__, error)

    def lost_contact(self) -> None:
        """A heartbeat of this process failed (the store, most likely): leases are not
        expired again until contact has been unbroken for a lease."""
        self._last_contact = None

    def release(self, node_id: str) -> None:
        """`node_id` stops cleanly: another node may take the lease over at once."""
        self._held_until = 0.0
        try:
            self.store.coordination.release(RECONCILER, node_id)
        except Exception:
            logger.warning("could not release the coordinator lease of %s", node_id, exc_info=True)

    def current(self) -> LeaseRecord | None:
        """The coordinator lease as the store has it (holder, term, expiry)."""
        return self.store.coordination.current(RECONCILER)

    # -- pass 1: running attempts whose lease ran out --------------------------------------

    def expire_leases(self, now: datetime | None = None) -> int:
        """Re-queues every running attempt whose lease ended before `now`; how many."""
        now = now or utc_now()
        moved: list[TaskRecord] = []
        for task in self.store.scheduling.expired_leases(now, MAX_REQUEUE_PER_PASS):
            if task.type == "batch":
                self._resume_batch(task, now)
                continue
            match: dict[str, object] = {"attempt": task.attempt}
            if task.lease_expires_at is not None:  # not renewed since it was read
                match["lease_expires_at"] = task.lease_expires_at
            if self.store.lifecycle.transition(
                task.task_id,
                from_statuses=(RUNNING,),
                to_status=PENDING,
                match=match,
                message=f"lease of attempt {task.attempt} on {task.executed_on} expired; re-queued",
                progress=0,
                sent_at=now,
            ):
                moved.append(task)
        if moved:
            logger.warning("re-queued %d running tasks whose lease expired", len(moved))
            self._send(moved)
        return len(moved)

    def _resume_batch(self, task: TaskRecord, now: datetime) -> None:
        """A batch no worker is running an item of: items missing from its queue are sent
        again (with none missing, its last item, which finishes it, runs again)."""
        self.store.lifecycle.renew_leases(
            [(task.task_id, task.attempt)], now + timedelta(seconds=self.lease_seconds)
        )
        items = len(task.payload.get("items") or [])
        missing = items - len(self.store.batches.finished_indexes(task.task_id))
        queue = queue_name(task.pool, task.priority)
        if self.ready([queue]).get(queue, 0) >= max(1, missing):
            return  # its items may wait in the queue
        if missing > 0:
            self.resend(task)
        elif items:
            self.dispatch.broker.enqueue(self.dispatch.item_messages(task, [items - 1])[0])
        logger.warning("batch %s: lease expired, %d items sent again", task.task_id, max(1, missing))

    # -- pass 2: pending tasks whose message may be gone ----------------------------------

    def resend_pending(self, now: datetime | None = None) -> int:
        """Sends again the stale pending tasks a queue lacks messages for; how many.
        Container tasks are counted against their own queues (`<pool>.<priority>.containers`)."""
        now = now or utc_now()
        return self._resend_pending(now, containers=False) + self._resend_pending(now, containers=True)

    def _resend_pending(self, now: datetime, containers: bool) -> int:
        before = now - timedelta(seconds=self.resend_after_seconds)
        stale = self.store.scheduling.stale_pending_counts(before, containers)
        if not stale:
            return 0
        queues = {key: container_queue(*key) if containers else queue_name(*key) for key in stale}
        ready = self.ready(sorted(set(queues.values())))
        sent = 0
        for (pool, priority), count in sorted(stale.items()):
            missing = count - ready.get(queues[(pool, priority)], 0)
            if missing <= 0:
                continue
            limit = min(missing, MAX_RESEND_PER_PASS)
            tasks = self.store.scheduling.stale_pending(pool, priority, before, limit, containers)
            sent_ids = self._send(tasks)
            self.store.lifecycle.mark_sent(sent_ids, now)
            sent += len(sent_ids)
            logger.warning(
                "queue %s: %d stale pending tasks, %d messages ready; sent %d again",
                queues[(pool, priority)],
                count,
                ready.get(queues[(pool, priority)], 0),
                len(sent_ids),
            )
        return sent

    def _send(self, tasks: list[TaskRecord]) -> list[str]:
        """Task messages in one round trip where the broker can; the ids sent."""
        if not tasks:
            return []
        try:
            outcomes = self.dispatch.send_many(tasks)
        except Exception as error:  # the whole round trip failed (broker down)
            outcomes = [error] * len(tasks)
        failed = [outcome for outcome in outcomes if isinstance(outcome, Exception)]
        if failed:
            logger.warning("could not send %d of %d tasks: %s", len(failed), len(tasks), failed[0])
        pairs = zip(tasks, outcomes, strict=True)
        return [task.task_id for task, outcome in pairs if not isinstance(outcome, Exception)]
