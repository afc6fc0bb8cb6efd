"""The task lifecycle: pending -> running -> completed | failed | cancelled | timeout.

Every step is a conditional transition in the store (`from_statuses` plus the attempt this
worker claimed), so a redelivered or duplicated message never runs a finished task again
and never moves a status backwards, and a node that was given up on cannot finish a task
that has since been re-queued. A task reaches the store through two writes only: its
claim (`claim`) and its outcome (`record`). Batches (runtime.execution.batches) use both.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol

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


def ms(seconds: float) -> int:
    return max(0, round(seconds * 1000))


def since_ms(start: datetime, end: datetime) -> int:
    return ms((end - start).total_seconds())


def jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def _as_result(output: Any) -> dict[str, Any]:
    """Task results are JSON objects; any other output is wrapped as {"output": ...}."""
    output = jsonable(output)
    return output if isinstance(output, dict) else {"output": output}


def error_detail(code: str, message: str, transient: bool = False) -> dict[str, Any]:
    """The `error` of a task or batch item, as the API shows it."""
    return {"code": code, "message": message[:2000], "transient": transient}


class BatchRunner(Protocol):
    """The batch logic (runtime.execution.batches), plugged in so this module need not import it."""

    def fan_out(self, task: TaskRecord) -> None: ...

    def run_item(self, task_id: str, index: int) -> None: ...


class Executor:
    """Runs the messages of one worker process (one node): the `TaskRunner` of its pool.

    `batches` builds the batch logic on this executor (`Batches`: it claims, builds
    contexts and records outcomes through it).
    """

    def __init__(
        self,
        store: Store,
        dispatch: Dispatch,
        *,
        node_id: str,
        gate: ResourceGate,
        interrupter: Interrupter,
        retry: RetryPolicy,
        batches: Callable[[Executor], BatchRunner],
        device: GpuDevice | None = None,
    ) -> None:
        self.store, self.dispatch, self.node_id = store, dispatch, node_id
        self.gate, self.interrupter, self.retry, self.device = gate, interrupter, retry, device
        self.batches = batches(self)

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
                self.batches.fan_out(task)
            else:
                self._attempt(task)

    def run_batch_item(self, task_id: str, index: int) -> None:
        self.batches.run_item(task_id, index)

    def _run_unchecked(self, task_id: str, created_ms: int) -> bool:
        """A task the sender marked as needing no pre-checks (no dependencies, no state key,
        default resources): claimed and read in one UPDATE ... RETURNING. False: take the
        ordinary path (this node cannot fit even the default request)."""
        request = Request.of(None)
        if not self.gate.fits(request):
            return False
        with self.gate.hold(request):
            now = utc_now()
            task = self.store.lifecycle.claim(
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
                self.record(
                    task,
                    FAILED,
                    "dependency_failed",
                    from_status=PENDING,
                    error=error_detail("dependency_failed", f"dependency did not complete: {detail}"),
                    timing={"completed_at": utc_now()},
                )
                return False
            if any(statuses[d] != COMPLETED for d in task.dependencies):
                self._wait(task, waits)
                return False
        if task.type == "stateful" and self.store.scheduling.earlier_unfinished(task) is not None:
            self._wait(task, waits)
            return False
        return True

    def _wait(self, task: TaskRecord, waits: int) -> None:
        delay = min(WAIT_MAX_MS, WAIT_FIRST_MS * 2 ** min(waits, 10))
        self.dispatch.send(task, delay_ms=delay, waits=waits + 1)

    def claim(self, task: TaskRecord, message: str) -> tuple[int, datetime] | None:
        """pending -> running for this node; the attempt number and start time, or None."""
        now = utc_now()
        attempt = task.attempt + 1
        emulated = bool(self.device and self.device.emulated and task.pool == "gpu")
        claimed = self.store.lifecycle.transition(
            task.task_id,
            from_statuses=(PENDING,),
            to_status=RUNNING,
            match={"attempt": task.attempt},
            message=message,
            # The first start and first queue time stay (the claim matches the attempt read).
            started_at=task.started_at or now,
            queue_time_ms=task.queue_time_ms
            if task.queue_time_ms is not None
            else since_ms(task.created_at, now),
            executed_on=self.node_id,
            attempt=attempt,
            progress=0,
            device_emulated=emulated,
        )
        return (attempt, now) if claimed else None

    def context(self, task: TaskRecord, attempt: int, seconds: float) -> TaskContext:
        """What the task's function receives; its progress reports go to the store."""

        def progress(percent: int, message: str | None) -> None:
            self.store.lifecycle.update_progress(task.task_id, percent, message, match={"attempt": attempt})

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
        claimed = self.claim(task, f"running on {self.node_id} (attempt {task.attempt + 1})")
        if claimed is None:
            return
        attempt, started = claimed
        self._run_claimed(task, attempt, started)

    def _run_claimed(self, task: TaskRecord, attempt: int, started: datetime) -> None:
        """Runs the function of a task this node has claimed and records the outcome."""
        ctx = self.context(task, attempt, task.timeout_seconds)
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

    # -- outcomes -------------------------------------------------------------------------

    def record(
        self,
        task: TaskRecord,
        status: str,
        message: str,
        *,
        attempt: int | None = None,
        error: dict[str, Any] | None = None,
        result: dict[str, Any] | None = None,
        timing: dict[str, Any] | None = None,
        also: Callable[[Connection], None] | None = None,
        from_status: str = RUNNING,
    ) -> bool:
        """The one way an outcome reaches the store, with the fields its status needs.

        completed: `result`, progress 100, no error. failed: `error` and `result` (a
        pipeline's steps so far, else None). timeout: `error`. pending, a retry:
        retry_count + 1, `error`, progress 0. `timing` adds the finish fields
        (completed_at, duration_ms, execution_time_ms) a finished outcome has.

        Conditional on `from_status` (running, or pending for a task that never started)
        and on `attempt`, the attempt this worker claimed (None for a batch, whose items
        all run under its one claim). False: the task had moved on, e.g. it was cancelled
        (`store.tasks.cancel` records that outcome itself and interrupts the attempt) or
        re-queued after its node was given up on; nothing was written.
        """
        fields: dict[str, Any]
        if status == PENDING:
            fields = {"retry_count": task.retry_count + 1, "error": error, "progress": 0}
        elif status == COMPLETED:
            fields = {"result": result, "error": None, "progress": 100}
        elif status == FAILED:
            fields = {"error": error, "result": result}
        else:
            fields = {"error": error}
        return self.store.lifecycle.transition(
            task.task_id,
            from_statuses=(from_status,),
            to_status=status,
            match=None if attempt is None else {"attempt": attempt},
            message=message,
            also=also,
            **fields,
            **(timing or {}),
        )

    def _finish_timing(self, task: TaskRecord, started: datetime, seconds: float) -> dict[str, Any]:
        """Finish fields of an attempt: the duration runs from the task's first start."""
        now = utc_now()
        first_start = task.started_at or started
        return {
            "completed_at": now,
            "duration_ms": since_ms(first_start, now),
            "execution_time_ms": ms(seconds),
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
            state, key = jsonable(ctx.new_state), task.state_key

            def also(conn: Connection) -> None:
                self.store.states.save(conn, task.tenant_id, key, state, version + 1, task.task_id)

        self.record(
            task,
            COMPLETED,
            "completed",
            attempt=attempt,
            result=_as_result(output),
            timing=self._finish_timing(task, started, seconds),
            also=also,
        )

    def _timed_out(self, task: TaskRecord, attempt: int, started: datetime, seconds: float) -> None:
        message = f"exceeded timeout_seconds={task.timeout_seconds}"
        if self.retry.retry_on_timeout and self._retry(task, attempt, error_detail("timeout", message, True)):
            return
        self.record(
            task,
            TIMEOUT,
            message,
            attempt=attempt,
            error=error_detail("timeout", message),
            timing=self._finish_timing(task, started, seconds),
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
        detail = error_detail(code, f"{type(error).__name__}: {error}", transient)
        if transient and self._retry(task, attempt, detail):
            return
        logger.info("task %s failed: %s", task.task_id, detail["message"])
        self.record(
            task,
            FAILED,
            detail["message"],
            attempt=attempt,
            error=detail,
            result=result,
            timing=self._finish_timing(task, started, seconds),
        )

    def _retry(self, task: TaskRecord, attempt: int, detail: dict[str, Any]) -> bool:
        """Back to pending with retry_count + 1; Dramatiq's Retries re-sends after the backoff."""
        if task.retry_count >= self.retry.max_retries:
            return False
        retry = task.retry_count + 1
        base = self.retry.backoff_base_seconds * 2 ** (retry - 1)
        delay = min(self.retry.backoff_max_seconds, base * random.uniform(1.0, 1.25))
        message = f"retry {retry}/{self.retry.max_retries} in {delay:.2f}s: {detail['message']}"
        if self.record(task, PENDING, message, attempt=attempt, error=detail):
            raise dramatiq.Retry(f"transient failure of {task.task_id}", delay=ms(delay))
        return True

    def _wake_next_of_key(self, task: TaskRecord) -> None:
        """The next task of a state key need not wait for its re-check timer."""
        if task.state_key is None:
            return
        next_id = self.store.scheduling.next_unfinished(task.tenant_id, task.state_key)
        if next_id is not None and next_id != task.task_id:
            following = self.store.tasks.get(None, next_id)
            if following is not None and following.status == PENDING:
                self.dispatch.send(following)
