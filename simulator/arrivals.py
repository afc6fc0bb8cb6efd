"""Arrival processes as lazy iterators of absolute times (seconds), drawn in numpy batches.

Lazy so that memory does not grow with the run length; batched so that the per-arrival cost
is a list step, not a numpy call.  Trace rows are read one at a time for the same reason.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from runtime.config import PRIORITIES, ConfigError
from simulator.workload import MMPP, Diurnal, Poisson, Trace

CHUNK = 4096


def poisson_times(rng: np.random.Generator, rate: float, start: float = 0.0) -> Iterator[float]:
    """Homogeneous Poisson process: exponential gaps of mean 1/rate."""
    t = start
    scale = 1.0 / rate
    while True:
        times = t + np.cumsum(rng.exponential(scale, CHUNK))
        t = float(times[-1])
        yield from times.tolist()


def diurnal_rate(spec: Diurnal, t: np.ndarray) -> np.ndarray:
    """lambda(t) of a diurnal process, vectorised."""
    if spec.profile is not None:
        prof = np.asarray(spec.profile, dtype=float)
        prof = prof / prof.mean()
        slot = ((t % spec.period_seconds) / spec.period_seconds * len(prof)).astype(int)
        return spec.mean_rate * prof[np.minimum(slot, len(prof) - 1)]
    phase = 2 * math.pi * (t - spec.peak_seconds) / spec.period_seconds
    return spec.mean_rate * (1 + spec.amplitude * np.cos(phase))


def diurnal_peak(spec: Diurnal) -> float:
    """The thinning envelope: the largest rate of the cycle."""
    if spec.profile is not None:
        prof = np.asarray(spec.profile, dtype=float)
        return float(spec.mean_rate * prof.max() / prof.mean())
    return spec.mean_rate * (1 + spec.amplitude)


def diurnal_times(rng: np.random.Generator, spec: Diurnal) -> Iterator[float]:
    """Non-homogeneous Poisson by thinning (Lewis & Shedler): candidates at the peak rate,
    each kept with probability lambda(t) / peak."""
    peak = diurnal_peak(spec)
    t = 0.0
    while True:
        cand = t + np.cumsum(rng.exponential(1.0 / peak, CHUNK))
        t = float(cand[-1])
        keep = rng.random(CHUNK) * peak < diurnal_rate(spec, cand)
        yield from cand[keep].tolist()


def mmpp_times(rng: np.random.Generator, spec: MMPP) -> Iterator[float]:
    """Markov-modulated Poisson: Poisson at rates[s] while in state s.

    The first state is drawn from the long-run share of time in each state, so the process
    is stationary from t = 0 and the warm-up only has to absorb the queue's transient.
    """
    rates = spec.rates
    durs = np.asarray(spec.mean_durations, dtype=float)
    n = len(rates)
    state = int(rng.choice(n, p=durs / durs.sum()))
    t = 0.0
    while True:
        end = t + float(rng.exponential(durs[state]))
        rate = rates[state]
        while rate > 0:
            times = t + np.cumsum(rng.exponential(1.0 / rate, CHUNK))
            inside = times[times < end]
            yield from inside.tolist()
            if len(inside) < CHUNK:
                break
            t = float(times[-1])
        t = end
        nxt = int(rng.integers(n - 1))
        state = nxt if nxt < state else nxt + 1


def arrival_times(rng: np.random.Generator, spec: Poisson | Diurnal | MMPP) -> Iterator[float]:
    """Iterator of arrival times for a synthetic process."""
    if isinstance(spec, Poisson):
        return poisson_times(rng, spec.rate)
    if isinstance(spec, Diurnal):
        return diurnal_times(rng, spec)
    return mmpp_times(rng, spec)


@dataclass(frozen=True, slots=True)
class TraceRow:
    """One recorded submission; fields left out fall back to the function's spec."""

    time: float
    tenant: str | None
    function: str
    priority: str
    cpu: float | None
    memory_gb: float | None
    gpu: int | None
    tee_required: bool | None
    service_time: float | None


_CSV_FIELDS = (
    "time",
    "tenant",
    "function",
    "priority",
    "cpu",
    "memory_gb",
    "gpu",
    "tee_required",
    "service_time",
)


def _opt_float(v: object) -> float | None:
    if v is None or v == "":
        return None
    return float(v)  # type: ignore[arg-type]


def _opt_bool(v: object) -> bool | None:
    if v is None or v == "":
        return None
    if isinstance(v, bool):
        return v
    s = str(v).strip().lower()
    if s in ("true", "1", "yes"):
        return True
    if s in ("false", "0", "no"):
        return False
    raise ValueError(f"expected true or false, got {v!r}")


def _row(fields: dict[str, object], scale: float) -> TraceRow:
    res = fields.get("resources")
    if isinstance(res, dict):
        fields = {**fields, **{k: res.get(k) for k in ("cpu", "memory_gb", "gpu")}}
    for name in ("time", "function"):
        if fields.get(name) in (None, ""):
            raise ValueError(f"field {name!r}: required, missing")
    prio = str(fields.get("priority") or "normal")
    if prio not in PRIORITIES:
        raise ValueError(f"field 'priority': expected one of {', '.join(PRIORITIES)}, got {prio!r}")
    out: dict[str, float | None] = {}
    for name in ("time", "cpu", "memory_gb", "service_time"):
        try:
            value = _opt_float(fields.get(name))
        except (TypeError, ValueError):
            got = fields.get(name)
            raise ValueError(f"field {name!r}: expected a number, got {got!r}") from None
        if value is not None and (not math.isfinite(value) or value < 0):
            raise ValueError(f"field {name!r}: expected a finite number >= 0, got {value!r}")
        out[name] = value
    gpu = fields.get("gpu")
    try:
        gpu_i = None if gpu in (None, "") else int(gpu)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        raise ValueError(f"field 'gpu': expected an integer, got {gpu!r}") from None
    if gpu_i is not None and gpu_i < 0:
        raise ValueError(f"field 'gpu': expected an integer >= 0, got {gpu_i}")
    try:
        tee = _opt_bool(fields.get("tee_required"))
    except ValueError as exc:
        raise ValueError(f"field 'tee_required': {exc}") from None
    tenant = fields.get("tenant")
    at = out["time"]
    assert at is not None  # "time" is required: a missing or empty one was refused above
    return TraceRow(
        time=at * scale,
        tenant=str(tenant) if tenant not in (None, "") else None,
        function=str(fields["function"]),
        priority=prio,
        cpu=out["cpu"],
        memory_gb=out["memory_gb"],
        gpu=gpu_i,
        tee_required=tee,
        service_time=out["service_time"],
    )


def _trace_format(spec: Trace) -> str:
    if spec.format:
        return spec.format
    return "jsonl" if Path(spec.path).suffix.lower() in (".jsonl", ".ndjson", ".json") else "csv"


def trace_rows(spec: Trace) -> Iterator[TraceRow]:
    """Rows of a trace file, read lazily, checked one by one; times must not decrease."""
    path = Path(spec.path)
    fmt = _trace_format(spec)
    last = -math.inf
    try:
        fh = path.open(encoding="utf-8", newline="")
    except OSError as exc:
        raise ConfigError(path, [("", f"cannot read trace: {exc.strerror or exc}")]) from exc
    with fh:
        if fmt == "csv":
            reader = csv.DictReader(fh)
            header = reader.fieldnames or []
            unknown = [h for h in header if h not in _CSV_FIELDS]
            if unknown or "time" not in header or "function" not in header:
                raise ConfigError(
                    path,
                    [
                        (
                            "line 1",
                            f"expected a header with time, function and "
                            f"optional {', '.join(_CSV_FIELDS[2:])}; got {header}",
                        )
                    ],
                )
            numbered: Iterator[tuple[int, dict[str, object]]] = ((reader.line_num, dict(r)) for r in reader)
        else:
            numbered = _jsonl(fh, path)
        for lineno, fields in numbered:
            try:
                row = _row(fields, spec.time_scale)
            except ValueError as exc:
                raise ConfigError(path, [(f"line {lineno}", str(exc))]) from None
            if row.time < last:
                what = f"expected time >= {last}, got {row.time} (rows must be sorted by time)"
                raise ConfigError(path, [(f"line {lineno}", what)])
            last = row.time
            yield row


def _jsonl(fh: Iterable[str], path: Path) -> Iterator[tuple[int, dict[str, object]]]:
    for lineno, line in enumerate(fh, start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ConfigError(path, [(f"line {lineno}", f"invalid JSON: {exc.msg}")]) from None
        if not isinstance(obj, dict):
            raise ConfigError(path, [(f"line {lineno}", "expected a JSON object per line")])
        yield lineno, obj
