"""Handlers of the `models` operations of the client API: one node's models (the node the
client acts for: GREY_GSWARM_CLIENT_NODE, else the first running placement node).

Download, move and copy are queued Grey tasks on the target node's own queue; they answer
202 with `{task_id, status: queued, position, estimated_time}`. Devices may be qualified
with another node (`node2:dram`): a copy or move there runs on that node, which reads the
bytes from this node's byte server.
"""

from __future__ import annotations

from generated.gswarm_client import models
from runtime.api.context import RequestContext
from runtime.execution.placement.errors import NotOnDevice
from runtime.execution.placement.names import MODEL, Place, parse_place
from runtime.services import Services, model_services, placement


async def _node(ctx: RequestContext) -> str:
    return await ctx.services.blocking.run(placement.client_node, ctx.services)


async def list_local_models(
    request: models.ListLocalModelsInput, ctx: RequestContext
) -> models.LocalModelList:
    """GET /api/v1/models: The tenant's models with bytes on this node, paged."""
    node = await _node(ctx)
    views, total = await placement.list_model_views(
        ctx.services, ctx.tenant_id, node=node, page=request.page, per_page=request.per_page
    )
    local = []
    for view in views:
        here = [d for d in view["location_details"] if d["node"] == node]
        local.append(
            models.LocalModel(
                model_name=view["model_name"],
                model_type=view["model_type"],
                model_size=view["model_size"],
                locations=[d["device"].split(":", 1)[1] for d in here],
                status=view["status"],
                emulated=any(d["emulated"] for d in here),
            )
        )
    return models.LocalModelList(
        node=node, models=local, total=total, page=request.page, per_page=request.per_page
    )


async def delete_local_model(request: models.DeleteLocalModelInput, ctx: RequestContext) -> None:
    """DELETE /api/v1/models/{model_name}:
    Remove a model's bytes from one device of this node (or from all of them)."""
    node = await _node(ctx)
    if request.force:
        await model_services.stop_model(
            ctx.services, ctx.tenant_id, request.model_name, node_id=node, device=request.device, api=ctx.api
        )
    await placement.delete_model(
        ctx.services, ctx.tenant_id, request.model_name, force=request.force, device=request.device, node=node
    )


async def download_model(request: models.DownloadModelInput, ctx: RequestContext) -> models.QueuedTask:
    """POST /api/v1/models/{model_name}/download:
    Queue a download of the model's checkpoint (http(s):// or file://) to a device."""
    node = await _node(ctx)
    submission = await placement.submit_download(
        ctx.services,
        ctx.tenant_id,
        request.model_name,
        node_id=node,
        source_url=request.source_url,
        device=request.target_device or "disk",
        priority=request.priority or "normal",
        verify_checksum=request.verify_checksum,
        bandwidth_limit=request.bandwidth_limit,
        dependencies=request.dependencies,
        model_type=request.model_type or "unknown",
        api=ctx.api,
    )
    return models.QueuedTask.model_validate(submission.as_dict())


def _source(services: Services, tenant_id: str, name: str, given: str | None, node: str) -> Place:
    """The device named, else where the model is on this node (disk first), else anywhere."""
    if given is not None:
        return parse_place(given, node)
    found = placement.locations(services, tenant_id, name)
    if not found:
        raise NotOnDevice(f"model {name!r} has no bytes on any running node", model_name=name)
    found.sort(key=lambda loc: (loc.node != node, loc.device != "disk", loc.device))
    return Place(found[0].node, found[0].device)


async def _transfer(
    ctx: RequestContext,
    name: str,
    source_device: str | None,
    target_device: str,
    *,
    keep_source: bool,
    priority: str | None,
    verify_checksum: bool,
    bandwidth_limit: int | None,
    dependencies: list[str] | None,
) -> models.QueuedTask:
    node = await _node(ctx)
    source = await ctx.services.blocking.run(_source, ctx.services, ctx.tenant_id, name, source_device, node)
    submission = await placement.submit_transfer(
        ctx.services,
        ctx.tenant_id,
        MODEL,
        name,
        source=source,
        target=parse_place(target_device, node),
        keep_source=keep_source,
        priority=priority or "normal",
        verify_checksum=verify_checksum,
        bandwidth_limit=float(bandwidth_limit) if bandwidth_limit else None,
        dependencies=dependencies,
        api=ctx.api,
    )
    return models.QueuedTask.model_validate(submission.as_dict())


async def move_model(request: models.MoveModelInput, ctx: RequestContext) -> models.QueuedTask:
    """POST /api/v1/models/{model_name}/move:
    Queue a move of the model's bytes between devices (the source is dropped unless `keep_source`)."""
    return await _transfer(
        ctx,
        request.model_name,
        request.source_device,
        request.target_device,
        keep_source=request.keep_source,
        priority=request.priority,
        verify_checksum=request.verify_checksum,
        bandwidth_limit=request.bandwidth_limit,
        dependencies=request.dependencies,
    )


async def copy_model(request: models.CopyModelInput, ctx: RequestContext) -> models.QueuedTask:
    """POST /api/v1/models/{model_name}/copy:
    Queue a copy of the model's bytes to another device or node (the source stays)."""
    return await _transfer(
        ctx,
        request.model_name,
        request.source_device,
        request.target_device,
        keep_source=True,
        priority=request.priority,
        verify_checksum=request.verify_checksum,
        bandwidth_limit=request.bandwidth_limit,
        dependencies=request.dependencies,
    )
