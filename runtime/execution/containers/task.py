"""The `container` task type: `{"image": ..., "command": ...}` run in a container.

Its resources (`cpu` cores, `memory_gb`, `storage_gb`, `gpu`) are the container's limits
and what its worker's gate reserves. Its result is `{"exit_code", "output",
"output_truncated", "output_bytes", "duration_ms"}`; a non-zero exit code fails the task
with that result kept (`ContainerFailed`). Its log goes to the store when the container
ends, whichever way it ends.
"""

from __future__ import annotations

import logging
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from runtime.execution.containers.command import (
    ATTEMPT_LABEL,
    STORE_LABEL,
    TASK_LABEL,
    ContainerSpec,
    container_name,
    store_label,
)
from runtime.execution.containers.runner import ContainerOutcome, ContainerRunner, TailBuffer
from runtime.execution.containers.settings import ContainerSettings
from runtime.execution.functions import InvalidInput, TaskContext
from runtime.execution.nodes import Request
from runtime.store import Store, TaskLogRecord, TaskRecord
from runtime.store.coltypes import utc_now

logger = logging.getLogger("grey.containers")

#: An image reference as registries spell it: name[:tag][@digest], no spaces or options.
IMAGE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._/:@+-]*$"
MAX_COMMAND_CHARS = 64 * 1024


class ContainerPayload(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    image: str = Field(min_length=1, max_length=512, pattern=IMAGE_PATTERN)
    command: str = Field(min_length=1, max_length=MAX_COMMAND_CHARS)

    @field_validator("command")
    @classmethod
    def _no_nul(cls, value: str) -> str:
        if "\x00" in value:
            raise ValueError("must not contain NUL characters")
        return value


def parse_payload(payload: Any) -> ContainerPayload:
    """The payload of a container task, or InvalidInput naming the field."""
    try:
        return ContainerPayload.model_validate(payload)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        field = f"payload.{where}" if where else "payload"
        raise InvalidInput(f"{field}: {first['msg']}", field) from None


def check_request(resources: dict[str, Any]) -> None:
    """A container's request: positive memory and cpu, no negative figure."""
    request = Request.of(resources)
    if request.cpu <= 0 or request.memory_gb <= 0:
        raise InvalidInput("a container needs cpu > 0 and memory_gb > 0", "resources")
    if request.storage_gb < 0 or request.gpu < 0:
        raise InvalidInput("storage_gb and gpu must not be negative", "resources")


class ContainerFailed(Exception):
    """The container exited with a non-zero code (its result is kept on the failed task)."""

    transient = False

    def __init__(self, outcome: ContainerOutcome) -> None:
        super().__init__(f"container exited with code {outcome.exit_code}")
        self.outcome = outcome


class ContainerTasks:
    """Runs the container tasks of one worker node."""

    def __init__(self, settings: ContainerSettings, store: Store) -> None:
        self.settings, self.store = settings, store
        self.runner = ContainerRunner(settings)

    def spec(self, task: TaskRecord, attempt: int) -> ContainerSpec:
        payload = parse_payload(task.payload)
        request = Request.of(task.resources)
        return ContainerSpec(
            name=container_name(task.task_id, attempt),
            image=payload.image,
            command=payload.command,
            cpu=request.cpu,
            memory_gb=request.memory_gb,
            storage_gb=request.storage_gb,
            timeout_seconds=float(task.timeout_seconds),
            labels={
                TASK_LABEL: task.task_id,
                ATTEMPT_LABEL: str(attempt),
                STORE_LABEL: store_label(self.store.engine.url),
            },
        )

    def run(self, task: TaskRecord, ctx: TaskContext) -> dict[str, Any]:
        """The task's result; raises ContainerFailed on a non-zero exit, and the context's
        TaskCancelled / TaskTimedOut (after stopping the container) when it is stopped."""
        spec = self.spec(task, ctx.attempt)

        def save(buffer: TailBuffer) -> None:
            text, truncated = buffer.text()
            try:
                self.store.logs.save(
                    TaskLogRecord(task.task_id, ctx.attempt, text, buffer.total, truncated, utc_now())
                )
            except Exception:  # the outcome matters more than its log
                logger.warning("could not save the log of %s", task.task_id, exc_info=True)

        outcome = self.runner.run(spec, ctx.check, on_output=save)
        if outcome.exit_code != 0:
            raise ContainerFailed(outcome)
        return outcome.result()
