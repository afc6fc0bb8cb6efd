"""Task functions: the registry behind `payload.function`, and what a function receives.

A task function is a plain callable `fn(data, ctx) -> result` registered under a name:

    @task_function("wordcount", input=WordcountInput)
    def wordcount(data: WordcountInput, ctx: TaskContext) -> dict: ...

`input` (a pydantic model) validates `payload.data` at submit, so a bad payload answers
400 instead of becoming a failed task. The modules that register functions are named in
`GREY_TASK_MODULES` (comma-separated; default `handlers.task_functions`, the built-ins) and
imported on first use, as Dramatiq's CLI is given modules: execution imports no handler.
"""

from __future__ import annotations

import importlib
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, RootModel, ValidationError

from runtime.execution.interrupts import TaskCancelled, TaskHandedBack, TaskTimedOut

DEFAULT_TASK_MODULES = "handlers.task_functions"


class TransientError(Exception):
    """Raise (or set `transient = True` on any exception) for failures worth retrying."""

    transient = True


def is_transient(error: BaseException) -> bool:
    return bool(getattr(error, "transient", False)) or isinstance(error, ConnectionError | TimeoutError)


class InvalidInput(ValueError):
    """`data` does not fit the function's input model; `field` names where."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


class AnyData(RootModel[Any]):
    """Input model of functions that take any JSON."""


@dataclass(frozen=True, slots=True)
class TaskFunction:
    name: str
    fn: Callable[[Any, TaskContext], Any]
    input: type[BaseModel]
    pool: str | None = None  # `gpu`: needs a GPU unless the task asks otherwise
    description: str = ""

    def parse(self, data: Any) -> Any:
        """The validated input the function receives; InvalidInput if it does not fit."""
        if data is None and not issubclass(self.input, RootModel):
            data = {}  # no `data`: the input model's defaults
        try:
            parsed = self.input.model_validate(data)
        except ValidationError as error:
            first = error.errors()[0]
            where = ".".join(str(part) for part in first["loc"])
            field_name = f"data.{where}" if where else "data"
            raise InvalidInput(f"{self.name}: {field_name}: {first['msg']}", field_name) from None
        return parsed.root if isinstance(parsed, RootModel) else parsed


_REGISTRY: dict[str, TaskFunction] = {}
_lock = threading.Lock()
_builtins_loaded = False


def task_function(
    name: str, *, input: type[BaseModel] = AnyData, pool: str | None = None
) -> Callable[[Callable[[Any, TaskContext], Any]], Callable[[Any, TaskContext], Any]]:
    """Register `fn` as the task function `name` (a later registration replaces it)."""

    def register(fn: Callable[[Any, TaskContext], Any]) -> Callable[[Any, TaskContext], Any]:
        doc = (fn.__doc__ or "").strip().splitlines()
        _REGISTRY[name] = TaskFunction(name, fn, input, pool, doc[0] if doc else "")
        return fn

    return register


def task_modules() -> list[str]:
    """The modules whose `@task_function`s this process knows (`GREY_TASK_MODULES`)."""
    names = os.environ.get("GREY_TASK_MODULES", DEFAULT_TASK_MODULES).split(",")
    return [name.strip() for name in names if name.strip()]


def load_builtins() -> None:
    """Imports the task modules once (their decorators register the functions)."""
    global _builtins_loaded
    if _builtins_loaded:
        return
    with _lock:
        for name in task_modules():
            importlib.import_module(name)
        _builtins_loaded = True


def get_function(name: str) -> TaskFunction | None:
    load_builtins()
    return _REGISTRY.get(name)


def function_names() -> list[str]:
    load_builtins()
    return sorted(_REGISTRY)


ProgressSink = Callable[[int, str | None], None]


@dataclass
class TaskContext:
    """What a running task function may use besides its input."""

    task_id: str
    tenant_id: str
    node_id: str
    attempt: int
    retry_count: int
    deadline: float  # time.monotonic() by which the attempt must end
    device: dict[str, Any] | None = None  # the GPU this process is pinned to, if any
    emulated: bool = False  # that GPU is emulated (no real device)
    state: Any = None  # stateful tasks: the state as the previous task left it
    new_state: Any = None
    state_written: bool = False
    _progress: ProgressSink | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _stop_reason: str | None = None

    def set_state(self, value: Any) -> None:
        """Stateful tasks: the state to persist when this task completes."""
        self.new_state, self.state_written = value, True

    def progress(self, percent: int, message: str | None = None) -> None:
        """Report progress (0-100); also the point where a cancel or timeout stops the task."""
        self.check()
        if self._progress is not None:
            self._progress(max(0, min(100, int(percent))), message)

    def stop(self, reason: str) -> None:
        """Asks the function to stop at its next check (cancel, timeout, shutdown, lost node)."""
        self._stop_reason = reason
        self._stop.set()

    def check(self) -> None:
        if self._stop.is_set():
            if self._stop_reason == "timeout":
                raise TaskTimedOut()
            raise TaskHandedBack() if self._stop_reason == "shutdown" else TaskCancelled()
        if time.monotonic() >= self.deadline:
            raise TaskTimedOut()

    def sleep(self, seconds: float) -> None:
        """Sleeps, but wakes at once on cancel or timeout."""
        end = time.monotonic() + seconds
        while True:
            self.check()
            left = min(end, self.deadline) - time.monotonic()
            if end - time.monotonic() <= 0:
                return
            self._stop.wait(max(0.0, min(left, 0.5)))
