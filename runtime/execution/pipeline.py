"""Pipelines (the Orchestrator's execution modes), run inside the task's attempt.

A pipeline payload gives its steps explicitly (`steps`) or names a registered pipeline
(`pipeline`), whose agents (task functions) are declared in stages:

    named_pipeline(
        "report_generation",
        stages=[["data_ingest"], ["data_analysis"], ["synthesis"]],
        default_mode="sequential",
        description="multi-modal inputs -> a JSON report",
    )

Register it in a module named in `GREY_TASK_MODULES` (next to its task functions); it is
found through the same lazy loading. `unavailable="why"` registers a pipeline this build
cannot run: submitting it is refused (`Unschedulable`) with that reason.

- `sequential`: steps one after another; each step's output is the next step's input
  (a named pipeline: every agent of every stage, in order).
- `parallel`: every step at once, each on its own `data` (or the pipeline's `data`).
- `hybrid`: `steps` is a list of stages run in order; a stage is one step or a list of
  steps run in parallel; a stage's input is the previous stage's output (a list after a
  parallel stage). A named pipeline runs its declared stages.

A step failing transiently (`is_transient`) is run again, up to `STEP_MAX_RETRIES` times
with exponential backoff (cancel- and deadline-aware); then the pipeline fails for good.
Every step's execution (agent, function, status, attempts, time, output) is recorded in
the result, and each agent's end (and each retry) is reported as a progress message that
starts with its `agent_id`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from runtime.execution.functions import InvalidInput, TaskContext, get_function, is_transient, load_builtins
from runtime.store.coltypes import utc_now

MODES = ("sequential", "parallel", "hybrid")
STEP_MAX_RETRIES = 3
STEP_RETRY_BASE_SECONDS = 0.2  # 0.2 s, 0.4 s, 0.8 s


@dataclass(frozen=True, slots=True)
class NamedPipeline:
    name: str
    stages: tuple[tuple[str, ...], ...]  # agent (task function) names; a stage runs in parallel
    default_mode: str = "sequential"
    description: str = ""
    unavailable: str | None = None  # why this build cannot run it; None: it can

    @property
    def agents(self) -> tuple[str, ...]:
        return tuple(agent for stage in self.stages for agent in stage)

    def steps(self, mode: str) -> list[Any]:
        """Its agents as explicit `steps` of `mode`."""
        if mode == "hybrid":
            return [[{"function": agent} for agent in stage] for stage in self.stages]
        return [{"function": agent} for agent in self.agents]


class UnknownPipeline(InvalidInput):
    """`payload.pipeline` names no registered pipeline."""


class PipelineUnavailable(Exception):
    """A registered pipeline this build cannot run (`reason`): refused at submit."""

    transient = False

    def __init__(self, pipeline: NamedPipeline) -> None:
        super().__init__(f"pipeline {pipeline.name!r} is unavailable: {pipeline.unavailable}")
        self.pipeline, self.reason = pipeline, pipeline.unavailable or ""


class StepRetriesExhausted(Exception):
    """A step still failing transiently after its retries: final, the task is not retried."""

    transient = False


class StepFailed(Exception):
    """A step raised; `record` holds the executions so far, `cause` the step's error."""

    def __init__(self, step: dict[str, Any], cause: BaseException, record: dict[str, Any]) -> None:
        super().__init__(f"step {step['index']} ({step['function']}) failed: {type(cause).__name__}: {cause}")
        self.cause, self.record = cause, record


_PIPELINES: dict[str, NamedPipeline] = {}


def named_pipeline(
    name: str,
    *,
    stages: Sequence[Sequence[str]],
    default_mode: str = "sequential",
    description: str = "",
    unavailable: str | None = None,
) -> NamedPipeline:
    """Register the pipeline `name` (a later registration replaces it) and return it."""
    if default_mode not in MODES:
        raise ValueError(f"default_mode must be one of {', '.join(MODES)}")
    frozen = tuple(tuple(stage) for stage in stages)
    if not frozen or not all(frozen) or not all(isinstance(a, str) for s in frozen for a in s):
        raise ValueError("stages is a non-empty list of non-empty lists of agent names")
    pipeline = NamedPipeline(name, frozen, default_mode, description, unavailable)
    _PIPELINES[name] = pipeline
    return pipeline


def get_pipeline(name: str) -> NamedPipeline | None:
    load_builtins()
    return _PIPELINES.get(name)


def pipeline_names() -> list[str]:
    load_builtins()
    return sorted(_PIPELINES)


@dataclass(frozen=True, slots=True)
class Plan:
    mode: str
    stages: list[list[dict[str, Any]]]
    named: NamedPipeline | None


def plan_of(payload: dict[str, Any]) -> Plan:
    """The mode and the steps grouped in stages (lists run in parallel), validated for shape.

    InvalidInput (UnknownPipeline for an unknown name); PipelineUnavailable.
    """
    named = None
    mode = payload.get("mode", "sequential")
    steps = payload.get("steps")
    if payload.get("pipeline") is not None:
        name = payload["pipeline"]
        named = get_pipeline(name) if isinstance(name, str) else None
        if named is None:
            known = ", ".join(pipeline_names()) or "none"
            raise UnknownPipeline(f"unknown pipeline {name!r}; known: {known}", "payload.pipeline")
        if steps is not None:
            raise InvalidInput("give either `pipeline` or `steps`, not both", "payload.steps")
        if named.unavailable is not None:
            raise PipelineUnavailable(named)
        mode = payload.get("mode") or named.default_mode
        steps = named.steps(mode) if mode in MODES else None
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
    return Plan(mode, stages, named)


def stages_of(payload: dict[str, Any]) -> list[list[dict[str, Any]]]:
    """The steps grouped in stages (lists run in parallel), validated for shape."""
    return plan_of(payload).stages


def agent_id(function: str, index: int) -> str:
    """`agent-data-ingest-1`: the step's function and its 1-based position in the pipeline."""
    return f"agent-{function.replace('_', '-')}-{index + 1}"


class _Progress:
    """Agents done of total; reports (serialised) as each agent ends or retries."""

    def __init__(self, ctx: TaskContext, total: int, stages: int) -> None:
        self.ctx, self.total, self.stages, self.done = ctx, total, stages, 0
        self._lock = threading.Lock()

    def report(self, step: dict[str, Any], what: str, *, finished: bool) -> None:
        with self._lock:
            self.done += finished
            where = f"stage {step['stage'] + 1}/{self.stages}, {self.done}/{self.total} steps done"
            message = f"{agent_id(step['function'], step['index'])} {what} ({where})"
            self.ctx.progress(self.done * 100 // self.total, message)


def run_pipeline(payload: dict[str, Any], ctx: TaskContext) -> dict[str, Any]:
    plan = plan_of(payload)
    mode, stages = plan.mode, plan.stages
    progress = _Progress(ctx, sum(len(stage) for stage in stages), len(stages))
    executions: list[dict[str, Any]] = []
    value: Any = payload.get("data")
    index = 0
    head = {"pipeline": plan.named.name} if plan.named is not None else {}
    for number, stage in enumerate(stages):
        ctx.check()
        inputs = [_input(step, value, first=number == 0 or mode == "parallel") for step in stage]
        numbered = [{**step, "index": index + i, "stage": number} for i, step in enumerate(stage)]
        index += len(stage)
        if len(stage) == 1:
            outcomes = [_run_step(numbered[0], inputs[0], ctx, progress)]
        else:
            with ThreadPoolExecutor(max_workers=min(len(stage), 16), thread_name_prefix="grey-step") as pool:
                outcomes = list(
                    pool.map(
                        lambda pair: _run_step(pair[0], pair[1], ctx, progress),
                        zip(numbered, inputs, strict=True),
                    )
                )
        executions += [execution for execution, _ in outcomes]
        failure = next((error for _, error in outcomes if error is not None), None)
        if failure is not None:
            step, error = failure
            raise StepFailed(step, error, {**head, "mode": mode, "steps": executions, "output": None})
        outputs = [execution["output"] for execution, _ in outcomes]
        value = outputs[0] if len(stage) == 1 else outputs
    return {**head, "mode": mode, "output": value, "steps": executions}


def _input(step: dict[str, Any], previous: Any, *, first: bool) -> Any:
    """A step's own `data` on the first stage (or in parallel mode), else the previous output."""
    if first and "data" in step:
        return step["data"]
    return previous


def _run_step(
    step: dict[str, Any], data: Any, ctx: TaskContext, progress: _Progress
) -> tuple[dict[str, Any], tuple[dict[str, Any], BaseException] | None]:
    execution: dict[str, Any] = {
        "index": step["index"],
        "stage": step["stage"],
        "function": step["function"],
        "agent_id": agent_id(step["function"], step["index"]),
        "started_at": utc_now().isoformat(),
    }
    clock = time.perf_counter()
    attempts = 0
    while True:
        attempts += 1
        try:
            output = _call(step, data, ctx)
        except Exception as error:
            if is_transient(error) and attempts <= STEP_MAX_RETRIES:
                delay = STEP_RETRY_BASE_SECONDS * 2 ** (attempts - 1)
                why = f"{type(error).__name__}: {error}"[:200]
                progress.report(
                    step, f"retry {attempts}/{STEP_MAX_RETRIES} in {delay:.1f}s: {why}", finished=False
                )
                ctx.sleep(delay)
                continue
            if is_transient(error):
                exhausted = StepRetriesExhausted(
                    f"{type(error).__name__}: {error} (still failing after {STEP_MAX_RETRIES} retries)"
                )
                exhausted.__cause__, error = error, exhausted
            execution.update(
                status="failed",
                execution_time_ms=_ms_since(clock),
                attempts=attempts,
                retry_count=attempts - 1,
                error=str(error),
            )
            progress.report(step, f"failed after {attempts} attempt(s): {str(error)[:200]}", finished=True)
            return execution, (step, error)
        execution.update(
            status="completed",
            execution_time_ms=_ms_since(clock),
            attempts=attempts,
            retry_count=attempts - 1,
            output=output,
        )
        retried = f" after {attempts - 1} retries" if attempts > 1 else ""
        progress.report(step, f"completed{retried} in {execution['execution_time_ms']} ms", finished=True)
        return execution, None


def _call(step: dict[str, Any], data: Any, ctx: TaskContext) -> Any:
    function = get_function(step["function"])
    if function is None:
        raise InvalidInput(f"unknown function {step['function']!r}", f"payload.steps[{step['index']}]")
    return function.fn(function.parse(data), ctx)


def _ms_since(clock: float) -> int:
    return round((time.perf_counter() - clock) * 1000)
