"""The task lifecycle: pending -> running -> completed | failed | cancelled | timeout.

Every step is a conditional transition in the store (`from_statuses` plus the attempt this
worker claimed), so a redelivered or duplicated message never runs a finished task again
and never moves a status backwards, and a node that was given up on cannot finish a task
that has since been re-queued. A task reaches the store through two writes only: its
claim (`claim`) and its outcome (`record`). Batches (runtime.execution.batches) use both.
A claim also holds within the tenant's quotas (max_concurrent_tasks, cpu_cores, memory_gb
over its running tasks: runtime.store.admission); a task they hold back stays pending and
is re-tried after a backoff (`HOLD_*`), no retry spent.

A claim leases the attempt for `heartbeat.lease_seconds`; the worker pool renews the
leases of what runs at every heartbeat, and the reconciler re-queues an attempt whose
lease ran out (runtime.execution.reconciler). An outcome the store cannot take now is
written again until the lease would have run out; a worker stopping hands its running
attempts back (`hand_back`): pending again, no retry spent.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, Protocol, TypeVar

import dramatiq
from sqlalchemy import Connection

from runtime.config import HeartbeatConfig, RetryPolicy
from runtime.execution.actors import Dispatch
from runtime.execution.containers.task import ContainerFailed, ContainerTasks
from runtime.execution.functions import InvalidInput, TaskContext, get_function, is_transient
from runtime.execution.gpu import GpuDevice
from runtime.execution.interrupts import Interrupter, TaskCancelled, TaskHandedBack, TaskTimedOut
from runtime.execution.metrics import TASK_METRICS
from runtime.execution.nodes import Request, ResourceGate
from runtime.execution.pipeline import StepFailed, run_pipeline
from runtime.store import ProofRecord, Store, TaskRecord
from runtime.store.coltypes import utc_now
from runtime.store.errors import is_unavailable
from runtime.store.records import CANCELLED, COMPLETED, CONTAINER_TASK, FAILED, PENDING, RUNNING, TIMEOUT

logger = logging.getLogger("grey.executor")

ENDED_BADLY = (FAILED, CANCELLED, TIMEOUT)
#: Waiting for dependencies or for an earlier task of the same state key: re-checked after
#: 50 ms, doubling up to 1 s (and at once when the earlier stateful task finishes).
WAIT_FIRST_MS, WAIT_MAX_MS = 50, 1000
#: Held back by its tenant's quotas (the claim refused it): re-tried after 100 ms, doubling
#: up to 2 s, no retry spent.
HOLD_FIRST_MS, HOLD_MAX_MS = 100, 2000
#: An outcome the store cannot take is written again after 50 ms, doubling up to 1 s.
STORE_RETRY_FIRST_SECONDS, STORE_RETRY_MAX_SECONDS = 0.05, 1.0

T = TypeVar("T")


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

    def fan_out(self, task: TaskRecord, waits: int = 0) -> None: ...

    def run_item(self, task_id: str, index: int) -> None: ...


class Prover(Protocol):
    """The TEE of a `tee` pool's node (runtime.execution.tee.node.TeeNode), plugged in so
    this module need not know how quotes and receipts are made."""

    def ready(self) -> bool:
        """May the node take TEE work now (attested, not expired)?"""
        ...

    def check(self, task: TaskRecord) -> None:
        """Raises when the task would run code the node's measurement does not hold."""
        ...

    def seal(self, task: TaskRecord, result: Any, started: datetime, finished: datetime) -> ProofRecord:
        """The proof of a completed task (quote and receipt)."""
        ...


def _both(
    first: Callable[[Connection], None] | None, second: Callable[[Connection], None]
) -> Callable[[Connection], None]:
    if first is None:
        return second

    def both(conn: Connection) -> None:
        first(conn)
        second(conn)

    return both


class Executor:
    """Runs the messages of one worker process (one node): the `TaskRunner` of its pool.

    `batches` builds the batch logic on this executor (`Batches`: it claims, builds
    contexts and records outcomes through it). `prover` (tee pools): tasks run only while
    it is ready, and each completion is written with its proof.
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
        heartbeat: HeartbeatConfig | None = None,
        prover: Prover | None = None,
        containers: ContainerTasks | None = None,
    ) -> None:
        self.store, self.dispatch, self.node_id = store, dispatch, node_id
        self.prover, self.containers = prover, containers
        self.gate, self.interrupter, self.retry, self.device = gate, interrupter, retry, device
        heartbeat = heartbeat or HeartbeatConfig()
        self.lease_seconds = heartbeat.lease_seconds
        self.resend_after_seconds = heartbeat.pending_resend_seconds
        self.batches = batches(self)

    # -- tasks ----------------------------------------------------------------------------

    def run_task(self, task_id: str, waits: int = 0, created_ms: int | None = None) -> None:
        unattested = self.prover is not None and not self.prover.ready()
        if created_ms is not None and not unattested and self._run_unchecked(task_id, created_ms):
            return
        task = self.store.tasks.get(None, task_id)
        if task is None or task.status != PENDING:
            return  # finished, cancelled, or running elsewhere: a duplicate message
        if unattested:  # no TEE work on a node not (or no longer) attested: for another node
            self._later(task, 1000, waits)
            return
        if not self._ready(task, waits):
            return
        request = Request.of(task.resources)
        if not self.gate.fits(request):
            # Another node of the pool may be bigger; submit checked that one exists.
            self._later(task, 1000, waits)
            return
        with self.gate.hold(request):
            if task.type == "batch":
                self.batches.fan_out(task, waits)
            else:
                self._attempt(task, waits)

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
                lease_expires_at=self.lease_until(now),
                device_emulated=bool(self.device and self.device.emulated),
                message=lambda claimed: f"running on {self.node_id} (attempt {claimed.attempt})",
            )
            if task is not None:
                self._run_claimed(task, task.attempt, now)
            else:
                self._held_back(task_id, 0)
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
        self._later(task, delay, waits + 1)

    def _later(self, task: TaskRecord, delay_ms: int, waits: int) -> None:
        """Sends a pending task's message again after `delay_ms` (a re-check). Its row says
        the message is out (`sent_at`), refreshed at most every half resend threshold, so
        the reconciler does not take a task that waits, message and all, for one whose
        message is gone."""
        self.dispatch.send(task, delay_ms=delay_ms, waits=waits)
        now = utc_now()
        if task.sent_at is None or (now - task.sent_at).total_seconds() > self.resend_after_seconds / 2:
            try:
                self.store.lifecycle.mark_sent([task.task_id], now + timedelta(milliseconds=delay_ms))
            except Exception:  # the message is out: at worst the reconciler sends one more
                logger.warning("could not record the send of %s", task.task_id, exc_info=True)

    def lease_until(self, now: datetime) -> datetime:
        """When the lease of an attempt claimed or renewed at `now` runs out."""
        return now + timedelta(seconds=self.lease_seconds)

    def claim(self, task: TaskRecord, message: str, waits: int = 0) -> tuple[int, datetime] | None:
        """pending -> running for this node, within the tenant's quotas; the attempt number
        and start time, or None (a task its quotas hold back is re-tried later)."""
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
            lease_expires_at=self.lease_until(now),
            within_quota=True,
        )
        if not claimed:
            self._held_back(task.task_id, waits)
            return None
        return attempt, now

    def _held_back(self, task_id: str, waits: int) -> None:
        """After a claim that matched nothing: a task still pending was held back by its
        tenant's quotas (runtime.store.admission); it is re-tried after a backoff, with no
        retry spent. Anything else (finished, running elsewhere) was a duplicate message."""
        task = self.store.tasks.get(None, task_id)
        if task is not None and task.status == PENDING:
            self._later(task, min(HOLD_MAX_MS, HOLD_FIRST_MS * 2 ** min(waits, 10)), waits + 1)

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

    def _attempt(self, task: TaskRecord, waits: int = 0) -> None:
        claimed = self.claim(task, f"running on {self.node_id} (attempt {task.attempt + 1})", waits)
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
        except TaskHandedBack:
            self.hand_back(task, attempt, "its worker is stopping")
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
        if self.prover is not None and task.pool == "tee":
            self.prover.check(task)
        if task.type == "pipeline":
            return run_pipeline(payload, ctx)
        if task.type == CONTAINER_TASK:
            if self.containers is None:
                raise InvalidInput(f"node {self.node_id} cannot run containers", "type")
            return self.containers.run(task, ctx)
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
        sent_at: datetime | None = None,
        started: datetime | None = None,
    ) -> bool:
        """The one way an outcome reaches the store, with the fields its status needs.

        completed: `result`, progress 100, no error. failed: `error` and `result` (a
        pipeline's steps so far, else None). timeout: `error`. pending, a retry:
        retry_count + 1, `error`, progress 0, and when its message is due (`sent_at`,
        default now). `timing` adds the finish fields (completed_at, duration_ms,
        execution_time_ms) a finished outcome has.

        A store that cannot take the write now (down, locked) is asked again, for up to a
        lease (`patiently`): the outcome of work done is not lost to a short outage.

        Conditional on `from_status` (running, or pending for a task that never started)
        and on `attempt`, the attempt this worker claimed (None for a batch, whose items
        all run under its one claim). False: the task had moved on, e.g. it was cancelled
        (`store.tasks.cancel` records that outcome itself and interrupts the attempt) or
        re-queued after its node was given up on; nothing was written.

        On a tee pool a finished attempt is `tee_executed`; a completed one is written with
        its proof (`prover.seal`: a fresh quote and the signed receipt; `started` is when
        the attempt began, default the task's first start).
        """
        fields: dict[str, Any]
        if status == PENDING:
            fields = {
                "retry_count": task.retry_count + 1,
                "error": error,
                "progress": 0,
                "sent_at": sent_at or utc_now(),
            }
        elif status == COMPLETED:
            fields = {"result": result, "error": None, "progress": 100}
        elif status == FAILED:
            fields = {"error": error, "result": result}
        else:
            fields = {"error": error}
        if self.prover is not None and task.pool == "tee" and status != PENDING and from_status == RUNNING:
            fields["tee_executed"] = True
            if status == COMPLETED:
                finished = (timing or {}).get("completed_at") or utc_now()
                try:
                    proof = self.prover.seal(task, result, started or task.started_at or finished, finished)
                except Exception:  # the attester failed: the result stands, without a proof
                    logger.warning("no proof for %s: sealing failed", task.task_id, exc_info=True)
                else:
                    fields["proof_available"] = True
                    also = _both(also, lambda conn: self.store.tee.save_proof(conn, proof))
        written = self.patiently(
            lambda: self.store.lifecycle.transition(
                task.task_id,
                from_statuses=(from_status,),
                to_status=status,
                match=None if attempt is None else {"attempt": attempt},
                message=message,
                also=also,
                **fields,
                **(timing or {}),
            )
        )
        if written and status != PENDING:
            TASK_METRICS.finished(task.api, status, (timing or {}).get("execution_time_ms"))
        return written

    def patiently(self, write: Callable[[], T]) -> T:
        """`write()`, again while the store is unavailable (50 ms doubling to 1 s), for up
        to a lease: by then the reconciler may have re-queued the attempt, and the write
        would match nothing anyway. Then the error goes to Dramatiq's Retries (the message
        waits there; the task's lease brings it back)."""
        deadline = time.monotonic() + self.lease_seconds
        delay = STORE_RETRY_FIRST_SECONDS
        while True:
            try:
                return write()
            except Exception as error:
                if not is_unavailable(error) or time.monotonic() + delay > deadline:
                    raise
                logger.warning("store unavailable (%s); writing again in %.2fs", type(error).__name__, delay)
            time.sleep(delay)
            delay = min(STORE_RETRY_MAX_SECONDS, delay * 2)

    def hand_back(self, task: TaskRecord, attempt: int, why: str) -> bool:
        """running -> pending for an attempt this worker gives up without failing it (its
        process is stopping): no retry spent, the attempt named in the event; its message
        is sent again at once, for another worker. False: the attempt had moved on.

        One try: a stopping worker does not wait for the store (if it cannot write, the
        attempt's lease runs out and the reconciler re-queues it)."""
        try:
            moved = self.store.lifecycle.transition(
                task.task_id,
                from_statuses=(RUNNING,),
                to_status=PENDING,
                match={"attempt": attempt},
                message=f"attempt {attempt} handed back by {self.node_id}: {why}",
                progress=0,
                sent_at=utc_now(),
            )
        except Exception:
            logger.warning("could not hand %s back; its lease will", task.task_id, exc_info=True)
            return False
        if moved:
            try:
                self.dispatch.send(task)
            except Exception:  # the reconciler sends a pending task whose message is missing
                logger.warning("could not send %s again", task.task_id, exc_info=True)
        return moved

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
            started=started,
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
        elif isinstance(error, ContainerFailed):
            code, result = "container_failed", error.outcome.result()
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
        due = utc_now() + timedelta(seconds=delay)  # the message waits in a delay queue until then
        if self.record(task, PENDING, message, attempt=attempt, error=detail, sent_at=due):
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
