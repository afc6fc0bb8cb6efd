"""What cluster health says beyond counting: who coordinates, and whether work can run.

Pure functions of what the store holds (nodes, the coordinator lease, pending tasks per
pool) and of whether the broker answered; `handlers/grey/cluster.py` reads those and puts
the answer in the API's words.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from runtime.store import LeaseRecord, NodeRecord

ACTIVE, DOWN = "active", "down"


@dataclass(frozen=True, slots=True)
class Coordinator:
    """The coordinator lease as health reports it (`consensus`)."""

    leader: str | None  # the holder, or the last holder while expired; None: never taken
    term: int  # 0: never taken
    lease_expires_at: datetime | None
    live: bool  # the lease runs and its holder is not marked down
    members: int  # nodes competing for it: every node not down


def coordinator(lease: LeaseRecord | None, nodes: list[NodeRecord], now: datetime) -> Coordinator:
    """The coordinator of the cluster at `now`: the lease holder is the leader while its
    lease runs (it renews it at every heartbeat) and its node is not down; a holder that
    died stops renewing and another node takes the lease over with term + 1 once it has
    expired (runtime.execution.reconciler)."""
    members = sum(1 for node in nodes if node.status != DOWN)
    if lease is None:
        return Coordinator(None, 0, None, False, members)
    status = {node.node_id: node.status for node in nodes}
    live = lease.expires_at > now and status.get(lease.holder) != DOWN
    return Coordinator(lease.holder, lease.term, lease.expires_at, live, members)


def problems(nodes: list[NodeRecord], pending: Mapping[str, int], broker_reachable: bool) -> list[str]:
    """Why work cannot run now (empty: it can): the broker unreachable, no active node, or
    a pool with pending tasks and no active worker (`pending`: pending tasks per pool)."""
    found = [] if broker_reachable else ["broker unreachable"]
    if not any(node.status == ACTIVE for node in nodes):
        found.append("no active node")
    for pool, count in sorted(pending.items()):
        workers = [n for n in nodes if n.role == "worker" and n.pool == pool and n.status == ACTIVE]
        if count > 0 and not workers:
            found.append(f"pool {pool}: {count} pending tasks and no active worker")
    return found
