"""A workload at another offered load: every stream's rate times one factor, the mix kept.

The test-bed runs a workload at a list of offered loads and the twin must be asked about the
same loads; both scale the one file the same way, so the shape (stream shares, bursts, daily
cycle) stays and only the level moves.
"""

from __future__ import annotations

from simulator.workload import MMPP, Diurnal, Poisson, Stream, Workload, mean_rate


def total_rate(workload: Workload) -> float:
    """The long-run arrival rate of all streams together (trace streams not counted)."""
    return sum(rate for s in workload.streams if (rate := mean_rate(s.arrivals)) is not None)


def _scaled_stream(stream: Stream, factor: float) -> Stream:
    arrivals = stream.arrivals
    if isinstance(arrivals, Poisson):
        arrivals = arrivals.model_copy(update={"rate": arrivals.rate * factor})
    elif isinstance(arrivals, Diurnal):
        arrivals = arrivals.model_copy(update={"mean_rate": arrivals.mean_rate * factor})
    elif isinstance(arrivals, MMPP):
        arrivals = arrivals.model_copy(update={"rates": [r * factor for r in arrivals.rates]})
    else:
        raise ValueError(
            f"stream {stream.name or stream.tenant!r} replays a trace: its rate cannot be scaled"
        )
    return stream.model_copy(update={"arrivals": arrivals})


def at_rate(workload: Workload, rate: float) -> Workload:
    """The same workload offering `rate` tasks per second in total."""
    if rate <= 0:
        raise ValueError(f"offered load must be > 0 tasks/s, got {rate}")
    base = total_rate(workload)
    if base <= 0:
        raise ValueError("the workload has no stream with a known rate to scale")
    factor = rate / base
    return workload.model_copy(update={"streams": [_scaled_stream(s, factor) for s in workload.streams]})


def mix_shares(workload: Workload) -> dict[str, float]:
    """Each function's share of the arrivals, from the streams' rates and mixes."""
    shares: dict[str, float] = {}
    for stream in workload.streams:
        rate = mean_rate(stream.arrivals) or 0.0
        weights = sum(e.weight for e in stream.mix)
        for entry in stream.mix:
            shares[entry.function] = shares.get(entry.function, 0.0) + rate * entry.weight / weights
    total = sum(shares.values())
    return {name: share / total for name, share in shares.items()} if total else {}


def mean_service(workload: Workload) -> float:
    """Mean service time of one arrival, weighted by each stream's rate and mix."""
    from simulator.service import moments

    return sum(
        share * moments(workload.functions[name].service)[0] for name, share in mix_shares(workload).items()
    )
