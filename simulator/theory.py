"""Closed forms the twin is checked against (tests, docs): Erlang C, Pollaczek-Khinchine,
Cobham's non-preemptive priority formula, alternating-renewal availability."""

from __future__ import annotations

import math


def erlang_c(c: int, offered: float) -> float:
    """P(an arrival waits) in M/M/c with offered load a = lambda / mu (< c)."""
    if offered >= c:
        return 1.0
    term = 1.0
    total = 1.0  # sum_{k < c} a^k / k!, built up term by term to avoid factorials
    for k in range(1, c):
        term *= offered / k
        total += term
    last = term * offered / c * c / (c - offered)  # a^c / c! * c / (c - a)
    return last / (total + last)


def mmc_mean_wait(c: int, lam: float, mu: float) -> float:
    """Mean time in queue of M/M/c: C(c, a) / (c mu - lambda)."""
    return erlang_c(c, lam / mu) / (c * mu - lam)


def mmc_wait_quantile(c: int, lam: float, mu: float, q: float) -> float:
    """q-quantile of the M/M/c wait: P(W > t) = C e^{-(c mu - lambda) t}."""
    pw = erlang_c(c, lam / mu)
    if 1 - q >= pw:
        return 0.0
    return math.log(pw / (1 - q)) / (c * mu - lam)


def pk_mean_wait(lam: float, es: float, es2: float) -> float:
    """Pollaczek-Khinchine: mean wait in M/G/1 = lambda E[S^2] / (2 (1 - rho))."""
    rho = lam * es
    return lam * es2 / (2 * (1 - rho))


def cobham_waits(lams: list[float], es: list[float], es2: list[float]) -> list[float]:
    """Mean wait per class (highest priority first), one server, non-preemptive priority:
    W_k = W0 / ((1 - sigma_{k-1}) (1 - sigma_k)), W0 = sum lambda_i E[S_i^2] / 2."""
    w0 = sum(lam * m2 for lam, m2 in zip(lams, es2, strict=True)) / 2
    out = []
    sigma_prev = 0.0
    for lam, m in zip(lams, es, strict=True):
        sigma = sigma_prev + lam * m
        out.append(w0 / ((1 - sigma_prev) * (1 - sigma)))
        sigma_prev = sigma
    return out


def availability(mtbf: float, mttr: float) -> float:
    """Long-run fraction of time a node is up."""
    return mtbf / (mtbf + mttr)
