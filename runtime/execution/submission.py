"""Submit-time checks: what can never run is answered now, never left to fail or wait.

- the function named by `payload.function` exists and `payload.data` fits its input
  (pipelines: every step's function, and the data given; batches: every item);
- a named pipeline (`payload.pipeline`) is registered (else `InvalidPayload`) and
  available in this build (else `Unschedulable`, with the reason it was registered with);
- `stateful` tasks have a `state_key`;
- dependencies exist and are the tenant's (all three -> `InvalidPayload`);
- the pool the resources route to exists (GPU/TEE workers registered, or declared in the
  cluster config) and one of its nodes is big enough -> `Unschedulable`; a TEE task needs a
  tee node whose attestation is valid now (`nodes.tee_enabled`);
- a `container` task has an `image` and a `command`, positive cpu and memory; an active
  worker of its pool whose probe ran a container, and whose total resources (cpu, memory,
  storage, GPUs) cover the request, exists now -> else `Unschedulable`, saying which.

The checks that read the store (`SubmissionChecks`) run in the gateway's intake thread
(`intake.py`). Refusals are execution's own errors (`runtime.execution.errors`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from runtime.config import ClusterConfig, route_pool
from runtime.execution.containers.task import check_request, parse_payload
from runtime.execution.errors import InvalidPayload, Unschedulable
from runtime.execution.functions import InvalidInput, TaskFunction, function_names, get_function
from runtime.execution.nodes import Request
from runtime.execution.pipeline import PipelineUnavailable, UnknownPipeline, pipeline_names, plan_of
from runtime.execution.queues import is_node_pool, node_of_pool
from runtime.store import NewTask, NodeRecord, Store
from runtime.store.records import CONTAINER_TASK

MAX_BATCH_ITEMS = 10000


def _invalid(message: str, field: str, **details: Any) -> InvalidPayload:
    return InvalidPayload(message, field=field, **details)


def _function(name: Any, field: str) -> TaskFunction:
    function = get_function(name) if isinstance(name, str) else None
    if function is None:
        raise _invalid(
            f"unknown task function {name!r}; known: {', '.join(function_names())}",
            field,
            functions=function_names(),
        )
    return function


def _parse(function: TaskFunction, data: Any, field: str) -> None:
    try:
        function.parse(data)
    except InvalidInput as error:
        raise _invalid(str(error), f"{field}.{error.field}" if field else error.field) from None


def _check_pipeline(payload: dict[str, Any]) -> None:
    """Steps' functions exist and the data given fits the steps that receive it.

    A named pipeline (`payload.pipeline`): unknown -> InvalidPayload; registered as
    unavailable in this build -> Unschedulable (with its reason).
    """
    try:
        plan = plan_of(payload)
    except PipelineUnavailable as error:
        raise Unschedulable(str(error), pipeline=error.pipeline.name, reason=error.reason) from None
    except UnknownPipeline as error:
        raise _invalid(str(error), error.field, pipelines=pipeline_names()) from None
    except InvalidInput as error:
        raise _invalid(str(error), error.field) from None
    field = "payload.pipeline" if plan.named is not None else "payload.steps.function"
    for number, stage in enumerate(plan.stages):
        receives_data = number == 0 or plan.mode == "parallel"
        for step in stage:
            function = _function(step["function"], field)
            if plan.named is not None and receives_data:
                _parse(function, payload.get("data"), "payload")
            elif "data" in step and receives_data:
                _parse(function, step["data"], "payload.steps")


def check_payload(task_type: str, payload: dict[str, Any], state_key: str | None) -> TaskFunction | None:
    """Raises InvalidPayload for a payload that could never run (Unschedulable for a named
    pipeline this build cannot run); returns its function."""
    if task_type == "stateful" and not state_key:
        raise _invalid("stateful tasks need a state_key", "state_key")
    if task_type == CONTAINER_TASK:
        try:
            parse_payload(payload)
        except InvalidInput as error:
            raise _invalid(str(error), error.field) from None
        return None
    if task_type == "pipeline":
        _check_pipeline(payload)
        return None
    function = _function(payload.get("function") or "echo", "payload.function")
    if task_type == "batch":
        items = payload.get("items")
        if not isinstance(items, list) or len(items) > MAX_BATCH_ITEMS:
            message = f"a batch needs `items`: a list of at most {MAX_BATCH_ITEMS} inputs"
            raise _invalid(message, "payload.items")
        for index, item in enumerate(items):
            _parse(function, item, f"payload.items[{index}]")
        return function
    _parse(function, payload.get("data"), "payload")
    return function


def resources_for(resources: dict[str, Any], function: TaskFunction | None) -> dict[str, Any]:
    """A function registered for the gpu pool gets one GPU unless the task asks otherwise."""
    if function is not None and function.pool == "gpu" and "gpu" not in resources:
        return {**resources, "gpu": 1}
    return resources


def check_container_resources(resources: dict[str, Any]) -> None:
    """InvalidPayload for a container request no node could honour (cpu or memory <= 0)."""
    try:
        check_request(resources)
    except InvalidInput as error:
        raise _invalid(str(error), error.field) from None


def _fits(request: Request, capacity: dict[str, Any]) -> bool:
    return (
        request.cpu <= float(capacity.get("cpu_cores", request.cpu))
        and request.memory_gb <= float(capacity.get("memory_gb", request.memory_gb))
        and request.gpu <= int(capacity.get("gpus", request.gpu))
        and request.storage_gb <= float(capacity.get("storage_gb", request.storage_gb))
    )


def check_container_placement(pool: str, resources: dict[str, Any], nodes: list[NodeRecord]) -> None:
    """`Unschedulable` unless an active worker of `pool` can run containers (its probe ran
    one) and its total resources cover the request; the message says which is missing."""
    workers = [
        node for node in nodes if node.role == "worker" and node.pool == pool and node.status == "active"
    ]
    able = [node for node in workers if (node.info or {}).get("containers")]
    if not able:
        reasons = sorted({str((node.info or {}).get("containers_reason") or "no probe") for node in workers})
        why = (
            f"No active {pool} worker can run containers: {len(workers)} active, {'; '.join(reasons)}"
            if workers
            else f"No active {pool} worker can run containers: no {pool} worker is active"
        )
        raise Unschedulable(why, pool=pool, resources=resources, reasons=reasons)
    request = Request.of(resources)
    capacities = [(node.info or {}).get("capacity") or {} for node in able]
    if not any(_fits(request, capacity) for capacity in capacities):
        raise Unschedulable(
            f"No {pool} worker that runs containers has the resources requested "
            f"(cpu {request.cpu:g}, memory {request.memory_gb:g} GB, storage {request.storage_gb:g} GB, "
            f"gpu {request.gpu})",
            pool=pool,
            resources=resources,
            capacities=capacities,
        )


def check_placement(
    pool: str, resources: dict[str, Any], nodes: list[NodeRecord], cluster: ClusterConfig
) -> None:
    """`Unschedulable` when the pool has no node at all, or none of its nodes could ever fit.

    A conflict with the cluster as it is (adding a node makes the same request succeed): the
    client can act on it, so it is no server error.
    """
    if is_node_pool(pool):  # a placement node's own queues: that node must be running
        node_id = node_of_pool(pool)
        if not any(node.node_id == node_id and node.role == "worker" for node in nodes):
            raise Unschedulable(
                f"placement node {node_id} is not running (start it with `grey worker --node-id {node_id}`)",
                pool=pool,
                node=node_id,
            )
        return
    workers = [node for node in nodes if node.role == "worker" and node.pool == pool]
    if pool == "tee":
        attested = [node for node in workers if node.tee_enabled]
        if not attested:
            raise Unschedulable(
                "No attested tee node: "
                + (
                    f"{len(workers)} tee workers registered, none with a valid attestation"
                    if workers
                    else "start one with `grey worker --pool tee` (grey serve runs one in-process)"
                ),
                pool=pool,
                resources=resources,
            )
        workers = attested
    if not workers:
        if pool != "cpu" and cluster.pool(pool).nodes == 0:
            hint = "grey worker --pool gpu (or --emulate-gpus N without GPUs)" if pool == "gpu" else ""
            raise Unschedulable(
                f"No {pool} pool: no {pool} worker is registered"
                + (f"; start one with `{hint}`" if hint else ""),
                pool=pool,
                resources=resources,
            )
        return
    request = Request.of(resources)
    for node in workers:
        if _fits(request, (node.info or {}).get("capacity") or {}):
            return
    raise Unschedulable(
        f"No {pool} node can ever fit this request",
        pool=pool,
        resources=resources,
        capacities=[(n.info or {}).get("capacity") for n in workers],
    )


def pool_of(resources: dict[str, Any], tee_required: bool) -> str:
    return route_pool(int(resources.get("gpu", 0)), tee_required)


class SubmissionChecks:
    """The checks that need the store or the live nodes, run by the intake thread."""

    def __init__(
        self, store: Store, live_nodes: Callable[[], list[NodeRecord]], cluster: ClusterConfig
    ) -> None:
        self._store, self._live_nodes, self._cluster = store, live_nodes, cluster

    @staticmethod
    def needed(new: NewTask) -> bool:
        """Most submits need none: default cpu resources and no dependencies."""
        return (
            bool(new.dependencies) or new.pool != "cpu" or bool(new.resources) or new.type == CONTAINER_TASK
        )

    def check(self, new: NewTask) -> None:
        """A pool that can take the task, dependencies that exist and are the tenant's."""
        if new.type == CONTAINER_TASK:  # whichever API submitted it
            check_payload(CONTAINER_TASK, new.payload, None)
            check_container_resources(new.resources)
            check_container_placement(new.pool, new.resources, self._live_nodes())
        elif new.pool != "cpu" or new.resources:
            check_placement(new.pool, new.resources, self._live_nodes(), self._cluster)
        if new.dependencies:
            known = self._store.tasks.statuses(new.tenant_id, new.dependencies)
            unknown = [task_id for task_id in new.dependencies if task_id not in known]
            if unknown:
                raise InvalidPayload(
                    f"Unknown dependencies: {', '.join(unknown)}", field="dependencies", unknown=unknown
                )
