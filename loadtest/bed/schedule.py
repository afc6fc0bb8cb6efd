"""The open-loop arrival schedule of one load level, drawn from a twin workload file.

Locust's users are closed loops (a user waits for its answer before its next request), which
would make the offered load depend on the system's speed. The test-bed draws the arrivals
ahead instead, with the twin's own arrival processes and service distributions, and the users
only keep appointments: the load offered is the load the file describes, whatever the answers
take. Each arrival runs the built-in `sleep` task for its drawn service time, labelled with
the workload function it stands for.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from simulator.arrivals import arrival_times
from simulator.scaling import at_rate
from simulator.service import make_sampler
from simulator.workload import Trace, Workload


@dataclass(frozen=True)
class Arrival:
    at: float  # seconds from the level's start
    function: str  # the workload's function name
    priority: str
    seconds: float  # service time the `sleep` task runs for


def draw_schedule(workload: Workload, rate: float, duration: float, seed: int) -> list[Arrival]:
    """Every arrival of `workload` scaled to `rate` tasks/s over `duration` seconds, by time."""
    if duration <= 0:
        raise ValueError(f"duration must be > 0 s, got {duration}")
    scaled = at_rate(workload, rate)
    rng = np.random.default_rng(seed)
    samplers = {name: make_sampler(fn.service, rng) for name, fn in sorted(scaled.functions.items())}
    found: list[Arrival] = []
    for stream in scaled.streams:
        if isinstance(stream.arrivals, Trace):
            raise ValueError("the test-bed draws arrivals; trace streams are not supported")
        weights = np.array([e.weight for e in stream.mix], dtype=float)
        weights /= weights.sum()
        for at in arrival_times(rng, stream.arrivals):
            if at >= duration:
                break
            entry = stream.mix[int(rng.choice(len(weights), p=weights))]
            found.append(Arrival(at, entry.function, entry.priority, float(samplers[entry.function]())))
    found.sort(key=lambda a: a.at)
    return found


def write_schedule(arrivals: list[Arrival], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps([asdict(a) for a in arrivals]))
    return path


def read_schedule(path: Path) -> list[Arrival]:
    return [Arrival(**row) for row in json.loads(path.read_text())]
