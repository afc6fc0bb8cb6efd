"""Quotas set with PATCH /v1/governance/quotas hold at submit, over REST and gRPC alike:
`max_queue_depth` (503 `queue_full`) and `submit_rate_per_second` (429 `rate_limited`),
per tenant, and a tenant racing concurrent submits cannot get past them.

No worker runs here: submitted tasks stay pending, so the counts are exact.
"""

from __future__ import annotations

import asyncio
import math
import time
from typing import Any

import httpx

from runtime.services import Services
from tests.support.platform import make_key
from tests.support.transports import GrpcCaller, Outcome, RestCaller

ECHO: dict[str, Any] = {"type": "stateless", "payload": {"function": "echo", "data": {"k": "v"}}}
#: What each transport answers for the two quota errors (HTTP status / gRPC status value).
QUEUE_FULL = {"rest": 503, "grpc": 14}  # UNAVAILABLE
RATE_LIMITED = {"rest": 429, "grpc": 8}  # RESOURCE_EXHAUSTED


async def set_quotas(rest: httpx.AsyncClient, key: str, **quotas: int) -> None:
    response = await rest.patch(
        "/v1/governance/quotas", json={**quotas, "reason": "test"}, headers={"X-API-Key": key}
    )
    assert response.status_code == 200, response.text


async def submit_all(call: RestCaller | GrpcCaller, key: str, count: int) -> list[Outcome]:
    """`count` submits at once: a tenant racing its own limits."""
    return list(await asyncio.gather(*(call("submitTask", key, **ECHO) for _ in range(count))))


async def test_max_queue_depth_refuses_with_503_queue_full_until_a_task_finishes(
    call: RestCaller | GrpcCaller, rest: httpx.AsyncClient, key: str, services: Services
) -> None:
    await set_quotas(rest, key, max_queue_depth=2)
    first = [await call("submitTask", key, **ECHO) for _ in range(2)]
    assert all(outcome.ok for outcome in first)
    refused = await call("submitTask", key, **ECHO)
    assert (refused.code, refused.status) == ("queue_full", QUEUE_FULL[call.name])
    assert services.store.figures.count_by_status("acme")["pending"] == 2  # nothing stored

    other = make_key(services, "globex")  # another tenant's queue is its own
    assert (await call("submitTask", other, **ECHO)).ok

    assert (await call("cancelTask", key, task_id=first[0].data["task_id"])).ok
    assert (await call("submitTask", key, **ECHO)).ok  # room again
    assert not (await call("submitTask", key, **ECHO)).ok


async def test_racing_submits_never_exceed_max_queue_depth(
    call: RestCaller | GrpcCaller, rest: httpx.AsyncClient, key: str, services: Services
) -> None:
    await set_quotas(rest, key, max_queue_depth=5)
    outcomes = await submit_all(call, key, 20)
    accepted = [outcome for outcome in outcomes if outcome.ok]
    assert len(accepted) == 5  # the store counts in the transaction that inserts: exact
    assert {outcome.code for outcome in outcomes if not outcome.ok} == {"queue_full"}
    assert services.store.figures.count_by_status("acme")["pending"] == 5


async def test_queue_full_over_rest_says_retry_after_and_the_limit(rest: httpx.AsyncClient, key: str) -> None:
    await set_quotas(rest, key, max_queue_depth=0)
    response = await rest.post("/v1/tasks", json=ECHO, headers={"X-API-Key": key})
    assert response.status_code == 503
    error = response.json()["error"]
    assert error["code"] == "queue_full"
    assert error["details"]["limit"] == 0 and error["details"]["quota"] == "max_queue_depth"
    assert int(response.headers["retry-after"]) >= 1


async def test_submit_rate_per_second_answers_429_and_leaves_other_tenants_alone(
    call: RestCaller | GrpcCaller, rest: httpx.AsyncClient, key: str, services: Services
) -> None:
    limit = 3
    await set_quotas(rest, key, submit_rate_per_second=limit)
    start = time.monotonic()
    outcomes = await submit_all(call, key, 12)
    elapsed = time.monotonic() - start
    accepted = sum(outcome.ok for outcome in outcomes)
    # A one-second sliding window: `limit` per second, whatever the machine's speed.
    assert limit <= accepted <= limit * (math.ceil(elapsed) + 1)
    refused = [outcome for outcome in outcomes if not outcome.ok]
    assert refused and {(o.code, o.status) for o in refused} == {("rate_limited", RATE_LIMITED[call.name])}
    assert services.store.figures.count_by_status("acme")["pending"] == accepted  # refused: not stored

    other = make_key(services, "globex")
    assert all(outcome.ok for outcome in await submit_all(call, other, 5))


async def test_rate_limited_over_rest_carries_retry_after(rest: httpx.AsyncClient, key: str) -> None:
    await set_quotas(rest, key, submit_rate_per_second=0)  # 0: the tenant may not submit
    response = await rest.post("/v1/tasks", json=ECHO, headers={"X-API-Key": key})
    assert response.status_code == 429
    error = response.json()["error"]
    assert error["code"] == "rate_limited" and error["details"]["bucket"] == "submit_rate_per_second"
    assert int(response.headers["retry-after"]) >= 1
    assert response.headers["x-ratelimit-remaining"] == "0"

    await set_quotas(rest, key, submit_rate_per_second=10)  # applied at once on this gateway
    again = await rest.post("/v1/tasks", json=ECHO, headers={"X-API-Key": key})
    assert again.status_code == 201, again.text
