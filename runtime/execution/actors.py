"""The Dramatiq actors: one per (pool, priority) queue for tasks and one for batch items.

Messages carry only ids (and, for a task that needs no pre-checks, its creation time, so
the worker claims it without reading it first); everything else is read from the store
when the message runs, so a message can be sent twice (redelivery, restart recovery, a
lost node) at no risk.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from typing import Any, Protocol

import dramatiq

from runtime.config import POOLS, PRIORITIES, queue_name
from runtime.execution.brokers import enqueue_many
from runtime.execution.errors import broker_unavailable
from runtime.execution.queues import (
    BATCH_ITEM_ACTOR,
    CONTAINER_ACTOR,
    DRAMATIQ_PRIORITY,
    TASK_ACTOR,
    actor_name,
    container_queue,
    is_node_pool,
)
from runtime.store import TaskRecord
from runtime.store.errors import is_unavailable
from runtime.store.records import CONTAINER_TASK

logger = logging.getLogger("grey.actors")


def retry_when(retries: int, error: BaseException) -> bool:
    """What Dramatiq's Retries middleware sends again: what the executor asks for
    (`dramatiq.Retry`, a task's own transient failure, counted by the executor), and,
    without limit, a message that met a store or broker outage: the worker waits
    (Dramatiq's backoff, capped by the cluster config's `retry.backoff_max_seconds`) rather
    than drop work. Anything else is a bug, and the message is dropped (the task's row
    stays; the reconciler sends a pending task again)."""
    if isinstance(error, dramatiq.Retry):
        return True
    return is_unavailable(error) or broker_unavailable(error)


def needs_no_checks(task: TaskRecord) -> bool:
    """Nothing to check before it starts: no dependencies, no state key, default resources."""
    return task.type in ("stateless", "pipeline") and not task.dependencies and not task.resources


class TaskRunner(Protocol):
    """What runs a pool's messages in this process (the executor of a worker pool).

    Declared here so that the actors need not know the executor: a worker pool attaches
    its runner when it starts and detaches it when it stops.
    """

    def run_task(self, task_id: str, waits: int = 0, created_ms: int | None = None) -> None: ...

    def run_batch_item(self, task_id: str, index: int) -> None: ...


class Dispatch:
    """Declares the actors on a broker and sends task and batch-item messages.

    `send_many` is for the gateway's intake, which sends every waiting submit at once
    (`broker.enqueue_many`: one round trip on Redis).
    """

    def __init__(self, broker: dramatiq.Broker) -> None:
        self.broker = broker
        self._runners: dict[str, TaskRunner] = {}  # per pool, in processes that run workers
        self._tasks: dict[tuple[str, str], dramatiq.Actor[Any, Any]] = {}
        self._items: dict[tuple[str, str], dramatiq.Actor[Any, Any]] = {}
        self._containers: dict[tuple[str, str], dramatiq.Actor[Any, Any]] = {}
        self._node_lock = threading.Lock()  # placement nodes' actors are declared on first use
        for pool in POOLS:
            run_task, run_item = self._bodies(pool)
            for priority in PRIORITIES:
                key = (pool, priority)
                self._tasks[key] = self._declare(run_task, TASK_ACTOR, pool, priority)
                self._items[key] = self._declare(run_item, BATCH_ITEM_ACTOR, pool, priority)
                self._containers[key] = self._declare(
                    run_task, CONTAINER_ACTOR, pool, priority, container_queue(pool, priority)
                )

    def _declare(
        self, fn: Any, kind: str, pool: str, priority: str, queue: str | None = None
    ) -> dramatiq.Actor[Any, Any]:
        return dramatiq.Actor(
            fn,
            broker=self.broker,
            actor_name=actor_name(kind, pool, priority),
            queue_name=queue or queue_name(pool, priority),
            priority=DRAMATIQ_PRIORITY[priority],
            options={},
        )

    # -- runners ----------------------------------------------------------------------------

    def attach(self, pool: str, runner: TaskRunner) -> None:
        """`runner` runs the messages of `pool` this process receives (a worker pool starting)."""
        self._runners[pool] = runner

    def detach(self, pool: str, runner: TaskRunner) -> None:
        """Undoes `attach`, unless another runner has taken the pool over since."""
        if self._runners.get(pool) is runner:
            del self._runners[pool]

    # -- actor bodies (run in worker threads) ----------------------------------------------

    def _bodies(self, pool: str) -> tuple[Any, Any]:
        def run_task(task_id: str, waits: int = 0, created_ms: int | None = None) -> None:
            self._runner(pool).run_task(task_id, waits, created_ms)

        def run_batch_item(task_id: str, index: int) -> None:
            self._runner(pool).run_batch_item(task_id, index)

        return run_task, run_batch_item

    def _runner(self, pool: str) -> TaskRunner:
        runner = self._runners.get(pool)
        if runner is None:
            raise RuntimeError(f"this process runs no {pool} pool")
        return runner

    # -- sending --------------------------------------------------------------------------

    def send(self, task: TaskRecord, *, delay_ms: int | None = None, waits: int = 0) -> None:
        self.broker.enqueue(self._message(task, waits), delay=delay_ms)

    def _message(self, task: TaskRecord, waits: int) -> dramatiq.Message[Any]:
        args: tuple[Any, ...]
        if waits:
            args = (task.task_id, waits)
        elif needs_no_checks(task):
            # The creation time (ms) tells the worker it may claim at once (no read first).
            args = (task.task_id, 0, round(task.created_at.timestamp() * 1000))
        else:
            args = (task.task_id,)
        actors = self._containers if task.type == CONTAINER_TASK else self._tasks
        if is_node_pool(task.pool) and (task.pool, task.priority) not in actors:
            self.declare_node_pool(task.pool)
        return actors[(task.pool, task.priority)].message_with_options(args=args)

    def declare_node_pool(self, pool: str) -> None:
        """The actors of a placement node's queues (`node.<id>.<priority>`), declared when a
        process first sends there or its node starts consuming (runtime.execution.queues)."""
        with self._node_lock:
            if (pool, PRIORITIES[0]) in self._tasks:
                return
            run_task, _ = self._bodies(pool)
            for priority in PRIORITIES:
                self._tasks[(pool, priority)] = self._declare(run_task, TASK_ACTOR, pool, priority)

    def send_many(self, tasks: list[TaskRecord]) -> list[Any]:
        """`send` for several tasks from one thread (the gateway's intake): one round trip
        on Redis; for each task, the sent message or the exception its send raised."""
        return enqueue_many(self.broker, [(self._message(task, 0), None) for task in tasks])

    def item_messages(self, task: TaskRecord, indexes: Iterable[int]) -> list[dramatiq.Message[Any]]:
        actor = self._items[(task.pool, task.priority)]
        return [actor.message(task.task_id, index) for index in indexes]
