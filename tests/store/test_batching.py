"""runtime.store.batching.Batcher: callers that arrive together share one flush."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from runtime.store.batching import Batcher


class SlowFlush:
    """Records each batch; the first flush says it started, then waits to be released."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.started = threading.Event()
        self.all_queued = threading.Event()

    def __call__(self, items: list[int]) -> list[object]:
        if not self.batches:
            self.started.set()
            self.all_queued.wait(5)
        self.batches.append(items)
        return [ValueError(f"odd {i}") if i % 2 else i * 10 for i in items]


def test_callers_arriving_during_a_flush_share_the_next_one_and_get_their_own_outcome() -> None:
    flush = SlowFlush()
    batcher: Batcher[int, int] = Batcher(flush)

    def call(item: int) -> object:
        try:
            return batcher.run(item)
        except ValueError as error:
            return str(error)

    with ThreadPoolExecutor(8) as pool:
        first = pool.submit(call, 0)
        assert flush.started.wait(5)  # the first caller is the leader, inside its flush
        rest = [pool.submit(call, item) for item in range(1, 8)]
        deadline = time.monotonic() + 5
        while len(batcher._queue) < 7 and time.monotonic() < deadline:
            time.sleep(0.001)
        flush.all_queued.set()
        outcomes = [first.result(5)] + [future.result(5) for future in rest]

    assert outcomes == [0, "odd 1", 20, "odd 3", 40, "odd 5", 60, "odd 7"]
    assert flush.batches[0] == [0]
    assert sorted(i for batch in flush.batches[1:] for i in batch) == list(range(1, 8))
    assert flush.batches[1:] == [[1, 2, 3, 4, 5, 6, 7]]  # the seven waiting shared one flush


def test_a_flush_that_raises_reaches_every_caller_of_its_batch() -> None:
    def broken(items: list[int]) -> list[int]:
        raise ConnectionError("broker gone")

    batcher: Batcher[int, int] = Batcher(broken)
    with pytest.raises(ConnectionError, match="broker gone"):
        batcher.run(1)


def test_a_lone_caller_is_flushed_at_once_in_its_own_thread() -> None:
    flushed: list[tuple[list[str], threading.Thread]] = []

    def flush(items: list[str]) -> list[str]:
        flushed.append((items, threading.current_thread()))
        return [item.upper() for item in items]

    batcher: Batcher[str, str] = Batcher(flush)
    assert batcher.run("a") == "A"
    assert flushed == [(["a"], threading.current_thread())]  # no timer, no other thread
