"""runtime.batching.Batcher: callers that arrive together share one flush."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from runtime.batching import Batcher


class SlowFlush:
    """Records each batch; the first flush waits until every caller has queued."""

    def __init__(self, callers: int) -> None:
        self.batches: list[list[int]] = []
        self.all_queued = threading.Event()
        self.callers = callers

    def __call__(self, items: list[int]) -> list[object]:
        if not self.batches:
            self.all_queued.wait(5)
        self.batches.append(items)
        return [ValueError(f"odd {i}") if i % 2 else i * 10 for i in items]


def test_callers_arriving_during_a_flush_share_the_next_one_and_get_their_own_outcome() -> None:
    flush = SlowFlush(callers=8)
    batcher: Batcher[int, int] = Batcher(flush)

    def call(item: int) -> object:
        try:
            return batcher.run(item)
        except ValueError as error:
            return str(error)

    with ThreadPoolExecutor(8) as pool:
        first = pool.submit(call, 0)
        time.sleep(0.05)  # the first caller is the leader, inside its flush
        rest = [pool.submit(call, item) for item in range(1, 8)]
        time.sleep(0.1)
        flush.all_queued.set()
        outcomes = [first.result(5)] + [future.result(5) for future in rest]

    assert outcomes == [0, "odd 1", 20, "odd 3", 40, "odd 5", 60, "odd 7"]
    assert flush.batches[0] == [0]
    assert sorted(i for batch in flush.batches[1:] for i in batch) == list(range(1, 8))
    assert len(flush.batches) < 8  # the seven waiting callers did not flush one by one


def test_a_flush_that_raises_reaches_every_caller_of_its_batch() -> None:
    def broken(items: list[int]) -> list[int]:
        raise ConnectionError("broker gone")

    batcher: Batcher[int, int] = Batcher(broken)
    with pytest.raises(ConnectionError, match="broker gone"):
        batcher.run(1)


def test_a_lone_caller_is_flushed_at_once() -> None:
    batcher: Batcher[str, str] = Batcher(lambda items: [item.upper() for item in items])
    started = time.perf_counter()
    assert batcher.run("a") == "A"
    assert time.perf_counter() - started < 0.05
