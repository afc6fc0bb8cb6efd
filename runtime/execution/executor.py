"""The task lifecycle: pending -> running -> completed | failed | cancelled | timeout.

Every step is a conditional transition in the store (`from_statuses` plus the attempt this
worker claimed), so a redelivered or duplicated message never runs a finished task again
and never moves a status backwards, and a node that was given up on cannot finish a task
that has since been re-queued.
"""

from __future__ import annotations

import json
import logging
import random
import time
from datetime import datetime
from typing import Any

import dramatiq
from sqlalchemy import Connection

from runtime.config import RetryPolicy
from runtime.execution.actors import Dispatch
from runtime.execution.functions import InvalidInput, TaskContext, get_function, is_transient
from runtime.execution.gpu import GpuDevice
from runtime.execution.interrupts import Interrupter, TaskCancelled, TaskTimedOut
from runtime.execution.nodes import Request, ResourceGate
from runtime.execution.pipeline import StepFailed, run_pipeline
from runtime.store import Store, TaskRecord
from runtime.store.coltypes import utc_now
from runtime.store.records import CANCELLED, COMPLETED, FAILED, PENDING, RUNNING, TIMEOUT

logger = logging.getLogger("grey.executor")

ENDED_BADLY = (FAILED, CANCELLED, TIMEOUT)
#: Waiting for dependencies or for an earlier task of the same state key: re-checked after
#: 50 ms, doubling up to 1 s (and at once when the earlier stateful task finishes).
WAIT_FIRST_MS, WAIT_MAX_MS = 50, 1000


def _ms(seconds: float) -> int:
    return max(0, round(seconds * 1000))


def _since_ms(start: datetime, end: datetime) -> int:
    return _ms((end - start).total_seconds())


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def _as_result(output: Any) -> dict[str, Any]:
    """Task results are JSON objects; any other output is wrapped as {"output": ...}."""
    output = _jsonable(output)
    return output if isinstance(output, dict) else {"output": output}


def _error(code: str, message: str, transient: bool = False) -> dict[str, Any]:
    return {"code": code, "message": message[:2000], "transient": transient}


class Executor:
    """Runs the messages of one worker process (one node)."""

    def __init__(
        self,
        store: Store,
        dispatch: Dispatch,
        *,
        node_id: str,
        gate: ResourceGate,
        interrupter: Interrupter,
        retry: RetryPolicy,
        device: GpuDevice | None = None,
    ) -> None:
        self.store, self.dispatch, self.node_id = store, dispatch, node_id
        self.gate, self.interrupter, self.retry, self.device = gate, interrupter, retry, device

    # -- tasks ----------------------------------------------------------------------------

    def run_task(self, task_id: str, waits: int = 0, created_ms: int | None = None) -> None:
        if created_ms is not None and self._run_unchecked(task_id, created_ms):
            return
        task = self.store.tasks.get(None, task_id)
        if task is None or task.status != PENDING:
            return  # finished, cancelled, or running elsewhere: a duplicate message
        if not self._ready(task, waits):
            return
        request = Request.of(task.resources)
        if not self.gate.fits(request):
            # Another node of the pool may be bigger; submit checked that one exists.
            self.dispatch.send(task, delay_ms=1000, waits=waits)
            return
        with self.gate.hold(request):
            if task.type == "batch":
                self._fan_out(task)
            else:
                self._attempt(task)

    def _run_unchecked(self, task_id: str, created_ms: int) -> bool:
        """A task the sender marked as needing no pre-checks (no dependencies, no state key,
        default resources): claimed and read in one UPDATE ... RETURNING. False: take the
        ordinary path (this node cannot fit even the default request)."""
        request = Request.of(None)
        if not self.gate.fits(request):
            return False
        with self.gate.hold(request):
            now = utc_now()
            task = self.store.tasks.claim(
                task_id,
                node_id=self.node_id,
                now=now,
                queue_time_ms=max(0, round(now.timestamp() * 1000) - created_ms),
                device_emulated=bool(self.device and self.device.emulated),
                message=lambda claimed: f"running on {self.node_id} (attempt {claimed.attempt})",
            )
            if task is not None:
                self._run_claimed(task, task.attempt, now)
        return True

    def _ready(self, task: TaskRecord, waits: int) -> bool:
        """Dependencies completed and no earlier task of the state key unfinished."""
        if task.dependencies:
            statuses = self.store.tasks.statuses(task.tenant_id, task.dependencies)
            broken = [d for d in task.dependencies if statuses.get(d, FAILED) in ENDED_BADLY]
            if broken:
                detail = ", ".join(f"{d} is {statuses.get(d, 'missing')}" for d in broken)
                self.store.tasks.transition(
                    task.task_id,
                    from_statuses=(PENDING,),
                    to_status=FAILED,
                    error=_error("dependency_failed", f"dependency did not complete: {detail}"),
                    completed_at=utc_now(),
                    message="dependency_failed",
                )
                return False
            if any(statuses[d] != COMPLETED for d in task.dependencies):
                self._wait(task, waits)
                return False
        if task.type == "stateful" and self.store.tasks.earlier_unfinished(task) is not None:
            self._wait(task, waits)
            return False
        return True

    def _wait(self, task: TaskRecord, waits: int) -> None:
        delay = min(WAIT_MAX_MS, WAIT_FIRST_MS * 2 ** min(waits, 10))
        self.dispatch.send(task, delay_ms=delay, waits=waits + 1)

    def _claim(self, task: TaskRecord, message: str) -> tuple[int, datetime] | None:
        """pending -> running for this node; the attempt number and start time, or None."""
        now = utc_now()
        attempt = task.attempt + 1
        emulated = bool(self.device and self.device.emulated and task.pool == "gpu")
        claimed = self.store.tasks.transition(
            task.task_id,
            from_statuses=(PENDING,),
            to_status=RUNNING,
            match={"attempt": task.attempt},
            message=message,
            # The first start and first queue time stay (the claim matches the attempt read).
            started_at=task.started_at or now,
            queue_time_ms=task.queue_time_ms
            if task.queue_time_ms is not None
            else _since_ms(task.created_at, now),
            executed_on=self.node_id,
            attempt=attempt,
            progress=0,
            device_emulated=emulated,
        )
        return (attempt, now) if claimed else None

    def _context(self, task: TaskRecord, attempt: int, seconds: float) -> TaskContext:
        def progress(percent: int, message: str | None) -> None:
            self.store.tasks.update_progress(task.task_id, percent, message, match={"attempt": attempt})

        return TaskContext(
            task_id=task.task_id,
            tenant_id=task.tenant_id,
            node_id=self.node_id,
            attempt=attempt,
            retry_count=task.retry_count,
            deadline=time.monotonic() + seconds,
            device=self.device.as_dict() if self.device else None,
            emulated=bool(self.device and self.device.emulated),
            _progress=progress,
        )

    def _attempt(self, task: TaskRecord) -> None:
        claimed = self._claim(task, f"running on {self.node_id} (attempt {task.attempt + 1})")
        if claimed is None:
            return
        attempt, started = claimed
        self._run_claimed(task, attempt, started)

    def _run_claimed(self, task: TaskRecord, attempt: int, started: datetime) -> None:
        """Runs the function of a task this node has claimed and records the outcome."""
        ctx = self._context(task, attempt, task.timeout_seconds)
        version = 0
        if task.type == "stateful" and task.state_key is not None:
            ctx.state, version = self.store.states.get(task.tenant_id, task.state_key)
        clock = time.perf_counter()
        try:
            with self.interrupter.guard(task.task_id, ctx):
                output = self._call(task, ctx)
        except TaskCancelled:
            pass  # the store already says cancelled (or the task was re-queued elsewhere)
        except TaskTimedOut:
            self._timed_out(task, attempt, started, time.perf_counter() - clock)
        except Exception as error:
            self._failed(task, attempt, started, time.perf_counter() - clock, error)
        else:
            self._completed(task, attempt, started, time.perf_counter() - clock, output, ctx, version)
        finally:
            if task.type == "stateful":
                self._wake_next_of_key(task)

    def _call(self, task: TaskRecord, ctx: TaskContext) -> Any:
        payload = task.payload
        if task.type == "pipeline":
            return run_pipeline(payload, ctx)
        function = get_function(payload.get("function") or "echo")
        if function is None:
            raise InvalidInput(f"unknown function {payload.get('function')!r}", "payload.function")
        return function.fn(function.parse(payload.get("data")), ctx)

    def _finish_fields(self, task: TaskRecord, started: datetime, seconds: float) -> dict[str, Any]:
        now = utc_now()
        first_start = task.started_at or started
        return {
            "completed_at": now,
            "duration_ms": _since_ms(first_start, now),
            "execution_time_ms": _ms(seconds),
        }

    def _completed(
        self,
        task: TaskRecord,
        attempt: int,
        started: datetime,
        seconds: float,
        output: Any,
        ctx: TaskContext,
        version: int,
    ) -> None:
        also = None
        if task.type == "stateful" and ctx.state_written and task.state_key is not None:
            state, key = _jsonable(ctx.new_state), task.state_key

            def also(conn: Connection) -> None:
                self.store.states.save(conn, task.tenant_id, key, state, version + 1, task.task_id)

        self.store.tasks.transition(
            task.task_id,
            from_statuses=(RUNNING,),
            to_status=COMPLETED,
            match={"attempt": attempt},
            message="completed",
            also=also,
            result=_as_result(output),
            error=None,
            progress=100,
            **self._finish_fields(task, started, seconds),
        )

    def _timed_out(self, task: TaskRecord, attempt: int, started: datetime, seconds: float) -> None:
        message = f"exceeded timeout_seconds={task.timeout_seconds}"
        if self.retry.retry_on_timeout and self._retry(task, attempt, _error("timeout", message, True)):
            return
        self.store.tasks.transition(
            task.task_id,
            from_statuses=(RUNNING,),
            to_status=TIMEOUT,
            match={"attempt": attempt},
            message=message,
            error=_error("timeout", message),
            **self._finish_fields(task, started, seconds),
        )

    def _failed(
        self, task: TaskRecord, attempt: int, started: datetime, seconds: float, error: Exception
    ) -> None:
        transient = is_transient(error)
        code = "invalid_input" if isinstance(error, InvalidInput) else "execution_failed"
        result = None
        if isinstance(error, StepFailed):
            code, result = "step_failed", _as_result(error.record)
            transient = is_transient(error.cause)
        detail = _error(code, f"{type(error).__name__}: {error}", transient)
        if transient and self._retry(task, attempt, detail):
            return
        logger.info("task %s failed: %s", task.task_id, detail["message"])
        self.store.tasks.transition(
            task.task_id,
            from_statuses=(RUNNING,),
            to_status=FAILED,
            match={"attempt": attempt},
            message=detail["message"],
            error=detail,
            result=result,
            **self._finish_fields(task, started, seconds),
        )

    def _retry(self, task: TaskRecord, attempt: int, detail: dict[str, Any]) -> bool:
        """Back to pending with retry_count + 1; Dramatiq's Retries re-sends after the backoff."""
        if task.retry_count >= self.retry.max_retries:
            return False
        retry = task.retry_count + 1
        base = self.retry.backoff_base_seconds * 2 ** (retry - 1)
        delay = min(self.retry.backoff_max_seconds, base * random.uniform(1.0, 1.25))
        moved = self.store.tasks.transition(
            task.task_id,
            from_statuses=(RUNNING,),
            to_status=PENDING,
            match={"attempt": attempt},
            message=f"retry {retry}/{self.retry.max_retries} in {delay:.2f}s: {detail['message']}",
            retry_count=retry,
            error=detail,
            progress=0,
        )
        if moved:
            raise dramatiq.Retry(f"transient failure of {task.task_id}", delay=_ms(delay))
        return True

    def _wake_next_of_key(self, task: TaskRecord) -> None:
        """The next task of a state key need not wait for its re-check timer."""
        if task.state_key is None:
            return
        next_id = self.store.tasks.next_unfinished(task.tenant_id, task.state_key)
        if next_id is not None and next_id != task.task_id:
            following = self.store.tasks.get(None, next_id)
            if following is not None and following.status == PENDING:
                self.dispatch.send(following)

    # -- batches --------------------------------------------------------------------------

    def _fan_out(self, task: TaskRecord) -> None:
        items = task.payload.get("items") or []
        claimed = self._claim(task, f"fanning out {len(items)} items from {self.node_id}")
        if claimed is None:
            return
        refreshed = self.store.tasks.get(None, task.task_id)
        if refreshed is not None:
            self.resend_items(refreshed)

    def resend_items(self, task: TaskRecord) -> None:
        """Sends, as one Dramatiq group, the items of a running batch not finished yet."""
        items = task.payload.get("items") or []
        done = self.store.batches.finished_indexes(task.task_id)
        missing = [index for index in range(len(items)) if index not in done]
        if missing:
            dramatiq.group(self.dispatch.item_messages(task, missing), broker=self.dispatch.broker).run()
        else:
            self._finish_batch(task)

    def run_batch_item(self, task_id: str, index: int) -> None:
        task = self.store.tasks.get(None, task_id)
        if task is None or task.status != RUNNING:
            return
        function = get_function(task.payload.get("function") or "echo")
        items = task.payload.get("items") or []
        if function is None or index >= len(items):
            return
        left = task.timeout_seconds - (utc_now() - (task.started_at or utc_now())).total_seconds()
        if left <= 0:
            self._batch_timed_out(task)
            return
        ctx = self._context(task, task.attempt, left)
        ctx._progress = None  # items report through the batch's done/total
        with self.gate.hold(Request.of(task.resources)):
            try:
                with self.interrupter.guard(task_id, ctx):
                    output = function.fn(function.parse(items[index]), ctx)
                status, result, error = COMPLETED, _jsonable(output), None
            except TaskCancelled:
                return
            except TaskTimedOut:
                self._batch_timed_out(task)
                return
            except Exception as failure:
                if is_transient(failure) and not isinstance(failure, InvalidInput):
                    retries = self._message_retries()
                    if retries < self.retry.max_retries:
                        delay = self.retry.backoff_base_seconds * 2**retries
                        raise dramatiq.Retry(f"item {index} of {task_id}", delay=_ms(delay)) from failure
                status, result = FAILED, None
                error = _error(
                    "execution_failed", f"{type(failure).__name__}: {failure}", is_transient(failure)
                )
        inserted = self.store.batches.record(task_id, index, status, result, error)
        finished, _ = self.store.batches.counts(task_id)  # after commit: the last item sees them all
        total = len(items)
        if inserted and finished < total:
            self.store.tasks.update_progress(
                task_id, finished * 100 // total, f"{finished}/{total} items done", forward_only=True
            )
        if finished >= total:
            self._finish_batch(task)

    @staticmethod
    def _message_retries() -> int:
        from dramatiq.middleware import CurrentMessage

        message = CurrentMessage.get_current_message()
        return int(message.options.get("retries", 0)) if message is not None else 0

    def _finish_batch(self, task: TaskRecord) -> None:
        rows = self.store.batches.items(task.task_id)
        total = len(task.payload.get("items") or [])
        failed = [row for row in rows if row[1] == FAILED]
        result = {
            "total": total,
            "completed": total - len(failed),
            "failed": len(failed),
            "results": [row[2] for row in rows],
            "errors": {str(row[0]): row[3] for row in failed},
        }
        now = utc_now()
        timing = {
            "completed_at": now,
            "duration_ms": _since_ms(task.started_at or now, now),
            "execution_time_ms": _since_ms(task.started_at or now, now),
        }
        if failed:
            detail = _error("batch_item_failed", f"{len(failed)} of {total} items failed")
            self.store.tasks.transition(
                task.task_id,
                from_statuses=(RUNNING,),
                to_status=FAILED,
                message=detail["message"],
                error=detail,
                result=result,
                **timing,
            )
            return
        self.store.tasks.transition(
            task.task_id,
            from_statuses=(RUNNING,),
            to_status=COMPLETED,
            message=f"{total}/{total} items done",
            result=result,
            progress=100,
            **timing,
        )

    def _batch_timed_out(self, task: TaskRecord) -> None:
        message = f"exceeded timeout_seconds={task.timeout_seconds}"
        now = utc_now()
        self.store.tasks.transition(
            task.task_id,
            from_statuses=(RUNNING,),
            to_status=TIMEOUT,
            message=message,
            error=_error("timeout", message),
            completed_at=now,
            duration_ms=_since_ms(task.started_at or now, now),
        )
