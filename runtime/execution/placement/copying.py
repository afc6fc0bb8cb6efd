"""The one copy loop every transfer uses: source -> sink in large blocks, read in place.

A sink that can take the whole source at once does (`Sink.adopt`: a local file into DRAM is
mapped and locked, no block copy) unless a bandwidth limit asks for the throttled loop.

Each block is read straight into the sink's window (`readinto`: for disk -> DRAM the file's
bytes land in the final buffer, no intermediate copy), hashed when asked (SHA-256),
throttled when a bandwidth limit is set (the copy never runs ahead of `limit` bytes/s
since its start), and reported (progress, cancel/timeout checks) at most every
`REPORT_SECONDS`.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass

from runtime.execution.placement.devices import Sink, Source
from runtime.execution.placement.errors import NetworkFailure

REPORT_SECONDS = 0.25
#: Under a bandwidth limit, blocks are ~1/20 s of it, so the throttle is smooth.
THROTTLE_SLICES_PER_SECOND = 20


@dataclass(frozen=True, slots=True)
class Copied:
    size: int
    seconds: float
    sha256: str | None

    @property
    def bytes_per_second(self) -> float:
        return self.size / self.seconds if self.seconds > 0 else float(self.size)


def _throttled(report: Callable[[int], None] | None) -> Callable[[int], None] | None:
    """`report`, called at most every REPORT_SECONDS."""
    if report is None:
        return None
    last = [time.perf_counter()]

    def throttled(done: int) -> None:
        now = time.perf_counter()
        if now - last[0] >= REPORT_SECONDS:
            report(done)
            last[0] = now

    return throttled


def pump(
    source: Source,
    sink: Sink,
    size: int,
    *,
    block: int,
    bandwidth_limit: float | None = None,
    hash_bytes: bool = False,
    report: Callable[[int], None] | None = None,
) -> Copied:
    """Copies `size` bytes; raises NetworkFailure if the source ends early. The caller
    commits or aborts the sink."""
    if bandwidth_limit is not None and bandwidth_limit > 0:
        block = max(4096, min(block, int(bandwidth_limit / THROTTLE_SLICES_PER_SECOND)))
    hasher = hashlib.sha256() if hash_bytes else None
    started = time.perf_counter()
    if not bandwidth_limit:
        adopted = sink.adopt(source, _throttled(report))
        if adopted is not None:
            if hasher is not None:
                hasher.update(adopted)
            if report is not None:
                report(size)
            return Copied(size, time.perf_counter() - started, hasher.hexdigest() if hasher else None)
    last_report = started
    done = 0
    while done < size:
        n = min(block, size - done)
        window = sink.window(n)
        filled = 0
        while filled < n:
            got = source.readinto(window[filled:])
            if not got:
                raise NetworkFailure(f"the source ended after {done + filled} of {size} bytes")
            filled += got
        if hasher is not None:
            hasher.update(window)
        sink.advance(n)
        done += n
        now = time.perf_counter()
        if bandwidth_limit:
            ahead = done / bandwidth_limit - (now - started)
            if ahead > 0:
                time.sleep(ahead)
                now = time.perf_counter()
        if report is not None and (now - last_report >= REPORT_SECONDS or done == size):
            report(done)
            last_report = now
    seconds = time.perf_counter() - started
    return Copied(size, seconds, hasher.hexdigest() if hasher is not None else None)
