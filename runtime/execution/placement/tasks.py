"""The gswarm task functions: what a placement node's worker runs for queued placement work.

Tasks of types `gswarm.download`, `gswarm.move`, `gswarm.copy`, `gswarm.chunk_move`,
`gswarm.chunk_transfer` (payload `{"function": <the same name>, "data": ...}`) are sent to
the node's own queues (`node.<node_id>.<priority>`), so the process holding the node's
DRAM and GPU bytes runs them: the function finds its node with `local_node(ctx.node_id)`.
Progress is the share of bytes copied; a failure raises the placement error (its
`transient` says whether the executor retries it).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from runtime.execution.functions import TaskContext, task_function
from runtime.execution.placement import operations
from runtime.execution.placement.errors import PlacementError
from runtime.execution.placement.names import CHUNK, MODEL, parse_place
from runtime.execution.placement.node import PlacementNode, local_node

DOWNLOAD, MOVE, COPY, CHUNK_MOVE, CHUNK_TRANSFER = (
    "gswarm.download",
    "gswarm.move",
    "gswarm.copy",
    "gswarm.chunk_move",
    "gswarm.chunk_transfer",
)
TASK_TYPES = (DOWNLOAD, MOVE, COPY, CHUNK_MOVE, CHUNK_TRANSFER)


class NotAPlacementNode(PlacementError):
    """The task reached a worker that runs no placement node of that id."""

    code = "task_failed"
    transient = True  # another attempt may reach the node's process


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DownloadInput(_Input):
    name: str
    source_url: str
    device: str
    verify_checksum: bool = True
    expected_sha256: str | None = None
    bandwidth_limit: float | None = Field(default=None, gt=0)


class TransferInput(_Input):
    kind: str = MODEL
    name: str
    source: str  # node:device
    device: str  # target device on the node running the task
    keep_source: bool = True
    verify_checksum: bool = False
    bandwidth_limit: float | None = Field(default=None, gt=0)


def _node(ctx: TaskContext) -> PlacementNode:
    node = local_node(ctx.node_id)
    if node is None:
        raise NotAPlacementNode(f"worker {ctx.node_id} runs no placement node")
    return node


def _reporter(ctx: TaskContext) -> operations.Report:
    def report(done: int, total: int) -> None:
        ctx.progress(int(100 * done / total) if total else 100, f"{done} of {total} bytes")

    return report


@task_function(DOWNLOAD, input=DownloadInput)
def download(data: DownloadInput, ctx: TaskContext) -> dict[str, Any]:
    """Download a model checkpoint from http(s):// or file:// onto a device of this node."""
    node = _node(ctx)
    return operations.download(
        node,
        ctx.tenant_id,
        data.name,
        data.source_url,
        data.device,
        verify_checksum=data.verify_checksum,
        expected_sha256=data.expected_sha256,
        bandwidth_limit=data.bandwidth_limit,
        report=_reporter(ctx),
    )


def _transfer(data: TransferInput, ctx: TaskContext, kind: str) -> dict[str, Any]:
    node = _node(ctx)
    return operations.transfer(
        node,
        ctx.tenant_id,
        kind,
        data.name,
        parse_place(data.source, node.node_id),
        data.device,
        keep_source=data.keep_source,
        verify_checksum=data.verify_checksum,
        bandwidth_limit=data.bandwidth_limit,
        report=_reporter(ctx),
    )


@task_function(MOVE, input=TransferInput)
def move(data: TransferInput, ctx: TaskContext) -> dict[str, Any]:
    """Move (or, keep_source, copy) a model to a device of this node."""
    return _transfer(data, ctx, MODEL)


@task_function(COPY, input=TransferInput)
def copy(data: TransferInput, ctx: TaskContext) -> dict[str, Any]:
    """Copy a model to a device of this node (from this node or another)."""
    return _transfer(data, ctx, MODEL)


@task_function(CHUNK_MOVE, input=TransferInput)
def chunk_move(data: TransferInput, ctx: TaskContext) -> dict[str, Any]:
    """Move a data chunk between devices of this node."""
    return _transfer(data, ctx, CHUNK)


@task_function(CHUNK_TRANSFER, input=TransferInput)
def chunk_transfer(data: TransferInput, ctx: TaskContext) -> dict[str, Any]:
    """Transfer a data chunk from another node to a device of this node."""
    return _transfer(data, ctx, CHUNK)
