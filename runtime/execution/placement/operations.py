"""What a placement node does to bytes: download, move/copy (on the node or from another
node), store uploaded bytes, remove. Run by the gswarm task functions (and the byte server).

The order of every operation keeps the store truthful: bytes first (complete, verified,
committed), then the target's location row; the source's row is removed before its bytes
go. A process killed at any point leaves at worst bytes no row names (deleted when the
node reconciles) or rows for volatile bytes of a dead process (never reported: their
holder is not the node's boot; removed when it reconciles) — never a row for bytes that
were not all there. Each operation is idempotent, so an attempt re-run after a crash
finishes the job or fails; it never reports done for a half-done move.
"""

from __future__ import annotations

import logging
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from runtime.execution.placement.copying import Copied, pump
from runtime.execution.placement.devices import Key, Source
from runtime.execution.placement.errors import (
    ChecksumMismatch,
    ChunkNotFound,
    ModelNotFound,
    NetworkFailure,
    NodeNotFound,
    NotOnDevice,
)
from runtime.execution.placement.names import CHUNK, MODEL, Place
from runtime.execution.placement.node import PlacementNode
from runtime.execution.placement.sources import filename_of, open_url
from runtime.store.coltypes import utc_now
from runtime.store.placement import LocationRecord, PlacementNodeRecord, PlacementRepository

logger = logging.getLogger("grey.placement")

Report = Callable[[int, int], None]  # bytes done, bytes in all
TOKEN_HEADER = "X-Grey-Placement-Token"
CHUNK_FILENAME = "chunk.bin"


@dataclass(frozen=True, slots=True)
class Subject:
    """The model or chunk an operation is about, as the store has it."""

    tenant_id: str
    kind: str
    name: str
    filename: str
    sha256: str | None
    size: int | None

    @property
    def key(self) -> Key:
        return Key(self.tenant_id, self.kind, self.name)

    @property
    def ready_word(self) -> str:
        return "ready" if self.kind == MODEL else "available"


def subject(repo: PlacementRepository, tenant_id: str, kind: str, name: str) -> Subject:
    if kind == MODEL:
        model = repo.get_model(tenant_id, name)
        if model is None:
            raise ModelNotFound(f"model {name!r} is not registered", model_name=name)
        return Subject(tenant_id, kind, name, model.filename or "model.bin", model.sha256, model.size)
    chunk = repo.get_chunk(tenant_id, name)
    if chunk is None:
        raise ChunkNotFound(f"chunk {name!r} does not exist", chunk_id=name)
    return Subject(tenant_id, kind, name, CHUNK_FILENAME, chunk.sha256 or None, chunk.size)


def _route(source: str, target: str) -> str:
    return f"{source}->{target}"


def _percent(report: Report | None, total: int) -> Callable[[int], None] | None:
    if report is None:
        return None
    return lambda done: report(done, total)


def _locate(
    node: PlacementNode, subject_: Subject, device: str, copied: Copied, source: str
) -> LocationRecord:
    record = LocationRecord(
        tenant_id=subject_.tenant_id,
        kind=subject_.kind,
        name=subject_.name,
        node_id=node.node_id,
        device=device,
        status=subject_.ready_word,
        emulated=node.device(device).emulated,
        size=copied.size,
        sha256=copied.sha256 or subject_.sha256,
        bytes_per_second=round(copied.bytes_per_second, 1),
        holder=node.holder(device),
        source=source,
        updated_at=utc_now(),
    )
    node.repo.put_location(record)
    return record


def _write(
    node: PlacementNode,
    subject_: Subject,
    device: str,
    source: Source,
    *,
    expected_sha256: str | None,
    hash_bytes: bool,
    bandwidth_limit: float | None,
    report: Report | None,
    origin: str,
) -> LocationRecord:
    """Source -> device, verified, committed, then located. Nothing stays on a failure."""
    target = node.device(device)
    size = source.size
    sink = target.sink(subject_.key, size, subject_.filename)  # ResourceUnavailable: nothing written
    try:
        copied = pump(
            source,
            sink,
            size,
            block=node.settings.block_bytes,
            bandwidth_limit=bandwidth_limit,
            hash_bytes=hash_bytes or expected_sha256 is not None,
            report=_percent(report, size),
        )
        if expected_sha256 is not None and copied.sha256 != expected_sha256.lower():
            raise ChecksumMismatch(
                f"SHA-256 of {subject_.name} is {copied.sha256}, expected {expected_sha256}",
                expected=expected_sha256,
                actual=copied.sha256,
            )
        sink.commit()
    except BaseException:
        sink.abort()
        raise
    finally:
        source.close()
    node.record_bandwidth(origin, copied.bytes_per_second)
    return _locate(node, subject_, device, copied, origin)


def download(
    node: PlacementNode,
    tenant_id: str,
    model_name: str,
    source_url: str,
    device: str,
    *,
    verify_checksum: bool = True,
    expected_sha256: str | None = None,
    bandwidth_limit: float | None = None,
    report: Report | None = None,
) -> dict[str, Any]:
    """Fetches the model's checkpoint onto `device`; its SHA-256 is always recorded and,
    with `verify_checksum` and an expected digest (given, or the model's), compared."""
    repo = node.repo
    model = repo.get_model(tenant_id, model_name)
    if model is None:
        raise ModelNotFound(f"model {model_name!r} is not registered", model_name=model_name)
    expected = expected_sha256 or model.meta.get("sha256") or model.meta.get("checksum") or model.sha256
    filename = model.filename or filename_of(source_url)
    subject_ = Subject(tenant_id, MODEL, model_name, filename, model.sha256, model.size)
    held = repo.get_location(tenant_id, MODEL, model_name, node.node_id, device) is not None
    if held and node.device(device).has(subject_.key) and (not verify_checksum or model.sha256 == expected):
        return {"model_name": model_name, "location": f"{node.node_id}:{device}", "already_there": True}
    repo.update_model(tenant_id, model_name, status="downloading", filename=filename, source_url=source_url)
    try:
        source = open_url(source_url, node.settings.file_roots)
        record = _write(
            node,
            subject_,
            device,
            source,
            expected_sha256=str(expected) if verify_checksum and expected else None,
            hash_bytes=True,
            bandwidth_limit=bandwidth_limit,
            report=report,
            origin="download",
        )
    except BaseException:
        remaining = [row for row in repo.locations(tenant_id, MODEL, [model_name])]
        repo.update_model(tenant_id, model_name, status="ready" if remaining else "failed")
        raise
    repo.update_model(tenant_id, model_name, status="ready", size=record.size, sha256=record.sha256)
    return _result(record)


def _result(record: LocationRecord, **more: Any) -> dict[str, Any]:
    return {
        "name": record.name,
        "location": record.place,
        "size": record.size,
        "sha256": record.sha256,
        "bytes_per_second": record.bytes_per_second,
        "emulated": record.emulated,
        **more,
    }


def _held(node: PlacementNode, subject_: Subject, device: str) -> bool:
    """This node holds a complete, located copy on `device`."""
    row = node.repo.get_location(subject_.tenant_id, subject_.kind, subject_.name, node.node_id, device)
    return (
        row is not None
        and node.device(device).has(subject_.key)
        and (row.holder is None or row.holder == node.boot_id)
    )


def remove(node: PlacementNode, tenant_id: str, kind: str, name: str, device: str) -> bool:
    """Row first, then bytes. True when either existed."""
    removed_row = node.repo.remove_location(tenant_id, kind, name, node.node_id, device)
    target = node.devices.get(device)
    dropped = target.drop(Key(tenant_id, kind, name)) if target is not None else False
    return removed_row or dropped


def transfer(
    node: PlacementNode,
    tenant_id: str,
    kind: str,
    name: str,
    source: Place,
    target_device: str,
    *,
    keep_source: bool,
    verify_checksum: bool = False,
    bandwidth_limit: float | None = None,
    report: Report | None = None,
) -> dict[str, Any]:
    """Moves or copies to `target_device` of this node, from a device of this node or of
    another (read from its byte server). Idempotent: a copy already complete here is kept
    and only the source's removal (a move) is finished."""
    repo = node.repo
    subject_ = subject(repo, tenant_id, kind, name)
    local = source.node_id == node.node_id
    if local and source.device == target_device:
        if not _held(node, subject_, target_device):
            raise NotOnDevice(f"{name} is not on {source}")
        return {"name": name, "location": str(source), "unchanged": True}
    origin = _route(source.device if local else f"{source}", target_device)
    expected = subject_.sha256 if verify_checksum else None
    if _held(node, subject_, target_device):
        record = repo.get_location(tenant_id, kind, name, node.node_id, target_device)
        assert record is not None
        more: dict[str, Any] = {"already_there": True}
    else:
        if local:
            if not _held(node, subject_, source.device):
                raise NotOnDevice(f"{name} is not on {source}", device=str(source))
            reader = node.device(source.device).source(subject_.key)
        else:
            reader = _remote_source(repo, subject_, source)
        record = _write(
            node,
            subject_,
            target_device,
            reader,
            expected_sha256=expected,
            hash_bytes=verify_checksum,
            bandwidth_limit=bandwidth_limit,
            report=report,
            origin=origin,
        )
        more = {}
    if not keep_source:
        if local:
            remove(node, tenant_id, kind, name, source.device)
        else:
            _remote_remove(repo, subject_, source)
    return _result(
        record, source=str(source), target=f"{node.node_id}:{target_device}", kept_source=keep_source, **more
    )


def store_bytes(
    node: PlacementNode, subject_: Subject, device: str, source: Source, *, expected_sha256: str | None
) -> LocationRecord:
    """Bytes uploaded to this node (a chunk's data): written, verified, located."""
    return _write(
        node,
        subject_,
        device,
        source,
        expected_sha256=expected_sha256,
        hash_bytes=True,
        bandwidth_limit=None,
        report=None,
        origin="upload",
    )


# -- other nodes --------------------------------------------------------------------------------


def object_url(node: PlacementNodeRecord, key: Key, device: str) -> str:
    parts = "/".join(urllib.parse.quote(part, safe="") for part in (key.tenant_id, key.kind, key.name))
    return f"{node.address}/objects/{parts}?device={device}"


def _peer(repo: PlacementRepository, node_id: str) -> PlacementNodeRecord:
    peer = repo.get_node(node_id)
    if peer is None or peer.status != "online":
        raise NodeNotFound(f"node {node_id} is not a running placement node", node=node_id)
    return peer


def _remote_source(repo: PlacementRepository, subject_: Subject, source: Place) -> Source:
    peer = _peer(repo, source.node_id)
    row = repo.get_location(subject_.tenant_id, subject_.kind, subject_.name, source.node_id, source.device)
    if row is None or (row.holder is not None and row.holder != peer.boot_id):
        raise NotOnDevice(f"{subject_.name} is not on {source}", device=str(source))
    return open_url(object_url(peer, subject_.key, source.device), (), {TOKEN_HEADER: peer.token})


def _remote_remove(repo: PlacementRepository, subject_: Subject, source: Place) -> None:
    peer = _peer(repo, source.node_id)
    request = urllib.request.Request(
        object_url(peer, subject_.key, source.device), method="DELETE", headers={TOKEN_HEADER: peer.token}
    )
    try:
        urllib.request.urlopen(request, timeout=30).close()
    except urllib.error.HTTPError as error:
        if error.code != 404:
            raise NetworkFailure(f"node {source.node_id} did not remove the source: {error.code}") from None
    except OSError as error:
        raise NetworkFailure(f"node {source.node_id} did not remove the source: {error}") from None


__all__ = ["CHUNK", "MODEL", "download", "remove", "store_bytes", "subject", "transfer"]
