"""Batch tasks: one claim, then one Dramatiq message per item, finished by the last item.

The batch task is claimed once (pending -> running) and its items are sent as one
Dramatiq group. Each item stores its own outcome in `batch_items` (once: a redelivered
item is not counted twice); the item that finds every item finished records the batch's
outcome, through the executor's one outcome path. Items run under the batch's claim, so
the batch's outcome matches no attempt.
"""

from __future__ import annotations

import logging
from typing import Any

import dramatiq
from dramatiq.middleware import CurrentMessage

from runtime.execution.actors import Dispatch
from runtime.execution.executor import Executor, error_detail, jsonable, ms, since_ms
from runtime.execution.functions import InvalidInput, get_function, is_transient
from runtime.execution.interrupts import TaskCancelled, TaskHandedBack, TaskTimedOut
from runtime.execution.nodes import Request
from runtime.store import Store, TaskRecord
from runtime.store.coltypes import utc_now
from runtime.store.records import COMPLETED, FAILED, RUNNING, TIMEOUT

logger = logging.getLogger("grey.batches")


def send_missing_items(store: Store, dispatch: Dispatch, task: TaskRecord) -> bool:
    """Sends, as one Dramatiq group, the items of a running batch not finished yet.

    False when none is missing. Also how a restart or a reaper resumes a batch whose
    node went away: finished items are not run again.
    """
    items = task.payload.get("items") or []
    done = store.batches.finished_indexes(task.task_id)
    missing = [index for index in range(len(items)) if index not in done]
    if missing:
        dramatiq.group(dispatch.item_messages(task, missing), broker=dispatch.broker).run()
    return bool(missing)


def _message_retries() -> int:
    """How often Dramatiq has retried the item message running in this thread."""
    message = CurrentMessage.get_current_message()
    return int(message.options.get("retries", 0)) if message is not None else 0


class Batches:
    """The `BatchRunner` of one executor: fan-out, items, and the batch's outcome."""

    def __init__(self, executor: Executor) -> None:
        self.executor = executor
        self.store: Store = executor.store

    def fan_out(self, task: TaskRecord, waits: int = 0) -> None:
        """Claims the batch for this node (within its tenant's quotas) and sends its items."""
        items = task.payload.get("items") or []
        message = f"fanning out {len(items)} items from {self.executor.node_id}"
        claimed = self.executor.claim(task, message, waits)
        if claimed is None:
            return
        refreshed = self.store.tasks.get(None, task.task_id)
        if refreshed is not None:
            self.resend_items(refreshed)

    def resend_items(self, task: TaskRecord) -> None:
        """Sends the items not finished yet; with none left, the batch is finished now."""
        if not send_missing_items(self.store, self.executor.dispatch, task):
            self._finish(task)

    def run_item(self, task_id: str, index: int) -> None:
        executor = self.executor
        task = self.store.tasks.get(None, task_id)
        if task is None or task.status != RUNNING:
            return
        function = get_function(task.payload.get("function") or "echo")
        items = task.payload.get("items") or []
        if function is None or index >= len(items):
            return
        left = task.timeout_seconds - (utc_now() - (task.started_at or utc_now())).total_seconds()
        if left <= 0:
            self._timed_out(task)
            return
        ctx = executor.context(task, task.attempt, left)
        ctx._progress = None  # items report through the batch's done/total
        with executor.gate.hold(Request.of(task.resources)):
            try:
                with executor.interrupter.guard(task_id, ctx):
                    output = function.fn(function.parse(items[index]), ctx)
                status, result, error = COMPLETED, jsonable(output), None
            except TaskCancelled:
                return
            except TaskHandedBack:  # this worker is stopping: the item runs elsewhere
                self._send_again(task, index)
                return
            except TaskTimedOut:
                self._timed_out(task)
                return
            except Exception as failure:
                if is_transient(failure) and not isinstance(failure, InvalidInput):
                    retries = _message_retries()
                    if retries < executor.retry.max_retries:
                        delay = executor.retry.backoff_base_seconds * 2**retries
                        raise dramatiq.Retry(f"item {index} of {task_id}", delay=ms(delay)) from failure
                status, result = FAILED, None
                error = error_detail(
                    "execution_failed", f"{type(failure).__name__}: {failure}", is_transient(failure)
                )
        inserted = self.store.batches.record(task_id, index, status, result, error)
        finished, _ = self.store.batches.counts(task_id)  # after commit: the last item sees them all
        total = len(items)
        if inserted and finished < total:
            self.store.lifecycle.update_progress(
                task_id, finished * 100 // total, f"{finished}/{total} items done", forward_only=True
            )
        if finished >= total:
            self._finish(task)

    def _send_again(self, task: TaskRecord, index: int) -> None:
        dispatch = self.executor.dispatch
        try:
            dispatch.broker.enqueue(dispatch.item_messages(task, [index])[0])
        except Exception:  # the batch's lease runs out and the reconciler sends what is missing
            logger.warning("could not send item %d of %s again", index, task.task_id, exc_info=True)

    def _finish(self, task: TaskRecord) -> None:
        """Completed when every item completed, else failed; the result lists every item."""
        rows = self.store.batches.items(task.task_id)
        total = len(task.payload.get("items") or [])
        failed = [row for row in rows if row[1] == FAILED]
        result: dict[str, Any] = {
            "total": total,
            "completed": total - len(failed),
            "failed": len(failed),
            "results": [row[2] for row in rows],
            "errors": {str(row[0]): row[3] for row in failed},
        }
        now = utc_now()
        # Items overlap: the batch's execution time is its whole run.
        elapsed = since_ms(task.started_at or now, now)
        timing = {"completed_at": now, "duration_ms": elapsed, "execution_time_ms": elapsed}
        if failed:
            detail = error_detail("batch_item_failed", f"{len(failed)} of {total} items failed")
            self.executor.record(task, FAILED, detail["message"], error=detail, result=result, timing=timing)
            return
        self.executor.record(task, COMPLETED, f"{total}/{total} items done", result=result, timing=timing)

    def _timed_out(self, task: TaskRecord) -> None:
        message = f"exceeded timeout_seconds={task.timeout_seconds}"
        now = utc_now()
        self.executor.record(
            task,
            TIMEOUT,
            message,
            error=error_detail("timeout", message),
            # Unlike a finished batch, a timed-out one records no execution time.
            timing={"completed_at": now, "duration_ms": since_ms(task.started_at or now, now)},
        )
