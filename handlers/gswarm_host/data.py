"""Handlers of the `data` operations: the data pool's chunks (runtime.services.placement).

A chunk is created on a device of a node (default `dram` of the client node), from base64
bytes or a URL; moves and transfers are queued tasks on the target node like model moves.
"""

from __future__ import annotations

from generated.gswarm_host import models
from runtime.api.context import RequestContext
from runtime.execution.placement.names import parse_place
from runtime.services import placement


async def list_chunks(request: models.ListChunksInput, ctx: RequestContext) -> models.ChunkList:
    """GET /api/v1/data: The tenant's chunks, by device and type."""
    views = await placement.list_chunks(
        ctx.services, ctx.tenant_id, device=request.device, chunk_type=request.type
    )
    return models.ChunkList(chunks=[models.Chunk.model_validate(view) for view in views])


async def create_chunk(request: models.CreateChunkInput, ctx: RequestContext) -> models.Chunk:
    """POST /api/v1/data: A chunk from base64 data or a URL, stored on a device now."""
    node = await ctx.services.blocking.run(placement.client_node, ctx.services)
    view = await placement.create_chunk(
        ctx.services,
        ctx.tenant_id,
        data=request.data,
        chunk_type=request.type or "data",
        format=request.format,
        device=request.device or "dram",
        node_id=node,
        metadata=request.metadata,
    )
    return models.Chunk.model_validate(view)


async def get_chunk(request: models.GetChunkInput, ctx: RequestContext) -> models.Chunk:
    """GET /api/v1/data/{chunk_id}: One chunk with its locations."""
    return models.Chunk.model_validate(
        await placement.chunk_info(ctx.services, ctx.tenant_id, request.chunk_id)
    )


async def delete_chunk(request: models.DeleteChunkInput, ctx: RequestContext) -> None:
    """DELETE /api/v1/data/{chunk_id}: Delete a chunk (409 when referenced, unless `force`)."""
    await placement.delete_chunk(ctx.services, ctx.tenant_id, request.chunk_id, request.force)


async def move_chunk(request: models.MoveChunkInput, ctx: RequestContext) -> models.QueuedTask:
    """POST /api/v1/data/{chunk_id}/move: Queue a move of the chunk to another device."""
    services, tenant = ctx.services, ctx.tenant_id
    source = await services.blocking.run(placement.chunk_source, services, tenant, request.chunk_id, None)
    target = parse_place(request.target_device, source.node_id)
    if target.node_id != source.node_id:  # prefer a copy already on the target node
        source = await services.blocking.run(
            placement.chunk_source, services, tenant, request.chunk_id, target.node_id
        )
    submission = await placement.submit_transfer(
        services,
        tenant,
        "chunk",
        request.chunk_id,
        source=source,
        target=target,
        keep_source=False,
        priority=request.priority or "normal",
        dependencies=request.dependencies,
        api=ctx.api,
    )
    return models.QueuedTask.model_validate(submission.as_dict())


async def transfer_chunk(request: models.TransferChunkInput, ctx: RequestContext) -> models.QueuedTask:
    """POST /api/v1/data/{chunk_id}/transfer: Queue a transfer of the chunk to another node."""
    services, tenant = ctx.services, ctx.tenant_id
    target = parse_place(request.target_device or "dram", request.target_node)
    if target.node_id != request.target_node:
        target = parse_place(target.device, request.target_node)
    source = await services.blocking.run(placement.chunk_source, services, tenant, request.chunk_id, None)
    submission = await placement.submit_transfer(
        services,
        tenant,
        "chunk",
        request.chunk_id,
        source=source,
        target=target,
        keep_source=not request.delete_source,
        priority=request.priority or "normal",
        dependencies=request.dependencies,
        api=ctx.api,
    )
    return models.QueuedTask.model_validate(submission.as_dict())
