"""What the dashboard's pages read: JSON views over runtime.services, each for one principal.

Every function here is blocking (the app runs it on the blocking pool) and takes the
session's tenant, so a page sees exactly what the API shows that tenant: tasks through the
store's tenant-keyed listing and lookups, models and services through gswarm's tenant-keyed
services. Nodes, workers and queue depths are the cluster's (as `GET /v1/cluster/nodes`
shows them to any `cluster:read` caller); which tasks run on a worker is counted, not named.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from handlers.grey.views import task_view
from handlers.orchestrator.views import agent_executions
from runtime.config import POOLS, PRIORITIES
from runtime.services import Services, model_services, placement
from runtime.services.workers import list_workers
from runtime.store import TaskRecord
from runtime.store.errors import InvalidCursor
from runtime.store.records import RUNNING, TASK_STATUSES

PAGE_SIZE = 50
MAX_PAGE_SIZE = 200


class BadRequest(ValueError):
    """A filter or cursor the dashboard cannot use: 400 with this message."""


class NotFound(LookupError):
    """No such output file."""


def _one_of(value: str | None, allowed: tuple[str, ...], name: str) -> str | None:
    if value is None or value == "":
        return None
    if value not in allowed:
        raise BadRequest(f"{name} must be one of {', '.join(allowed)}")
    return value


@dataclass(frozen=True, slots=True)
class TaskQuery:
    statuses: tuple[str, ...] = ()
    type: str | None = None
    labels: tuple[tuple[str, str], ...] = ()
    priority: str | None = None
    pool: str | None = None
    cursor: str | None = None
    limit: int = PAGE_SIZE

    @classmethod
    def parse(cls, params: Mapping[str, str], labels: list[str]) -> TaskQuery:
        statuses = tuple(s for s in (params.get("status") or "").split(",") if s)
        for status in statuses:
            _one_of(status, TASK_STATUSES, "status")
        pairs = []
        for label in labels:
            key, sep, value = label.partition("=")
            if not sep or not key:
                raise BadRequest("label must be key=value")
            pairs.append((key, value))
        try:
            limit = int(params.get("limit") or PAGE_SIZE)
        except ValueError:
            raise BadRequest("limit must be an integer") from None
        if not 1 <= limit <= MAX_PAGE_SIZE:
            raise BadRequest(f"limit must be 1-{MAX_PAGE_SIZE}")
        return cls(
            statuses=statuses,
            type=params.get("type") or None,
            labels=tuple(pairs),
            priority=_one_of(params.get("priority"), PRIORITIES, "priority"),
            pool=_one_of(params.get("pool"), POOLS, "pool"),
            cursor=params.get("cursor") or None,
            limit=limit,
        )


def task_row(task: TaskRecord) -> dict[str, Any]:
    """A task as the list shows it (status in Grey's API words)."""
    return {
        "task_id": task.task_id,
        "type": task.type,
        "status": task.status,
        "priority": task.priority,
        "pool": task.pool,
        "api": task.api,
        "progress": task.progress,
        "labels": task.labels,
        "created_at": task.created_at.isoformat(),
        "executed_on": task.executed_on,
    }


def list_tasks(services: Services, tenant_id: str, query: TaskQuery) -> dict[str, Any]:
    """A page of the tenant's tasks, newest first, through the store's keyset listing (the
    one `GET /v1/tasks` uses, priority and pool filtered in the same query: flat at any
    depth of history)."""
    try:
        page = services.store.tasks.list(
            tenant_id,
            statuses=query.statuses or None,
            type=query.type,
            labels=dict(query.labels),
            priority=query.priority,
            pool=query.pool,
            limit=query.limit,
            cursor=query.cursor,
        )
    except InvalidCursor:
        raise BadRequest("cursor is not one the dashboard issued") from None
    return {
        "tasks": [task_row(task) for task in page.tasks],
        "next_cursor": page.next_cursor,
        "has_more": page.has_more,
        "total": page.total,
        "total_exact": page.total_exact,
    }


def _proof(services: Services, tenant_id: str, task: TaskRecord) -> dict[str, Any] | None:
    if not task.proof_available:
        return None
    record = services.store.tee.proof(tenant_id, task.task_id)
    if record is None:
        return None
    verdict = services.runtime.tee.check_proof(services.runtime.tee.proof(record, task.result))
    return {
        "platform": record.platform,
        "debug": record.debug,
        "node_id": record.node_id,
        "mrenclave": record.mrenclave,
        "mrsigner": record.mrsigner,
        "receipt": record.receipt,
        "verified": verdict.valid,
        "verification_error": verdict.reason,
    }


def task_detail(services: Services, tenant_id: str, task: TaskRecord) -> dict[str, Any]:
    """The task (found for the tenant by runtime.services.tasks.find) in Grey's API shape,
    its events, steps / agent executions and TEE proof."""
    events = services.store.tasks.events_after(task.task_id, 0)
    steps = (
        [item.model_dump(mode="json") for item in agent_executions(task)] if task.type == "pipeline" else []
    )
    return {
        "task": task_view(task).model_dump(mode="json"),
        "api": task.api,
        "events": [
            {
                "seq": event.seq,
                "status": event.status,
                "progress": event.progress,
                "message": event.message,
                "at": event.at.isoformat(),
            }
            for event in events
        ],
        "steps": steps,
        "proof": _proof(services, tenant_id, task),
        "cancellable": not task.finished,
    }


def completions(services: Services, tenant_id: str, task_ids: list[str]) -> dict[str, dict[str, Any]]:
    """Submit and end times of the tenant's tasks just reported ended (latency chart): one
    primary-key read each, made only when a completion event arrives."""
    found = {}
    for task_id in task_ids:
        task = services.store.tasks.get(tenant_id, task_id)
        if task is not None and task.completed_at is not None:
            found[task_id] = {
                "created_at": task.created_at.timestamp(),
                "completed_at": task.completed_at.timestamp(),
            }
    return found


# -- cluster ------------------------------------------------------------------------------------


def cluster(services: Services) -> dict[str, Any]:
    """Nodes, workers (total / allocated / available, GPUs), and pending tasks per queue.

    A node's and a worker's running count are one figure: the tasks the store records as
    running on it (one read for both tables). What the node said at its last heartbeat
    (`GET /v1/cluster/nodes`' `tasks_running`, up to a heartbeat old) is `tasks_reported`."""
    nodes = services.store.nodes.list()
    status = {node.node_id: node.status for node in nodes}
    workers = list_workers(services.store)
    running = Counter(
        task.executed_on
        for task in services.store.scheduling.unfinished(statuses=(RUNNING,))
        if task.executed_on is not None
    )
    queues = services.store.figures.pending_by_queue()
    return {
        "nodes": [
            {
                "node_id": node.node_id,
                "role": node.role,
                "status": node.status,
                "pool": node.pool,
                "address": node.address,
                "last_heartbeat": node.last_heartbeat.isoformat() if node.last_heartbeat else None,
                "tasks_running": running[node.node_id],
                "tasks_reported": node.tasks_running,
                "is_leader": node.is_leader,
                "gpus": _gpus(node.resources, node.info),
            }
            for node in nodes
        ],
        "workers": [
            {
                "worker_id": worker.node_id,
                "pool": worker.pool,
                "state": status.get(worker.node_id, "down"),
                "alive": status.get(worker.node_id, "down") != "down",
                "last_heartbeat": worker.last_heartbeat.isoformat() if worker.last_heartbeat else None,
                "total": worker.total.as_dict(),
                "allocated": worker.allocated.as_dict(),
                "available": worker.available.as_dict(),
                "running_tasks": running[worker.node_id],
            }
            for worker in workers
        ],
        "queues": [
            {"pool": pool, "priority": priority, "pending": queues.get((pool, priority), 0)}
            for pool in POOLS
            for priority in PRIORITIES
        ],
    }


def _gpus(resources: Mapping[str, Any], info: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The node's GPUs: the heartbeat's fresh figures (`info.gpu`) over what it registered."""
    devices = [dict(d) for d in resources.get("gpu_devices") or [] if isinstance(d, Mapping)]
    fresh = (info or {}).get("gpu")
    if isinstance(fresh, Mapping):
        devices = [dict(fresh)] + [d for d in devices if d.get("index") != fresh.get("index")]
    return devices


# -- models and data (gswarm) ------------------------------------------------------------------


def models(services: Services, tenant_id: str) -> dict[str, Any]:
    """The tenant's models with their locations, chunks, copies in flight and services."""
    views, _total = placement.list_model_views_sync(services, tenant_id, per_page=500)
    chunks = placement.list_chunks_sync(services, tenant_id)
    moves = [
        {"kind": "model", "name": view["model_name"], **location}
        for view in views
        for location in view["location_details"]
        if location["status"] not in ("ready", "available")
    ]
    replicas = [model_services.view(record) for record in model_services.list_sync(services, tenant_id)]
    return {
        "models": [
            {
                "model_name": view["model_name"],
                "model_type": view["model_type"],
                "model_size": view["model_size"],
                "status": view["status"],
                "locations": view["location_details"],
            }
            for view in views
        ],
        "chunks": chunks,
        "moves": moves,
        "services": [{**item, "created_at": str(item["created_at"])} for item in replicas],
    }


# -- capacity ----------------------------------------------------------------------------------

#: Files the capacity page serves: the outputs of `grey simulate` / `grey plan` (--out),
#: `grey loadtest`, `grey calibrate` (fidelity) and the benches' plots.
SERVED = {".png": "image/png", ".json": "application/json"}


def capacity_runs(root: Path) -> list[dict[str, Any]]:
    """Each output directory under `root` with PNG or JSON files, newest first, and the
    fidelity table of any `fidelity.json`."""
    if not root.is_dir():
        return []
    runs: dict[Path, list[Path]] = {}
    for path in root.rglob("*"):
        if path.suffix in SERVED and path.is_file() and not path.is_symlink():
            runs.setdefault(path.parent, []).append(path)
    found = []
    for folder, files in runs.items():
        newest = max(path.stat().st_mtime for path in files)
        entry: dict[str, Any] = {
            "run": str(folder.relative_to(root)),
            "modified": newest,
            "images": sorted(str(p.relative_to(root)) for p in files if p.suffix == ".png"),
            "json": sorted(str(p.relative_to(root)) for p in files if p.suffix == ".json"),
            "fidelity": None,
        }
        fidelity = folder / "fidelity.json"
        if fidelity in files:
            try:
                entry["fidelity"] = json.loads(fidelity.read_text())
            except (OSError, ValueError):
                entry["fidelity"] = None
        found.append(entry)
    found.sort(key=lambda entry: entry["modified"], reverse=True)
    return found


def capacity_file(root: Path, relative: str) -> tuple[Path, str]:
    """The file to serve; NotFound for anything but a PNG or JSON file under `root`."""
    base = root.resolve()
    path = (base / relative).resolve()
    if base not in path.parents or path.suffix not in SERVED or not path.is_file():
        raise NotFound(f"No output file {relative}")
    return path, SERVED[path.suffix]
