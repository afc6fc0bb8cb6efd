"""The coordinator as cluster health reports it (`consensus`): the node holding the lease
in the store, its term and expiry, whether it is live; and its takeover when it dies.

The test cluster heartbeats every 0.2 s with a 1 s timeout: the lease lasts 1 s, so a dead
holder is replaced within about 1.2 s (waited for with a generous deadline).
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from typing import Any

from tests.execution.conftest import Gateway


async def consensus(gateway: Gateway) -> dict[str, Any]:
    response = await gateway.client.get("/v1/cluster/health", headers=gateway.headers)
    assert response.status_code == 200, response.text
    return dict(response.json()["consensus"])


async def until_consensus(gateway: Gateway, wanted: Any, timeout: float = 20.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        seen = await consensus(gateway)
        if wanted(seen):
            return seen
        assert time.monotonic() < deadline, f"consensus still {seen}"
        await asyncio.sleep(0.05)


async def test_health_names_the_live_coordinator_and_the_one_that_takes_over(make_gateway: Any) -> None:
    gateways: list[Gateway] = [await make_gateway(), await make_gateway()]
    by_node = {g.services.node_id: g for g in gateways}
    first = await until_consensus(gateways[0], lambda seen: seen.get("leader_live") is True)
    holder, term = first["leader"], first["term"]
    assert holder in by_node and term >= 1
    assert first["quorum_satisfied"] is True and first["members"] == 2
    expires = datetime.fromisoformat(first["lease_expires_at"].replace("Z", "+00:00"))
    lease = gateways[0].services.runtime.coordinator()
    assert lease is not None and lease.holder == holder and expires <= lease.expires_at
    assert await consensus(gateways[1]) | {"lease_expires_at": None} == first | {"lease_expires_at": None}

    agent = by_node[holder].services.runtime.agent
    assert agent is not None
    agent.stop(mark_down=False)  # the holder dies: no release, no renewals, not marked down
    [survivor] = [node for node in by_node if node != holder]
    watcher = by_node[survivor]
    taken = await until_consensus(
        watcher, lambda seen: seen.get("leader") == survivor and seen["leader_live"]
    )
    assert taken["term"] == term + 1
    assert taken["quorum_satisfied"] is True


async def test_a_lapsed_lease_is_reported_not_live(make_gateway: Any) -> None:
    gateway: Gateway = await make_gateway()
    first = await until_consensus(gateway, lambda seen: seen.get("leader_live") is True)
    agent = gateway.services.runtime.agent
    assert agent is not None
    agent.stop(mark_down=False)  # the only node stops renewing: nobody can take over
    lapsed = await until_consensus(gateway, lambda seen: seen["leader_live"] is False)
    assert (lapsed["leader"], lapsed["term"]) == (first["leader"], first["term"])
    assert lapsed["quorum_satisfied"] is False
