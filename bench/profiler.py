"""`python -m bench.profiler [STORE_URL]`: does a node's profiler sampler keep the asked period?

For each asked `sampling_frequency_ms` one session is started and one sampler (this process,
the machine's GPUs if any) samples for it; the gaps between consecutive stored frames give
the achieved period (median, 5th and 95th percentile). Default store: a fresh SQLite file.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import tempfile
import time
from pathlib import Path

from runtime.execution.profiler import SamplerSettings, start_sampler
from runtime.store import Store
from runtime.store.coltypes import utc_now
from runtime.store.profiler import ProfilerRepository

PERIODS_MS = (1000, 100, 50)


def measure(store: Store, every_ms: int, seconds: float) -> str:
    repository = ProfilerRepository.of(store.engine)
    name = f"bench-{every_ms}-{time.time_ns()}"
    session = repository.start(
        name,
        sampling_frequency_ms=every_ms,
        enable_bandwidth_profiling=True,
        enable_nvlink_profiling=True,
        started_by=None,
        now=utc_now(),
    )
    sampler = start_sampler(
        store.engine, f"bench-node-{every_ms}", None, settings=SamplerSettings(poll_seconds=0.05)
    )
    if sampler is None:
        raise SystemExit("GREY_PROFILER=off: no sampler runs in this process")
    time.sleep(seconds)
    repository.stop(name, utc_now())
    sampler.stop()
    frames = repository.frames(session.session_id, limit=1_000_000)
    gaps = [(b.at - a.at).total_seconds() * 1000 for a, b in itertools.pairwise(frames)]
    if len(gaps) < 2:
        return f"asked {every_ms:>5} ms: {len(frames)} frames in {seconds:.0f} s (too few to measure)"
    cuts = statistics.quantiles(gaps, n=20)
    median = statistics.median(gaps)
    return (
        f"asked {every_ms:>5} ms: {len(frames):>4} frames in {seconds:.0f} s; achieved gap median "
        f"{median:.1f} ms (x{median / every_ms:.3f}), p5 {cuts[0]:.1f}, p95 {cuts[-1]:.1f} "
        f"[{frames[-1].payload['gpu_source']} GPUs]"
    )


def main() -> None:
    parser = argparse.ArgumentParser(prog="bench.profiler", description=__doc__)
    parser.add_argument("store_url", nargs="?", help="default: a fresh SQLite file")
    parser.add_argument("--frames", type=int, default=30, help="frames to wait for per period (min 5 s)")
    args = parser.parse_args()
    url = args.store_url or f"sqlite:///{Path(tempfile.mkdtemp(prefix='grey-bench-')) / 'grey.db'}"
    with Store.open(url) as store:
        for every_ms in PERIODS_MS:
            print(measure(store, every_ms, max(5.0, args.frames * every_ms / 1000)), flush=True)


if __name__ == "__main__":
    main()
