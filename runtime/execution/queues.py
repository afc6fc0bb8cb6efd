"""Priority design: one broker queue per (pool, priority), one actor per queue.

Dramatiq's `priority` actor option only orders messages a worker has already fetched
(its in-memory work queue); it never reorders what waits in Redis or RabbitMQ. So every
priority has its own queue (`cpu.critical` ... `cpu.low`, named by `runtime.config`), and
the actor bound to each queue carries the matching Dramatiq priority. A worker consumes
all four queues of its pool; whatever the consumers fetched is handed to worker threads
most urgent first. A critical task behind any backlog of normal ones therefore waits at
most for the tasks already holding worker threads.
"""

from __future__ import annotations

from runtime.config import POOLS, PRIORITIES, queue_name

#: Dramatiq priorities: lower runs first.
DRAMATIQ_PRIORITY = {priority: rank for rank, priority in enumerate(PRIORITIES)}

#: Idle poll ceiling per priority (ms) for polling brokers (Redis): urgent queues are
#: looked at more often, so a critical task is fetched within ~20 ms of its submit (each
#: idle poll is a Redis round trip: a worker's eight idle queues cost ~7% of a core).
#: On Redis an idle consumer waits this long on its queue's doorbell, which a send rings
#: (brokers/redis.py): this is then the longest wait, when the doorbell is not heard.
IDLE_POLL_MS = {"critical": 20, "high": 40, "normal": 100, "low": 100}

TASK_ACTOR = "grey_task"
BATCH_ITEM_ACTOR = "grey_batch_item"
CONTAINER_ACTOR = "grey_container"
#: Container tasks have queues of their own, consumed only by nodes whose probe ran one.
CONTAINER_SUFFIX = "containers"


def actor_name(kind: str, pool: str, priority: str) -> str:
    """e.g. `grey_task.cpu.critical`: one actor per queue, so Dramatiq knows its priority."""
    return f"{kind}.{pool}.{priority}"


def pool_queues(pool: str, priorities: tuple[str, ...] = PRIORITIES) -> list[str]:
    """The broker queues a worker of `pool` consumes, most urgent first."""
    return [queue_name(pool, priority) for priority in priorities]


def container_queue(pool: str, priority: str) -> str:
    """e.g. `cpu.normal.containers`: container tasks of a pool and priority."""
    return f"{queue_name(pool, priority)}.{CONTAINER_SUFFIX}"


def container_queues(pool: str, priorities: tuple[str, ...] = PRIORITIES) -> list[str]:
    """The container queues a worker of `pool` that can run containers also consumes."""
    return [container_queue(pool, priority) for priority in priorities]


def all_queues() -> list[str]:
    return [
        name
        for pool in POOLS
        for priority in PRIORITIES
        for name in (queue_name(pool, priority), container_queue(pool, priority))
    ]


def priority_of_queue(name: str) -> str:
    """`cpu.critical` (or its delay queue `cpu.critical.DQ`, or `cpu.critical.containers`)
    -> `critical`."""
    parts = name.split(".")
    if name.startswith(NODE_POOL_PREFIX) and len(parts) > 2 and parts[2] in DRAMATIQ_PRIORITY:
        return parts[2]  # node.<node_id>.<priority>
    return parts[1] if len(parts) > 1 and parts[1] in DRAMATIQ_PRIORITY else "normal"


#: A placement node's own queues (`node.<node_id>.<priority>`): tasks that must run in the
#: process holding that node's DRAM/GPU bytes (gswarm placement). The task's `pool` is
#: `node.<node_id>`, so `queue_name(pool, priority)` names the queue everywhere.
NODE_POOL_PREFIX = "node."


def node_pool(node_id: str) -> str:
    return f"{NODE_POOL_PREFIX}{node_id}"


def is_node_pool(pool: str) -> bool:
    return pool.startswith(NODE_POOL_PREFIX)


def node_of_pool(pool: str) -> str:
    return pool[len(NODE_POOL_PREFIX) :]


def node_queues(node_id: str, priorities: tuple[str, ...] = PRIORITIES) -> list[str]:
    """The queues a placement node consumes, most urgent first."""
    return [queue_name(node_pool(node_id), priority) for priority in priorities]
