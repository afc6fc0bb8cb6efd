"""`chaos_run`: the task the chaos suite (`python -m loadtest.chaos`) counts runs of.

Each run appends a line to a ledger file outside Grey's tables, so the suite can tell how
many times a task's function actually ran, whatever the store says:

    start <task_id> <attempt> <node_id> <pid> <unix time>
    end   <task_id> <attempt> <node_id> <pid> <unix time>

The file is `GREY_CHAOS_LEDGER` (set by the suite on every process it starts); each line is
one `write` on an `O_APPEND` descriptor followed by `fsync`, so lines from several processes
never interleave and a line written before a kill -9 is still there after it. The path
never comes from the request.

This module is not imported by `handlers.task_functions`: a process knows `chaos_run` only
when `GREY_TASK_MODULES` names it (`handlers.task_functions,handlers.task_functions.chaos`).
"""

from __future__ import annotations

import os
import time
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from runtime.execution.functions import TaskContext, task_function

LEDGER_VARIABLE = "GREY_CHAOS_LEDGER"


class ChaosInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    seconds: float = Field(default=0.0, ge=0, le=3600, description="how long the run sleeps")
    tag: str = Field(default="", max_length=64, description="free text, e.g. the scenario's phase")


def record(kind: str, ctx: TaskContext) -> None:
    """Appends one ledger line (durably) for this run of the task."""
    path = os.environ.get(LEDGER_VARIABLE)
    if not path:
        raise RuntimeError(f"{LEDGER_VARIABLE} is not set: chaos_run has nowhere to count its runs")
    line = f"{kind} {ctx.task_id} {ctx.attempt} {ctx.node_id} {os.getpid()} {time.time():.6f}\n"
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
        os.fsync(fd)
    finally:
        os.close(fd)


@task_function("chaos_run", input=ChaosInput)
def chaos_run(data: ChaosInput, ctx: TaskContext) -> dict[str, Any]:
    """Records its run in the chaos ledger, sleeps `seconds`, records its end."""
    record("start", ctx)
    if data.seconds:
        ctx.sleep(data.seconds)
    record("end", ctx)
    return {"slept": data.seconds, "attempt": ctx.attempt, "node": ctx.node_id}
