"""The routing benchmark's yardsticks: the online bound A0 and the warm-up split are computed
right, so the table that says where 0.90 is reachable can be trusted."""

from __future__ import annotations

import pytest

from bench.routing import (
    LFU,
    a0_expected,
    a0_hits,
    belady_hits,
    rate,
    router_hits,
    static_share,
    zipf_law,
    zipf_trace,
)


def test_a0_simulated_matches_its_closed_form() -> None:
    trace = zipf_trace(32, 40000, 1.1, seed=3)
    simulated = rate(a0_hits(trace, 16), 1000)
    assert simulated == pytest.approx(a0_expected(zipf_law(32, 1.1), 16), abs=0.01)


def test_belady_is_never_below_the_online_policies_on_the_same_trace() -> None:
    trace = zipf_trace(24, 5000, 1.0, seed=1)
    belady = sum(belady_hits(trace.requests, 8))
    assert belady >= sum(a0_hits(trace, 8))
    assert belady >= sum(router_hits(trace.requests, 24, 2, 4, LFU))


def test_a0_bound_lies_below_the_top_c_mass() -> None:
    law = zipf_law(32, 1.3)
    assert a0_expected(law, 16) < float(law[:16].sum())
    assert a0_expected(law, 32) == 1.0


def test_static_share_counts_the_most_asked() -> None:
    assert static_share(["a", "a", "b", "c"], 1) == 0.5
    assert static_share(["a", "a", "b", "c"], 2) == 0.75


def test_rate_after_a_warm_up_skips_the_first_requests() -> None:
    hits = [False, False, True, True]
    assert rate(hits, 0) == 0.5
    assert rate(hits, 2) == 1.0
