"""The serving task functions: what a placement node's worker runs to start or stop a replica.

`gswarm.deploy` and `gswarm.undeploy` are sent to the node's own queues
(`node.<node_id>.<priority>`) so the process that holds the node's bytes spawns the
serving process (and is its parent: a replica ends with it). The row was claimed by the
API (`starting`, its port reserved); the task starts the process and records pid, load
time and `running` — or `failed` with the reason. Both are idempotent: a re-run finds the
row past `starting` (or already stopped) and does nothing.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from runtime.execution.functions import TaskContext, TransientError, task_function
from runtime.execution.placement.node import local_node
from runtime.execution.serving.errors import ServiceNotFound
from runtime.execution.serving.host import ServingHost, serving_host
from runtime.store.model_services import ModelServiceRepository

DEPLOY, UNDEPLOY = "gswarm.deploy", "gswarm.undeploy"
TASK_TYPES = (DEPLOY, UNDEPLOY)


class DeployInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    service_id: str = Field(min_length=1, max_length=256)
    source: str = Field(min_length=1, max_length=4096)


class UndeployInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    service_id: str = Field(min_length=1, max_length=256)


class NotAServingNode(TransientError):
    """The task reached a worker that runs no placement node of that id (another attempt may)."""


def _host(ctx: TaskContext) -> ServingHost:
    node = local_node(ctx.node_id)
    if node is None:
        raise NotAServingNode(f"worker {ctx.node_id} runs no placement node")
    return serving_host(ctx.node_id, ModelServiceRepository.of(node.repo.engine), node.boot_id)


@task_function(DEPLOY, input=DeployInput)
def deploy(data: DeployInput, ctx: TaskContext) -> dict[str, Any]:
    """Start the serving process of a claimed service on this node and wait until it answers."""
    host = _host(ctx)
    record = host.repo.get(ctx.tenant_id, data.service_id)
    if record is None or record.node_id != host.node_id:
        raise ServiceNotFound(f"service {data.service_id!r} not found on node {host.node_id}")
    if record.status == "starting":
        record = host.spawn(record, data.source)
    return {
        "service_id": record.service_id,
        "status": record.status,
        "url": record.url,
        "load_time": record.load_time,
    }


@task_function(UNDEPLOY, input=UndeployInput)
def undeploy(data: UndeployInput, ctx: TaskContext) -> dict[str, Any]:
    """Stop a service of this node: its process ends, its port is free."""
    record = _host(ctx).stop(ctx.tenant_id, data.service_id)
    return {"service_id": record.service_id, "status": record.status}
