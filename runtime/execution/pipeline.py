"""Pipelines (the Orchestrator's execution modes), run inside the task's attempt.

- `sequential`: steps one after another; each step's output is the next step's input.
- `parallel`: every step at once, each on its own `data` (or the pipeline's `data`).
- `hybrid`: `steps` is a list of stages run in order; a stage is one step or a list of
  steps run in parallel; a stage's input is the previous stage's output (a list after a
  parallel stage).

Every step's execution (function, status, time, output) is recorded in the result and
reported as a progress message.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from runtime.execution.functions import InvalidInput, TaskContext, get_function
from runtime.store.coltypes import utc_now

MODES = ("sequential", "parallel", "hybrid")


class StepFailed(Exception):
    """A step raised; `record` holds the executions so far, `cause` the step's error."""

    def __init__(self, step: dict[str, Any], cause: BaseException, record: dict[str, Any]) -> None:
        super().__init__(f"step {step['index']} ({step['function']}) failed: {type(cause).__name__}: {cause}")
        self.cause, self.record = cause, record


def stages_of(payload: dict[str, Any]) -> list[list[dict[str, Any]]]:
    """The steps grouped in stages (lists run in parallel), validated for shape."""
    mode = payload.get("mode", "sequential")
    steps = payload.get("steps")
    if mode not in MODES:
        raise InvalidInput(f"mode must be one of {', '.join(MODES)}", "payload.mode")
    if not isinstance(steps, list) or not steps:
        raise InvalidInput("a pipeline needs a non-empty list `steps`", "payload.steps")
    if mode == "sequential":
        stages = [[step] for step in steps]
    elif mode == "parallel":
        stages = [list(steps)]
    else:
        stages = [list(step) if isinstance(step, list) else [step] for step in steps]
    for number, stage in enumerate(stages):
        if not stage:
            raise InvalidInput(f"stage {number} has no steps", f"payload.steps[{number}]")
        for step in stage:
            if not isinstance(step, dict) or not isinstance(step.get("function"), str):
                raise InvalidInput("every step is an object with a `function`", f"payload.steps[{number}]")
    return stages


def run_pipeline(payload: dict[str, Any], ctx: TaskContext) -> dict[str, Any]:
    mode = payload.get("mode", "sequential")
    stages = stages_of(payload)
    total = sum(len(stage) for stage in stages)
    executions: list[dict[str, Any]] = []
    value: Any = payload.get("data")
    index = 0
    for number, stage in enumerate(stages):
        ctx.check()
        inputs = [_input(step, value, first=number == 0 or mode == "parallel") for step in stage]
        numbered = [{**step, "index": index + i, "stage": number} for i, step in enumerate(stage)]
        index += len(stage)
        if len(stage) == 1:
            outcomes = [_run_step(numbered[0], inputs[0], ctx)]
        else:
            with ThreadPoolExecutor(max_workers=min(len(stage), 16), thread_name_prefix="grey-step") as pool:
                outcomes = list(
                    pool.map(
                        lambda pair: _run_step(pair[0], pair[1], ctx), zip(numbered, inputs, strict=True)
                    )
                )
        executions += [execution for execution, _ in outcomes]
        failure = next((error for _, error in outcomes if error is not None), None)
        if failure is not None:
            step, error = failure
            raise StepFailed(step, error, {"mode": mode, "steps": executions, "output": None})
        outputs = [execution["output"] for execution, _ in outcomes]
        value = outputs[0] if len(stage) == 1 else outputs
        done = len(executions)
        names = ", ".join(step["function"] for step in stage)
        ctx.progress(
            done * 100 // total, f"stage {number + 1}/{len(stages)} ({names}) done: {done}/{total} steps"
        )
    return {"mode": mode, "output": value, "steps": executions}


def _input(step: dict[str, Any], previous: Any, *, first: bool) -> Any:
    """A step's own `data` on the first stage (or in parallel mode), else the previous output."""
    if first and "data" in step:
        return step["data"]
    return previous


def _run_step(
    step: dict[str, Any], data: Any, ctx: TaskContext
) -> tuple[dict[str, Any], tuple[dict[str, Any], BaseException] | None]:
    execution: dict[str, Any] = {
        "index": step["index"],
        "stage": step["stage"],
        "function": step["function"],
        "started_at": utc_now().isoformat(),
    }
    clock = time.perf_counter()
    try:
        function = get_function(step["function"])
        if function is None:
            raise InvalidInput(f"unknown function {step['function']!r}", f"payload.steps[{step['index']}]")
        output = function.fn(function.parse(data), ctx)
    except Exception as error:
        execution.update(
            status="failed", execution_time_ms=round((time.perf_counter() - clock) * 1000), error=str(error)
        )
        return execution, (step, error)
    execution.update(
        status="completed", execution_time_ms=round((time.perf_counter() - clock) * 1000), output=output
    )
    return execution, None
