"""The workload file: who submits what, how often, and how long it runs.

It is the simulator's half of the input (the cluster config is the other half, shared with
the runtime).  Errors name the file, the field and what was expected, like the config loader.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from runtime.config import ConfigError, Priority, read_mapping, validation_problems


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Resources(_Strict):
    """A task's resource request, as in the CloudAI reference: cores, memory, whole GPUs (the
    runtime's defaults)."""

    cpu: float = Field(default=1.0, ge=0)
    memory_gb: float = Field(default=0.5, ge=0)
    gpu: int = Field(default=0, ge=0)


class Constant(_Strict):
    dist: Literal["constant"]
    value: float = Field(ge=0, description="seconds")


class Exponential(_Strict):
    dist: Literal["exponential"]
    mean: float = Field(gt=0, description="seconds")


class Lognormal(_Strict):
    """Given by its mean and coefficient of variation, the two numbers people measure."""

    dist: Literal["lognormal"]
    mean: float = Field(gt=0, description="seconds")
    cv: float = Field(gt=0, description="standard deviation / mean")


class Empirical(_Strict):
    """Resampled from measured service times: one number (seconds) per line of `path`."""

    dist: Literal["empirical"]
    path: str


ServiceDist = Annotated[Constant | Exponential | Lognormal | Empirical, Field(discriminator="dist")]


class FunctionSpec(_Strict):
    """A task function: its service time, request, timeout and transient-failure rate."""

    service: ServiceDist
    resources: Resources = Resources()
    tee_required: bool = False
    timeout_seconds: float = Field(default=300.0, gt=0)
    failure_probability: float = Field(default=0.0, ge=0, le=1)


class MixEntry(_Strict):
    function: str
    priority: Priority = "normal"
    weight: float = Field(default=1.0, gt=0)


class Poisson(_Strict):
    process: Literal["poisson"]
    rate: float = Field(gt=0, description="tasks per second")


class Diurnal(_Strict):
    """Non-homogeneous Poisson: a daily cycle around `mean_rate`, sampled by thinning.

    Without `profile` the rate is mean_rate * (1 + amplitude * cos(2 pi (t - peak) / period)).
    With `profile` (multipliers for equal slices of the period) the rate is piecewise constant.
    """

    process: Literal["diurnal"]
    mean_rate: float = Field(gt=0)
    amplitude: float = Field(default=0.5, ge=0, le=1)
    period_seconds: float = Field(default=86400.0, gt=0)
    peak_seconds: float = Field(default=50400.0, ge=0)
    profile: list[Annotated[float, Field(ge=0)]] | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _profile_not_all_zero(self) -> Diurnal:
        if self.profile is not None and not any(self.profile):
            raise ValueError("profile must have at least one positive multiplier")
        return self


class MMPP(_Strict):
    """Bursty arrivals: a Markov-modulated Poisson process.

    State i has rate `rates[i]` and lasts Exp(mean_durations[i]); the next state is drawn
    uniformly among the others (with two states it simply alternates).
    """

    process: Literal["mmpp"]
    rates: list[Annotated[float, Field(ge=0)]] = Field(min_length=2)
    mean_durations: list[Annotated[float, Field(gt=0)]] = Field(min_length=2)

    @model_validator(mode="after")
    def _same_length(self) -> MMPP:
        if len(self.rates) != len(self.mean_durations):
            raise ValueError("rates and mean_durations must have the same length")
        if not any(self.rates):
            raise ValueError("at least one state must have a positive rate")
        return self


class Trace(_Strict):
    """Replay of recorded submissions: CSV or JSONL rows of
    (time, tenant, function, priority, resources, service_time)."""

    process: Literal["trace"]
    path: str
    format: Literal["csv", "jsonl"] | None = None
    time_scale: float = Field(default=1.0, gt=0, description="multiplies every row's time")


Arrivals = Annotated[Poisson | Diurnal | MMPP | Trace, Field(discriminator="process")]


class Stream(_Strict):
    """One source of submissions: a tenant, an arrival process and a task mix."""

    name: str | None = None
    tenant: str = "default"
    arrivals: Arrivals
    mix: list[MixEntry] = Field(default_factory=list)

    @model_validator(mode="after")
    def _mix_unless_trace(self) -> Stream:
        if not self.mix and not isinstance(self.arrivals, Trace):
            raise ValueError("a stream needs a non-empty mix unless it replays a trace")
        return self


class Workload(_Strict):
    version: Literal[1] = 1
    name: str = "workload"
    functions: dict[str, FunctionSpec] = Field(default_factory=dict)
    streams: list[Stream] = Field(min_length=1)
    slo: list[str] = Field(default_factory=list, description="objectives for `grey plan`")
    dispatch: ServiceDist | None = Field(
        default=None,
        description="delay from an accepted submit to the task joining its queue (broker transit, "
        "message fetch); holds no worker thread. `grey calibrate` measures it. Default: none",
    )
    prefetch_per_thread: int | None = Field(
        default=None,
        ge=1,
        description="messages each worker node fetches ahead from each of its queues, per worker "
        "thread: a task is bound to the node that fetched it and waits there for one of its "
        "threads, most urgent of the node's fetched messages first (the runtime's Dramatiq "
        "workers fetch 2 per thread; `grey calibrate` sets 2). Default: none, a free thread "
        "takes the head of its pool's queues (the pooled queue of queueing theory)",
    )


def mean_rate(arrivals: Poisson | Diurnal | MMPP | Trace) -> float | None:
    """Long-run arrival rate of a process (None for a trace, which is not known ahead)."""
    if isinstance(arrivals, Poisson):
        return arrivals.rate
    if isinstance(arrivals, Diurnal):
        return arrivals.mean_rate
    if isinstance(arrivals, MMPP):
        durations = arrivals.mean_durations
        weighted = sum(r * d for r, d in zip(arrivals.rates, durations, strict=True))
        return weighted / sum(durations)
    return None


def _resolve(base: Path, value: str) -> str:
    p = Path(value)
    return str(p if p.is_absolute() else (base / p))


def load_workload(path: str | Path) -> Workload:
    """Load and validate a workload file; sample and trace paths resolve beside it."""
    from simulator.samples import read_samples  # here to keep the schema import-light
    from simulator.slo import parse_slo

    path = Path(path)
    data = read_mapping(path)
    try:
        wl = Workload.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(path, validation_problems(exc, Workload)) from exc

    problems: list[tuple[str, str]] = []
    known = sorted(wl.functions)
    base = path.parent
    functions = {}
    if isinstance(wl.dispatch, Empirical):
        resolved = _resolve(base, wl.dispatch.path)
        try:
            read_samples(resolved)
        except ConfigError as exc:
            problems.append(("dispatch.path", str(exc)))
        wl = wl.model_copy(update={"dispatch": wl.dispatch.model_copy(update={"path": resolved})})
    for name, fn in wl.functions.items():
        if isinstance(fn.service, Empirical):
            resolved = _resolve(base, fn.service.path)
            try:
                read_samples(resolved)
            except ConfigError as exc:
                problems.append((f"functions.{name}.service.path", str(exc)))
            fn = fn.model_copy(update={"service": fn.service.model_copy(update={"path": resolved})})
        functions[name] = fn
    streams = []
    for i, stream in enumerate(wl.streams):
        for j, entry in enumerate(stream.mix):
            if entry.function not in wl.functions:
                problems.append(
                    (
                        f"streams[{i}].mix[{j}].function",
                        f"unknown function {entry.function!r} (expected one of: {', '.join(known)})",
                    )
                )
        if isinstance(stream.arrivals, Trace):
            resolved = _resolve(base, stream.arrivals.path)
            if not Path(resolved).is_file():
                problems.append((f"streams[{i}].arrivals.path", f"no such file: {resolved}"))
            stream = stream.model_copy(
                update={"arrivals": stream.arrivals.model_copy(update={"path": resolved})}
            )
        streams.append(stream)
    for k, text in enumerate(wl.slo):
        try:
            parse_slo(text)
        except ValueError as exc:
            problems.append((f"slo[{k}]", str(exc)))
    if problems:
        raise ConfigError(path, problems)
    return wl.model_copy(update={"functions": functions, "streams": streams})
