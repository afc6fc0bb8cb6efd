"""When the runtime notices a dead node: heartbeats and the peers' reapers, as they run.

runtime/execution/nodes.py: every node process (the gateway's and each worker's) beats every
`heartbeat.interval_seconds` on a thread of its own (`NodeAgent._loop`: wait one interval,
beat, repeat), and each beat runs the reaper, which marks down every node whose *last*
heartbeat is more than `heartbeat.timeout_seconds` old and re-queues its running tasks (and
re-sends its pool's pending ones). So a node that dies at `t` is noticed at

    the first reaper tick of any live peer at or after  last_beat + timeout,

where `last_beat` is its own last beat before `t` (anywhere in the interval before `t`) and
the peers tick on phases of their own. That lands anywhere in [t + timeout - interval,
t + timeout + interval]: one interval early when the node died just before its next beat and
a peer ticks right at the deadline, one late when it had just beaten and every peer had just
ticked. The last beat is on average half an interval before the death and the first of
`peers` ticks comes on average interval / (peers + 1) after the deadline, so the detection
comes `interval / 2 - interval / (peers + 1)` before `t + timeout` on average (a sixth of an
interval with a gateway and one other worker), and spreads over two intervals.

The reconciler's lease expiry (runtime/execution/reconciler.py) is never earlier: a running
attempt's lease is renewed at the beats and lasts `max(timeout, 2 x interval)`, and only the
coordinator (one of the peers) expires it.

Each node's phase is drawn once per run, U(0, interval), from the run's heartbeat stream; a node
restarted by its supervisor registers and beats one interval later (its phase is its restart
time). A test-bed kill can give the phases it read from the store at the kill instead, and
the period it saw between beats (the interval plus each beat's own duration).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

#: `grey serve` processes: each runs a node agent with a reaper (the bed runs one).
GATEWAYS = 1


@dataclass(frozen=True)
class Beats:
    """Heartbeats read at a kill: seconds since the killed node's last beat, and since each
    live peer's (the phase of its reaper's ticks)."""

    killed_ago: float
    peers_ago: Sequence[float]
    period: float | None = None
    """Seconds between a node's beats as measured: the agent waits an interval after each
    beat *ends*, so a beat's own duration (its store writes, the reaper's and the
    reconciler's passes; tens to hundreds of ms on a loaded machine) adds to every period."""


class Heartbeats:
    """Each node's heartbeat phase, and when a node that failed is noticed by a peer."""

    def __init__(self, interval: float, timeout: float, uniform: Callable[[], float]) -> None:
        self.interval, self.timeout = interval, timeout
        self._uniform = uniform
        self._phase: dict[object, float] = {}

    def phase(self, key: object) -> float:
        """The time of one of `key`'s beats (drawn in [0, interval) on first use)."""
        if key not in self._phase:
            self._phase[key] = self._uniform() * self.interval
        return self._phase[key]

    def restarted(self, key: object, now: float) -> None:
        """A node process started at `now` (registered then; it first beats one interval on)."""
        self._phase[key] = now

    def last_beat(self, key: object, now: float) -> float:
        """`key`'s last beat at or before `now`."""
        phase = self.phase(key)
        return phase + math.floor((now - phase) / self.interval) * self.interval

    def next_tick(self, phase: float, due: float, period: float | None = None) -> float:
        """The first beat at or after `due` of a node beating at `phase` + k x period (default:
        the interval)."""
        step = period or self.interval
        return phase + math.ceil((due - phase) / step - 1e-12) * step

    def detected(self, key: object, now: float, peers: Iterable[object], beats: Beats | None = None) -> float:
        """When the node `key`, dead at `now`, is marked down by the first of `peers` (node
        keys, the gateways included) to tick after its last beat is `timeout` old. `beats`:
        measured phases instead of the drawn ones."""
        period = None
        if beats is not None:
            due = now - beats.killed_ago + self.timeout
            phases = [now - ago for ago in beats.peers_ago]
            period = beats.period
        else:
            due = self.last_beat(key, now) + self.timeout
            phases = [self.phase(peer) for peer in peers]
        due = max(due, now)
        if not phases:
            return math.inf  # nobody left to notice it, until a node comes back
        return min(self.next_tick(phase, due, period) for phase in phases)
