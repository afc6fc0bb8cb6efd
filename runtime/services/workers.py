"""Worker nodes as CloudAI shows them: total, allocated and available resources, and what runs.

Read from the store, never from a process's memory, so every gateway process answers the
same. `allocated` is the sum of the requests of the tasks the store says are `running` on
the node: a worker claims a task (pending -> running) only while its `ResourceGate`
holds the request, and records the outcome before releasing it, so what the store shows
is never more than the node holds. A node that dies stops heartbeating, the reaper puts
its running tasks back to pending, and its allocation drops with them.

Each view is computed from one read of the nodes and one of the running tasks;
`available` is `total - allocated`, computed in decimal (to the micro-unit) so that
`allocated + available == total` holds for the figures shown.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from runtime.execution.nodes import ACTIVE, Request
from runtime.store import NodeRecord, Store, TaskRecord
from runtime.store.coltypes import utc_now
from runtime.store.records import RUNNING, TASK_STATUSES

__all__ = [
    "ClusterTotals",
    "Resources",
    "WorkerNotFound",
    "WorkerView",
    "cluster_totals",
    "get_worker",
    "list_workers",
]

#: Pools whose workers are not CloudAI workers (they run no container tasks).
UNLISTED_POOLS = frozenset({"tee"})

#: A worker marked down stays listed (inactive) this long after its last heartbeat; the
#: embedded workers of `grey serve` get a new node id at every start.
DOWN_VISIBLE = timedelta(hours=1)
#: Figures are shown to the micro-unit (cores, GB, GPUs).
_QUANTUM = Decimal("0.000001")


class WorkerNotFound(LookupError):
    """No worker node of that id (a gateway node's id is not a worker's either)."""

    def __init__(self, node_id: str) -> None:
        super().__init__(f"Worker {node_id} does not exist")
        self.node_id = node_id


def _dec(value: Any) -> Decimal:
    return Decimal(str(float(value or 0))).quantize(_QUANTUM)


@dataclass(frozen=True, slots=True)
class Resources:
    """Cores, memory GB, storage GB and GPUs (CloudAI's units)."""

    cpu: float = 0.0
    memory_gb: float = 0.0
    storage_gb: float = 0.0
    gpu: float = 0.0

    @classmethod
    def _of(cls, figures: tuple[Decimal, Decimal, Decimal, Decimal]) -> Resources:
        return cls(*(float(figure) for figure in figures))

    def _decimals(self) -> tuple[Decimal, Decimal, Decimal, Decimal]:
        return (_dec(self.cpu), _dec(self.memory_gb), _dec(self.storage_gb), _dec(self.gpu))

    def __add__(self, other: Resources) -> Resources:
        return Resources._of(_add(self._decimals(), other._decimals()))

    def __sub__(self, other: Resources) -> Resources:
        mine, theirs = self._decimals(), other._decimals()
        return Resources._of(
            (mine[0] - theirs[0], mine[1] - theirs[1], mine[2] - theirs[2], mine[3] - theirs[3])
        )

    def as_dict(self) -> dict[str, float]:
        return {"cpu": self.cpu, "memory_gb": self.memory_gb, "storage_gb": self.storage_gb, "gpu": self.gpu}


def _add(
    a: tuple[Decimal, Decimal, Decimal, Decimal], b: tuple[Decimal, Decimal, Decimal, Decimal]
) -> tuple[Decimal, Decimal, Decimal, Decimal]:
    return (a[0] + b[0], a[1] + b[1], a[2] + b[2], a[3] + b[3])


def requested(task: TaskRecord) -> Resources:
    """What a running task holds on its node: the request its worker's gate holds."""
    request = Request.of(task.resources)
    return Resources(request.cpu, request.memory_gb, request.storage_gb, float(request.gpu))


def node_total(node: NodeRecord) -> Resources:
    """The node's capacity as its worker's gate has it (`info.capacity`, refreshed at each
    heartbeat), else the machine figures it registered with."""
    capacity: Mapping[str, Any] = (node.info or {}).get("capacity") or {}
    resources = node.resources or {}
    return Resources(
        cpu=float(capacity.get("cpu_cores", resources.get("cpu_cores", 0.0)) or 0.0),
        memory_gb=float(capacity.get("memory_gb", resources.get("memory_gb", 0.0)) or 0.0),
        storage_gb=float(capacity.get("storage_gb", resources.get("storage_gb", 0.0)) or 0.0),
        gpu=float(capacity.get("gpus", resources.get("gpus", 0)) or 0),
    )


@dataclass(frozen=True, slots=True)
class WorkerView:
    node_id: str
    address: str
    pool: str | None
    is_active: bool
    last_heartbeat: datetime | None
    registered_at: datetime
    total: Resources
    allocated: Resources
    available: Resources
    containers: bool  # its probe ran a container at registration
    containers_reason: str | None  # why not, when it did not
    running_tasks: list[TaskRecord]


def _sum(items: Iterable[Resources]) -> Resources:
    total = (Decimal(0), Decimal(0), Decimal(0), Decimal(0))
    for item in items:
        total = _add(total, item._decimals())
    return Resources._of(total)


def worker_view(node: NodeRecord, running: list[TaskRecord]) -> WorkerView:
    """One worker from its row and the tasks running on it (batches excluded: their items
    hold the gate one at a time, wherever they run, not the batch row)."""
    held = [task for task in running if task.type != "batch"]
    total = node_total(node)
    allocated = _sum(requested(task) for task in held)
    info = node.info or {}
    return WorkerView(
        node_id=node.node_id,
        address=node.address,
        pool=node.pool,
        is_active=node.status == ACTIVE,
        last_heartbeat=node.last_heartbeat,
        registered_at=node.started_at,
        total=total,
        allocated=allocated,
        available=total - allocated,
        containers=bool(info.get("containers", False)),
        containers_reason=info.get("containers_reason"),
        running_tasks=running,
    )


def _listed(node: NodeRecord, now: datetime) -> bool:
    # TEE pools never take CloudAI's tasks, and the embedded `grey serve` runs one beside its
    # cpu pool on the same machine: listing it would count the machine's memory twice.
    if node.role != "worker" or node.pool in UNLISTED_POOLS:
        return False
    if node.status != "down":
        return True
    seen = node.last_heartbeat or node.started_at
    return now - seen <= DOWN_VISIBLE


def _running_by_node(store: Store) -> dict[str, list[TaskRecord]]:
    by_node: dict[str, list[TaskRecord]] = defaultdict(list)
    for task in store.scheduling.unfinished(statuses=(RUNNING,)):
        if task.executed_on is not None:
            by_node[task.executed_on].append(task)
    return by_node


def list_workers(store: Store) -> list[WorkerView]:
    """Worker nodes, newest first (down ones for an hour after their last heartbeat)."""
    now = utc_now()
    nodes = [node for node in store.nodes.list(role="worker") if _listed(node, now)]
    running = _running_by_node(store)
    nodes.sort(key=lambda node: (node.started_at, node.node_id), reverse=True)
    return [worker_view(node, running.get(node.node_id, [])) for node in nodes]


def get_worker(store: Store, node_id: str) -> WorkerView:
    node = store.nodes.get(node_id)
    if node is None or node.role != "worker" or node.pool in UNLISTED_POOLS:
        raise WorkerNotFound(node_id)
    return worker_view(node, store.scheduling.running_on(node_id))


@dataclass(frozen=True, slots=True)
class ClusterTotals:
    """Sums over the active workers (a node that is down offers nothing), and task counts
    per store status (pending, running, completed, failed, cancelled, timeout)."""

    total_workers: int
    active_workers: int
    total: Resources
    allocated: Resources
    available: Resources
    tasks_by_status: dict[str, int]

    @property
    def total_tasks(self) -> int:
        return sum(self.tasks_by_status.values())


def totals_of(workers: list[WorkerView], tasks_by_status: Mapping[str, int]) -> ClusterTotals:
    active = [worker for worker in workers if worker.is_active]
    return ClusterTotals(
        total_workers=len(workers),
        active_workers=len(active),
        total=_sum(worker.total for worker in active),
        allocated=_sum(worker.allocated for worker in active),
        available=_sum(worker.available for worker in active),
        tasks_by_status={status: int(tasks_by_status.get(status, 0)) for status in TASK_STATUSES},
    )


def cluster_totals(store: Store, tenant_id: str | None = None) -> ClusterTotals:
    """The cluster's workers summed, and its tasks counted (a tenant's only, if given)."""
    return totals_of(list_workers(store), store.figures.count_by_status(tenant_id))
