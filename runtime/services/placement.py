"""gswarm placement for handlers and serving: models, locations, chunks, nodes, and queued
placement work (download, move, copy, chunk move/transfer) as Grey tasks.

For serving (H3) — blocking functions (from async code: `await services.blocking.run(...)`):

- `locations(services, tenant_id, model_name) -> list[Location]`: where the model's bytes
  really are now (`Location.node`, `.device`, `.place` = "node:device", `.status`,
  `.emulated`, `.size`, `.bytes_per_second`); DRAM/GPU copies of a dead process are never
  listed. ModelNotFound if the tenant has no such model.
- `local_source(services, tenant_id, model_name, node_id, device) -> str`: what a serving
  process on `node_id` opens to load the model from `device`: a file path for `disk` when
  that file is on this machine, else the node's byte-server URL (token included; HTTP
  Range reads honoured). NotOnDevice (404) when the model is not there.
- `IN_USE`: a list serving appends a function `(services, tenant_id, model_name) ->
  list[str]` to (the running service ids of a model): a model in use is not deleted
  without `force` (409 conflict). `SERVICE_URLS`: `(services, tenant_id, model_name) ->
  dict[node, url]` for the `services` field of model views.

For handlers — async: `register_model`, `model_view`, `list_model_views`, `delete_model`,
`add_location`, `remove_location`, `submit_download`, `submit_transfer`, chunk functions,
`node_views`, `resources`. Errors are the engine's (runtime.execution.placement.errors;
the gateway maps them to the API's codes) and the store's ModelExists (409).
Submissions answer `Submission(task_id, status="queued", position, estimated_time)`:
position = unfinished tasks ahead in that node's queue, estimated_time = bytes ÷ the
node's measured bandwidth for that route (before its first use, the node's start-up probe:
`disk->dram` with the file mapped as a load maps it, every other route `disk_read`, a read()
pass) capped by `bandwidth_limit`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from runtime.execution.placement import operations, peers
from runtime.execution.placement.devices import DiskDevice, Key, Source
from runtime.execution.placement.errors import (
    ChunkNotFound,
    InvalidPlacementRequest,
    ModelNotFound,
    NetworkFailure,
    NodeNotFound,
    NotOnDevice,
    PlacementConflict,
)
from runtime.execution.placement.names import CHUNK, MODEL, Place, check_name, is_volatile, parse_place
from runtime.execution.placement.node import local_node
from runtime.execution.placement.settings import PlacementSettings
from runtime.execution.placement.sources import check_url, filename_of, open_url
from runtime.execution.placement.tasks import CHUNK_MOVE, CHUNK_TRANSFER, COPY, DOWNLOAD, MOVE
from runtime.execution.queues import DRAMATIQ_PRIORITY, node_pool
from runtime.services import Services
from runtime.services import tasks as task_service
from runtime.store import NewTask
from runtime.store.coltypes import utc_now
from runtime.store.placement import (
    CHUNK_LABEL,
    ChunkRecord,
    LocationRecord,
    ModelRecord,
    PlacementNodeRecord,
    PlacementRepository,
    chunk_task_refs,
    gswarm_task_counts,
)

#: Serving's hooks (see the module docstring).
IN_USE: list[Callable[[Services, str, str], list[str]]] = []
SERVICE_URLS: list[Callable[[Services, str, str], dict[str, str]]] = []
#: `(services, tenant_id) -> int`: the tenant's running services (the metrics' count).
SERVICE_COUNT: list[Callable[[Services, str], int]] = []

DEFAULT_BYTES_PER_SECOND = 100e6  # only until the node has measured its disk
MAX_CHUNK_BYTES = 64 * 1024 * 1024  # base64 chunks travel in the request body
MIN_TIMEOUT_SECONDS = 300


@dataclass(frozen=True, slots=True)
class Location:
    node: str
    device: str
    status: str
    emulated: bool
    size: int
    bytes_per_second: float | None
    updated_at: str

    @property
    def place(self) -> str:
        return f"{self.node}:{self.device}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "device": self.place,
            "node": self.node,
            "status": self.status,
            "emulated": self.emulated,
            "size": self.size,
            "bytes_per_second": self.bytes_per_second,
            "updated_at": self.updated_at,
        }


@dataclass(frozen=True, slots=True)
class Submission:
    task_id: str
    status: str
    position: int
    estimated_time: float
    node: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "task_id": self.task_id,
            "status": self.status,
            "position": self.position,
            "estimated_time": self.estimated_time,
        }


def repo(services: Services) -> PlacementRepository:
    return PlacementRepository.of(services.store.engine)


def _location(row: LocationRecord) -> Location:
    return Location(
        row.node_id,
        row.device,
        row.status,
        row.emulated,
        row.size,
        row.bytes_per_second,
        row.updated_at.isoformat().replace("+00:00", "Z"),
    )


def _nodes(services: Services) -> dict[str, PlacementNodeRecord]:
    return {node.node_id: node for node in repo(services).list_nodes()}


def _real_rows(
    services: Services, tenant_id: str, kind: str, names: list[str] | None
) -> list[LocationRecord]:
    return peers.real(repo(services).locations(tenant_id, kind, names), _nodes(services))


def _model(services: Services, tenant_id: str, model_name: str) -> ModelRecord:
    check_name(model_name)
    model = repo(services).get_model(tenant_id, model_name)
    if model is None:
        raise ModelNotFound(f"model {model_name!r} is not registered", model_name=model_name)
    return model


# -- for serving ----------------------------------------------------------------------------------


def locations(services: Services, tenant_id: str, model_name: str) -> list[Location]:
    """Where the tenant's model is now (blocking)."""
    _model(services, tenant_id, model_name)
    return [_location(row) for row in _real_rows(services, tenant_id, MODEL, [model_name])]


def local_source(services: Services, tenant_id: str, model_name: str, node_id: str, device: str) -> str:
    """A file path (disk, same machine) or the node's byte-server URL of the model (blocking)."""
    place = parse_place(device, node_id)
    _model(services, tenant_id, model_name)
    rows = [r for r in _real_rows(services, tenant_id, MODEL, [model_name]) if r.place == str(place)]
    if not rows:
        raise NotOnDevice(f"model {model_name!r} is not on {place}", device=str(place))
    node = repo(services).get_node(place.node_id)
    if node is None:
        raise NodeNotFound(f"no placement node {place.node_id}", node=place.node_id)
    key = Key(tenant_id, MODEL, model_name)
    if place.device == "disk":
        running = local_node(place.node_id)
        disk = (
            running.disk()
            if running is not None
            else DiskDevice(PlacementSettings.from_env().disk_dir(place.node_id), None, 1 << 20)
        )
        try:
            path = disk.path(key)
        except NotOnDevice:
            path = None
        if path is not None and path.is_file():
            return str(path)
    return f"{operations.object_url(node, key, place.device)}&token={node.token}"


# -- models -------------------------------------------------------------------------------------------


def _services_of(services: Services, tenant_id: str, name: str) -> dict[str, str]:
    urls: dict[str, str] = {}
    for hook in SERVICE_URLS:
        urls.update(hook(services, tenant_id, name))
    return urls


def _in_use(services: Services, tenant_id: str, name: str) -> list[str]:
    return [service for hook in IN_USE for service in hook(services, tenant_id, name)]


def _view(services: Services, model: ModelRecord, rows: list[LocationRecord]) -> dict[str, Any]:
    status = model.status
    if status == "ready" and not rows:
        status = "registered"  # its bytes went away (deleted, or held by a process that died)
    return {
        "model_name": model.name,
        "model_type": model.model_type,
        "model_size": model.size or 0,
        "locations": [row.place for row in rows],
        "location_details": [_location(row).as_dict() for row in rows],
        "services": _services_of(services, model.tenant_id, model.name),
        "status": status,
        "source_url": model.source_url,
        "checksum": model.sha256,
        "metadata": {**model.meta, "created_at": model.created_at.isoformat().replace("+00:00", "Z")},
    }


def register_model_sync(
    services: Services,
    tenant_id: str,
    name: str,
    model_type: str,
    size: int | None,
    source_url: str | None,
    metadata: dict[str, Any] | None,
) -> dict[str, Any]:
    check_name(name)
    if source_url:
        check_url(source_url, PlacementSettings.from_env().file_roots)
    now = utc_now()
    meta = dict(metadata or {})
    record = ModelRecord(
        tenant_id=tenant_id,
        name=name,
        model_type=model_type,
        size=size,
        source_url=source_url,
        meta=meta,
        status="registered",
        sha256=str(meta["sha256"]).lower() if meta.get("sha256") else None,
        filename=filename_of(source_url) if source_url else None,
        created_at=now,
        updated_at=now,
    )
    repo(services).register_model(record)
    return _view(services, record, [])


async def register_model(
    services: Services,
    tenant_id: str,
    name: str,
    model_type: str,
    size: int | None = None,
    source_url: str | None = None,
    metadata: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Registers a model (409 conflict if the tenant has one of that name)."""
    return await services.blocking.run(
        register_model_sync, services, tenant_id, name, model_type, size, source_url, metadata
    )


def model_view_sync(services: Services, tenant_id: str, name: str) -> dict[str, Any]:
    model = _model(services, tenant_id, name)
    return _view(services, model, _real_rows(services, tenant_id, MODEL, [name]))


async def model_view(services: Services, tenant_id: str, name: str) -> dict[str, Any]:
    return await services.blocking.run(model_view_sync, services, tenant_id, name)


def list_model_views_sync(
    services: Services,
    tenant_id: str,
    *,
    model_type: str | None = None,
    location: str | None = None,
    status: str | None = None,
    page: int = 1,
    per_page: int = 20,
    node: str | None = None,
) -> tuple[list[dict[str, Any]], int]:
    """A page of the tenant's models, filtered by type, status, location (`node1:gpu0` or
    `gpu0`) and node (the client API's "local" models)."""
    names: list[str] | None = None
    rows = _real_rows(services, tenant_id, MODEL, None)
    if location is not None or node is not None:
        matching = [
            row
            for row in rows
            if (location is None or location in (row.place, row.device))
            and (node is None or row.node_id == node)
        ]
        names = sorted({row.name for row in matching})
    page_rows, total = repo(services).list_models(
        tenant_id,
        model_type=model_type,
        status=status,
        names=names,
        offset=(max(1, page) - 1) * per_page,
        limit=per_page,
    )
    by_name: dict[str, list[LocationRecord]] = {}
    for row in rows:
        by_name.setdefault(row.name, []).append(row)
    return [_view(services, model, by_name.get(model.name, [])) for model in page_rows], total


async def list_model_views(
    services: Services, tenant_id: str, **filters: Any
) -> tuple[list[dict[str, Any]], int]:
    return await services.blocking.run(lambda: list_model_views_sync(services, tenant_id, **filters))


def _drop(services: Services, tenant_id: str, kind: str, name: str, row: LocationRecord) -> None:
    """Row then bytes, by the node that holds them (its byte server; the node itself in
    this process). An offline node's files go when it reconciles at its next start."""
    running = local_node(row.node_id)
    if running is not None:
        operations.remove(running, tenant_id, kind, name, row.device)
        return
    store = repo(services)
    node = store.get_node(row.node_id)
    store.remove_location(tenant_id, kind, name, row.node_id, row.device)
    if node is None or not peers.alive(node):
        return
    request = urllib.request.Request(
        operations.object_url(node, Key(tenant_id, kind, name), row.device),
        method="DELETE",
        headers={operations.TOKEN_HEADER: node.token},
    )
    try:
        urllib.request.urlopen(request, timeout=30).close()
    except urllib.error.HTTPError as error:
        if error.code != 404:
            raise NetworkFailure(f"node {row.node_id} did not delete the bytes: {error.code}") from None
    except OSError as error:
        raise NetworkFailure(f"node {row.node_id} did not delete the bytes: {error}") from None


def delete_model_sync(
    services: Services,
    tenant_id: str,
    name: str,
    *,
    force: bool = False,
    device: str | None = None,
    node: str | None = None,
) -> None:
    """Deletes the model (or, with `device`/`node`, only its copies there). Services
    running on it: 409 conflict unless `force`."""
    _model(services, tenant_id, name)
    if not force:
        running = _in_use(services, tenant_id, name)
        if running:
            raise PlacementConflict(
                f"model {name!r} has running services ({', '.join(running)}); pass force=true",
                services=running,
            )
    place = parse_place(device, node) if device is not None else None
    rows = repo(services).locations(tenant_id, MODEL, [name])
    chosen = [
        row
        for row in rows
        if (place is None or row.place == str(place)) and (node is None or row.node_id == node)
    ]
    if place is not None and not chosen:
        raise NotOnDevice(f"model {name!r} is not on {place}", device=str(place))
    for row in chosen:
        _drop(services, tenant_id, MODEL, name, row)
    if place is None and node is None:
        repo(services).delete_model(tenant_id, name)


async def delete_model(services: Services, tenant_id: str, name: str, **options: Any) -> None:
    await services.blocking.run(lambda: delete_model_sync(services, tenant_id, name, **options))


# -- locations --------------------------------------------------------------------------------------


def _peer(services: Services, node_id: str) -> PlacementNodeRecord:
    node = repo(services).get_node(node_id)
    if node is None:
        raise NodeNotFound(f"no placement node {node_id}", node=node_id)
    return node


def add_location_sync(
    services: Services, tenant_id: str, name: str, device: str, status: str = "ready"
) -> dict[str, Any]:
    """Records a location the node really holds (checked with its byte server); 409
    conflict when the bytes are not there (download, move or copy them instead)."""
    model = _model(services, tenant_id, name)
    place = parse_place(device, None)
    node = _peer(services, place.node_id)
    if not peers.alive(node):
        raise PlacementConflict(f"node {place.node_id} is not running: nothing to locate", node=place.node_id)
    key = Key(tenant_id, MODEL, name)
    request = urllib.request.Request(
        operations.object_url(node, key, place.device),
        headers={operations.TOKEN_HEADER: node.token, "Range": "bytes=0-0"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            total = answer.headers.get("Content-Range", "/").rsplit("/", 1)[-1]
            size = int(total) if total.isdigit() else int(answer.headers.get("Content-Length") or 0)
    except urllib.error.HTTPError as error:
        raise PlacementConflict(
            f"{place} holds no bytes of {name!r}: download, move or copy it there", device=str(place)
        ) from (None if error.code == 404 else error)
    except OSError as error:
        raise NetworkFailure(f"node {place.node_id} did not answer: {error}") from None
    emulated = any(d.get("name") == place.device and d.get("emulated") for d in node.devices)
    record = LocationRecord(
        tenant_id=tenant_id,
        kind=MODEL,
        name=name,
        node_id=place.node_id,
        device=place.device,
        status=status if status in ("ready", "available", "loading") else "ready",
        emulated=emulated,
        size=size or (model.size or 0),
        sha256=model.sha256,
        holder=node.boot_id if is_volatile(place.device) else None,
        source="manual",
    )
    repo(services).put_location(record)
    return _location(record).as_dict()


async def add_location(
    services: Services, tenant_id: str, name: str, device: str, status: str = "ready"
) -> dict[str, Any]:
    return await services.blocking.run(add_location_sync, services, tenant_id, name, device, status)


def remove_location_sync(services: Services, tenant_id: str, name: str, device: str) -> None:
    _model(services, tenant_id, name)
    place = parse_place(device, None)
    row = repo(services).get_location(tenant_id, MODEL, name, place.node_id, place.device)
    if row is None:
        raise NotOnDevice(f"model {name!r} is not on {place}", device=str(place))
    _drop(services, tenant_id, MODEL, name, row)


async def remove_location(services: Services, tenant_id: str, name: str, device: str) -> None:
    await services.blocking.run(remove_location_sync, services, tenant_id, name, device)


# -- queued work --------------------------------------------------------------------------------------


def client_node(services: Services) -> str:
    """The node the client API acts for: GREY_GSWARM_CLIENT_NODE, else the first online one."""
    chosen = os.environ.get("GREY_GSWARM_CLIENT_NODE", "").strip()
    if chosen:
        return chosen
    online = [node.node_id for node in repo(services).list_nodes() if node.status == "online"]
    if not online:
        raise NodeNotFound("no placement node is running (grey worker --node-id NODE)")
    return online[0]


def _estimate(node: PlacementNodeRecord | None, route: str, size: int, limit: float | None) -> float:
    bandwidth = DEFAULT_BYTES_PER_SECOND
    if node is not None:
        bandwidth = node.bandwidth.get(route) or node.bandwidth.get("disk_read") or bandwidth
    if limit:
        bandwidth = min(bandwidth, limit)
    return round(size / bandwidth, 3) if size else 0.0


async def _submit(
    services: Services,
    tenant_id: str,
    node_id: str,
    task_type: str,
    data: dict[str, Any],
    *,
    priority: str,
    dependencies: list[str] | None,
    size: int,
    route: str,
    bandwidth_limit: float | None,
    api: str,
    resources: dict[str, list[str]],
) -> Submission:
    if priority not in DRAMATIQ_PRIORITY:
        raise InvalidPlacementRequest(
            f"priority {priority!r}: one of {', '.join(DRAMATIQ_PRIORITY)}", field="priority"
        )
    node = await services.blocking.run(repo(services).get_node, node_id)
    if node is None:
        raise NodeNotFound(f"no placement node {node_id}", node=node_id)
    estimate = _estimate(node, route, size, bandwidth_limit)
    new = NewTask(
        tenant_id=tenant_id,
        type=task_type,
        payload={"function": task_type, "data": data, "resources": resources},
        priority=priority,
        timeout_seconds=max(MIN_TIMEOUT_SECONDS, int(estimate * 10) + 60),
        dependencies=list(dependencies or []),
        pool=node_pool(node_id),
        api=api,
        labels={
            "gswarm.node": node_id,
            **({CHUNK_LABEL: data["name"]} if task_type in (CHUNK_MOVE, CHUNK_TRANSFER) else {}),
        },
    )
    task = await task_service.submit(services, new)
    position = await services.blocking.run(
        repo(services).tasks_ahead, new.pool, DRAMATIQ_PRIORITY, priority, task.task_id
    )
    return Submission(task.task_id, "queued", position, estimate, node_id)


async def submit_download(
    services: Services,
    tenant_id: str,
    model_name: str,
    *,
    node_id: str,
    source_url: str | None,
    device: str,
    priority: str = "normal",
    verify_checksum: bool = True,
    expected_sha256: str | None = None,
    bandwidth_limit: float | None = None,
    dependencies: list[str] | None = None,
    model_type: str = "unknown",
    api: str = "gswarm_client",
) -> Submission:
    """Queues a download onto `device` of `node_id`; an unregistered model is registered."""
    check_name(model_name)
    place = parse_place(device, node_id)
    model = await services.blocking.run(repo(services).get_model, tenant_id, model_name)
    url = source_url or (model.source_url if model is not None else None)
    if not url:
        raise InvalidPlacementRequest(
            "source_url is required (the model was registered without one)", field="source_url"
        )
    check_url(url, PlacementSettings.from_env().file_roots)
    if model is None:
        await register_model(services, tenant_id, model_name, model_type, None, url, None)
    data = {
        "name": model_name,
        "source_url": url,
        "device": place.device,
        "verify_checksum": verify_checksum,
        "expected_sha256": expected_sha256,
        "bandwidth_limit": bandwidth_limit,
    }
    size = (model.size or 0) if model is not None else 0
    return await _submit(
        services,
        tenant_id,
        place.node_id,
        DOWNLOAD,
        data,
        priority=priority,
        dependencies=dependencies,
        size=size,
        route="download",
        bandwidth_limit=bandwidth_limit,
        api=api,
        resources={"devices": [str(place)], "models": [model_name]},
    )


async def submit_transfer(
    services: Services,
    tenant_id: str,
    kind: str,
    name: str,
    *,
    source: Place,
    target: Place,
    keep_source: bool,
    priority: str = "normal",
    verify_checksum: bool = False,
    bandwidth_limit: float | None = None,
    dependencies: list[str] | None = None,
    api: str = "gswarm_client",
) -> Submission:
    """Queues a move/copy on the target node (it pulls from the source node's byte server
    when the nodes differ)."""
    check_name(name, "chunk_id" if kind == CHUNK else "model_name")
    if kind == MODEL:
        model = await services.blocking.run(_model, services, tenant_id, name)
        size = model.size or 0
        task_type = MOVE if not keep_source else COPY
    else:
        chunk = await services.blocking.run(_chunk, services, tenant_id, name)
        size = chunk.size
        task_type = CHUNK_MOVE if source.node_id == target.node_id else CHUNK_TRANSFER
    if source == target:
        raise InvalidPlacementRequest(f"source and target are both {source}", field="target_device")
    data = {
        "name": name,
        "source": str(source),
        "device": target.device,
        "keep_source": keep_source,
        "verify_checksum": verify_checksum,
        "bandwidth_limit": bandwidth_limit,
    }
    route = (
        f"{source.device}->{target.device}"
        if source.node_id == target.node_id
        else f"{source}->{target.device}"
    )
    return await _submit(
        services,
        tenant_id,
        target.node_id,
        task_type,
        data,
        priority=priority,
        dependencies=dependencies,
        size=size,
        route=route,
        bandwidth_limit=bandwidth_limit,
        api=api,
        resources={
            "devices": [str(source), str(target)],
            "models": [name] if kind == MODEL else [],
            "chunks": [name] if kind == CHUNK else [],
        },
    )


# -- chunks -------------------------------------------------------------------------------------------


def _chunk(services: Services, tenant_id: str, chunk_id: str) -> ChunkRecord:
    check_name(chunk_id, "chunk_id")
    chunk = repo(services).get_chunk(tenant_id, chunk_id)
    if chunk is None:
        raise ChunkNotFound(f"chunk {chunk_id!r} does not exist", chunk_id=chunk_id)
    return chunk


def chunk_view(
    chunk: ChunkRecord, rows: list[LocationRecord], tasks: list[str] | None = None
) -> dict[str, Any]:
    """`references`: what uses the chunk (the ids given at creation and its unfinished tasks)."""
    return {
        "chunk_id": chunk.chunk_id,
        "chunk_type": chunk.chunk_type,
        "size": chunk.size,
        "format": chunk.format,
        "checksum": chunk.sha256,
        "locations": [{"device": row.place, "status": row.status, "emulated": row.emulated} for row in rows],
        "references": len(set(chunk.refs) | set(tasks or [])),
        "metadata": {
            **chunk.meta,
            "created_by": chunk.created_by,
            "created_at": chunk.created_at.isoformat().replace("+00:00", "Z"),
            "access_count": chunk.access_count,
        },
    }


class _Reader:
    """A Source as the file-like object urllib streams a request body from."""

    def __init__(self, source: Source) -> None:
        self._source = source

    def read(self, n: int = 1 << 20) -> bytes:
        buffer = bytearray(max(1, min(n, 8 << 20)))
        got = self._source.readinto(memoryview(buffer))
        return bytes(buffer[:got])


def _decode(data: str) -> bytes:
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidPlacementRequest("data is neither a URL nor valid base64", field="data") from None
    if len(raw) > MAX_CHUNK_BYTES:
        raise InvalidPlacementRequest(f"base64 data over {MAX_CHUNK_BYTES} bytes: give a URL", field="data")
    return raw


def create_chunk_sync(
    services: Services,
    tenant_id: str,
    *,
    data: str,
    chunk_type: str,
    format: str,
    device: str,
    node_id: str,
    metadata: dict[str, Any] | None = None,
    references: list[str] | None = None,
    created_by: str | None = None,
) -> dict[str, Any]:
    """A chunk from base64 bytes or a URL (http(s)://, or file:// inside the allowed roots),
    stored on `device` now: the bytes are streamed to the node's byte server."""
    place = parse_place(device, node_id)
    body: bytes | _Reader
    if data.split("://", 1)[0] in ("http", "https", "file"):
        source = open_url(data, PlacementSettings.from_env().file_roots)
        body, size, digest = _Reader(source), source.size, ""
    else:
        raw = _decode(data)
        body, size, digest = raw, len(raw), hashlib.sha256(raw).hexdigest()
    chunk = ChunkRecord(
        tenant_id=tenant_id,
        chunk_id=f"chunk-{uuid.uuid4().hex[:12]}",
        chunk_type=chunk_type,
        format=format,
        size=size,
        sha256=digest,
        meta=dict(metadata or {}),
        access_count=0,
        refs=sorted(set(references or [])),
        created_by=created_by or (metadata or {}).get("created_by"),
        created_at=utc_now(),
    )
    store = repo(services)
    node = _peer(services, place.node_id)
    store.create_chunk(chunk)
    request = urllib.request.Request(
        operations.object_url(node, Key(tenant_id, CHUNK, chunk.chunk_id), place.device)
        + (f"&sha256={chunk.sha256}" if chunk.sha256 else ""),
        data=body,
        method="PUT",
        headers={
            operations.TOKEN_HEADER: node.token,
            "Content-Type": "application/octet-stream",
            "Content-Length": str(size),
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            stored = json.loads(answer.read())
        if not chunk.sha256:
            store.set_chunk_digest(tenant_id, chunk.chunk_id, str(stored.get("sha256") or ""))
            chunk = replace(chunk, sha256=str(stored.get("sha256") or ""))
    except urllib.error.HTTPError as error:
        store.delete_chunk(tenant_id, chunk.chunk_id)
        said = error.read()[:2000].decode(errors="replace")
        if error.code == 409 and "resource_unavailable" in said:
            from runtime.execution.placement.errors import ResourceUnavailable

            raise ResourceUnavailable(
                f"{place} has no room for {size} bytes", device=str(place), required=size
            ) from None
        raise NetworkFailure(f"node {place.node_id} refused the chunk: {error.code} {said}") from None
    except OSError as error:
        store.delete_chunk(tenant_id, chunk.chunk_id)
        raise NetworkFailure(f"node {place.node_id} did not take the chunk: {error}") from None
    return chunk_view(chunk, _real_rows(services, tenant_id, CHUNK, [chunk.chunk_id]))


async def create_chunk(services: Services, tenant_id: str, **fields: Any) -> dict[str, Any]:
    return await services.blocking.run(lambda: create_chunk_sync(services, tenant_id, **fields))


def list_chunks_sync(
    services: Services, tenant_id: str, *, device: str | None = None, chunk_type: str | None = None
) -> list[dict[str, Any]]:
    chunks = repo(services).list_chunks(tenant_id, chunk_type)
    rows = _real_rows(services, tenant_id, CHUNK, None)
    by_id: dict[str, list[LocationRecord]] = {}
    for row in rows:
        by_id.setdefault(row.name, []).append(row)
    views = []
    for chunk in chunks:
        held = by_id.get(chunk.chunk_id, [])
        if device is not None and not any(device in (row.place, row.device) for row in held):
            continue
        views.append(chunk_view(chunk, held))
    return views


async def list_chunks(services: Services, tenant_id: str, **filters: Any) -> list[dict[str, Any]]:
    return await services.blocking.run(lambda: list_chunks_sync(services, tenant_id, **filters))


def chunk_info_sync(services: Services, tenant_id: str, chunk_id: str) -> dict[str, Any]:
    chunk = _chunk(services, tenant_id, chunk_id)
    refs = chunk_task_refs(services.store.engine, tenant_id, chunk_id)
    return chunk_view(chunk, _real_rows(services, tenant_id, CHUNK, [chunk_id]), refs)


async def chunk_info(services: Services, tenant_id: str, chunk_id: str) -> dict[str, Any]:
    return await services.blocking.run(chunk_info_sync, services, tenant_id, chunk_id)


def delete_chunk_sync(services: Services, tenant_id: str, chunk_id: str, force: bool = False) -> None:
    """409 conflict when the chunk is referenced, unless `force`."""
    chunk = _chunk(services, tenant_id, chunk_id)
    refs = sorted(set(chunk.refs) | set(chunk_task_refs(services.store.engine, tenant_id, chunk_id)))
    if refs and not force:
        raise PlacementConflict(
            f"chunk {chunk_id} is referenced by {', '.join(refs)}; pass force=true", references=refs
        )
    for row in repo(services).locations(tenant_id, CHUNK, [chunk_id]):
        _drop(services, tenant_id, CHUNK, chunk_id, row)
    repo(services).delete_chunk(tenant_id, chunk_id)


async def delete_chunk(services: Services, tenant_id: str, chunk_id: str, force: bool = False) -> None:
    await services.blocking.run(delete_chunk_sync, services, tenant_id, chunk_id, force)


def chunk_source(services: Services, tenant_id: str, chunk_id: str, prefer_node: str | None) -> Place:
    """Where a chunk move/transfer reads from: a copy on `prefer_node` first."""
    _chunk(services, tenant_id, chunk_id)
    rows = _real_rows(services, tenant_id, CHUNK, [chunk_id])
    if not rows:
        raise NotOnDevice(f"chunk {chunk_id} has no copy on any running node", chunk_id=chunk_id)
    rows.sort(key=lambda row: (row.node_id != prefer_node, row.device != "dram", row.device))
    return Place(rows[0].node_id, rows[0].device)


# -- nodes and resources ------------------------------------------------------------------------------


def node_views_sync(services: Services) -> list[dict[str, Any]]:
    views = []
    for node in repo(services).list_nodes():
        up = peers.alive(node)
        storage = {d["name"]: d.get("total", 0) for d in node.devices if d.get("name") in ("disk", "dram")}
        gpus = [d["name"] for d in node.devices if str(d.get("name", "")).startswith("gpu")]
        views.append(
            {
                "node_id": node.node_id,
                "hostname": node.hostname,
                "ip_address": node.address.split("//", 1)[-1].rsplit(":", 1)[0],
                "status": "online" if up else "offline",
                "last_heartbeat": node.heartbeat_at.isoformat().replace("+00:00", "Z"),
                "capabilities": {
                    "gpus": gpus,
                    "storage": storage,
                    "devices": node.devices,
                    "emulated_gpus": [d["name"] for d in node.devices if d.get("emulated")],
                },
                "bandwidth": node.bandwidth,
            }
        )
    return views


async def node_views(services: Services) -> list[dict[str, Any]]:
    return await services.blocking.run(node_views_sync, services)


def resources_sync(services: Services, node_id: str) -> dict[str, Any]:
    """The reference's storage/compute view of one node (its latest heartbeat)."""
    from runtime.execution import host

    node = _peer(services, node_id)
    storage = {
        d["name"]: {
            "total": d.get("total", 0),
            "used": d.get("used", 0),
            "available": d.get("available", 0),
            "emulated": bool(d.get("emulated")),
        }
        for d in node.devices
    }
    compute: dict[str, Any] = {"cpu": {"cores": host.cpu_cores(), "usage": host.cpu_percent()}}
    for d in node.devices:
        if str(d.get("name", "")).startswith("gpu"):
            compute[d["name"]] = {"usage": None, "temperature": None, "emulated": bool(d.get("emulated"))}
    return {"node_id": node_id, "storage": storage, "compute": compute}


async def resources(services: Services, node_id: str) -> dict[str, Any]:
    return await services.blocking.run(resources_sync, services, node_id)


def settings_file_roots() -> tuple[Path, ...]:
    return PlacementSettings.from_env().file_roots


def metrics_sync(services: Services, tenant_id: str) -> dict[str, Any]:
    """Counts of the tenant's models, locations, services and gswarm tasks; device usage."""
    store = repo(services)
    nodes = store.list_nodes()
    live = [node for node in nodes if peers.alive(node)]
    _, models_total = store.list_models(tenant_id, limit=1)
    rows = peers.real(store.locations(tenant_id, MODEL, None), {n.node_id: n for n in nodes})
    counts = gswarm_task_counts(services.store.engine, tenant_id)
    storage = {
        f"{node.node_id}:{d['name']}": {
            "total": int(d.get("total", 0)),
            "used": int(d.get("used", 0)),
            "available": int(d.get("available", 0)),
            "emulated": bool(d.get("emulated")),
        }
        for node in live
        for d in node.devices
    }
    return {
        "timestamp": utc_now(),
        "nodes_online": len(live),
        "nodes_total": len(nodes),
        "models": models_total,
        "locations": len(rows),
        "services_running": sum(hook(services, tenant_id) for hook in SERVICE_COUNT),
        "tasks": {
            status: counts.get(status, 0)
            for status in ("pending", "running", "completed", "failed", "cancelled")
        },
        "storage": storage,
    }


def health_sync(services: Services) -> dict[str, Any]:
    """Healthy: the store answers and every known placement node is up; degraded: some
    node is down; unhealthy: the store does not answer."""
    checks: dict[str, str] = {}
    try:
        nodes = repo(services).list_nodes()
        checks["store"] = "ok"
    except Exception as error:  # the store is what health reports on
        return {
            "status": "unhealthy",
            "timestamp": utc_now(),
            "checks": {"store": f"unavailable: {type(error).__name__}"},
        }
    online = [node for node in nodes if peers.alive(node)]
    for node in nodes:
        checks[f"node:{node.node_id}"] = "ok" if node in online else "offline"
    status = "healthy" if online and len(online) == len(nodes) else "degraded"
    return {
        "status": status,
        "timestamp": utc_now(),
        "nodes_online": len(online),
        "nodes_total": len(nodes),
        "checks": checks,
    }
