"""Built-in task functions: what `payload.function` can name out of the box.

Adding one is a few lines (see docs/runtime.md):

    class GreetInput(BaseModel):
        name: str

    @task_function("greet", input=GreetInput)
    def greet(data: GreetInput, ctx: TaskContext) -> dict:
        return {"greeting": f"hello {data.name}"}

`input` validates `payload.data` at submit (400 `invalid_payload` if it does not fit);
the function gets the parsed input and a `TaskContext` (progress, cancellation-aware
sleep, the persisted state of stateful tasks, the GPU it runs on).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from runtime.execution.functions import TaskContext, TransientError, task_function
from runtime.execution.gpu import matmul as run_matmul


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid")


@task_function("echo")
def echo(data: Any, ctx: TaskContext) -> Any:
    """Returns its input unchanged."""
    return data


@task_function("noop")
def noop(data: Any, ctx: TaskContext) -> dict[str, Any]:
    """Does nothing (benchmarks)."""
    return {}


class SleepInput(_Input):
    seconds: float = Field(default=1.0, ge=0, le=86400)


@task_function("sleep", input=SleepInput)
def sleep(data: SleepInput, ctx: TaskContext) -> dict[str, Any]:
    """Sleeps `seconds`, reporting progress; stops at once on cancel or timeout."""
    steps = max(1, min(10, int(data.seconds / 0.2)))
    for step in range(steps):
        ctx.sleep(data.seconds / steps)
        if step + 1 < steps:
            ctx.progress((step + 1) * 100 // steps, f"slept {(step + 1) * data.seconds / steps:.2f}s")
    return {"slept": data.seconds}


def _text_of(data: Any) -> str:
    if isinstance(data, str):
        return data
    if isinstance(data, dict) and isinstance(data.get("text"), str):
        return data["text"]
    return json.dumps(data, sort_keys=True, separators=(",", ":"))


@task_function("sha256")
def sha256(data: Any, ctx: TaskContext) -> dict[str, Any]:
    """SHA-256 of `data` (a string, {"text": ...}, or any JSON in canonical form)."""
    raw = _text_of(data).encode()
    return {"sha256": hashlib.sha256(raw).hexdigest(), "bytes": len(raw)}


@task_function("wordcount")
def wordcount(data: Any, ctx: TaskContext) -> dict[str, Any]:
    """Words, lines and the ten most common words of a text (a string or {"text": ...})."""
    text = _text_of(data)
    words = re.findall(r"\w+", text.lower())
    return {
        "words": len(words),
        "unique": len(set(words)),
        "lines": text.count("\n") + (1 if text and not text.endswith("\n") else 0),
        "top": Counter(words).most_common(10),
    }


class FailInput(_Input):
    message: str = "failure requested"
    transient: bool = False
    times: int | None = Field(default=None, ge=0, description="fail only the first N attempts")


class RequestedFailure(Exception):
    def __init__(self, message: str, transient: bool) -> None:
        super().__init__(message)
        self.transient = transient


@task_function("fail", input=FailInput)
def fail(data: FailInput, ctx: TaskContext) -> dict[str, Any]:
    """Raises (transient or not); with `times`, succeeds from attempt times+1 on."""
    if data.times is None or ctx.retry_count < data.times:
        if data.transient:
            raise TransientError(data.message)
        raise RequestedFailure(data.message, transient=False)
    return {"succeeded_after_retries": ctx.retry_count}


class MatmulInput(_Input):
    n: int = Field(default=256, ge=1, le=8192)
    seed: int = 0


@task_function("matmul", input=MatmulInput)
def matmul(data: MatmulInput, ctx: TaskContext) -> dict[str, Any]:
    """n-by-n matrix product on the GPU this worker is pinned to (CuPy or PyTorch), else numpy."""
    real_gpu = ctx.device is not None and not ctx.emulated
    figures = run_matmul(data.n, data.seed, use_gpu=real_gpu)
    return {**figures, "emulated": ctx.emulated, "gpu": ctx.device}


class CounterInput(_Input):
    add: float = 1


@task_function("counter", input=CounterInput)
def counter(data: CounterInput, ctx: TaskContext) -> dict[str, Any]:
    """Stateful: adds `add` to the state's value and returns the previous and new values."""
    state = ctx.state if isinstance(ctx.state, dict) else {}
    previous = state.get("value", 0)
    value = previous + data.add
    ctx.set_state({"value": value, "updates": state.get("updates", 0) + 1, "last_task": ctx.task_id})
    return {"previous": previous, "value": value}
