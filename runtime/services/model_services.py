"""gswarm model services for handlers: deploy, list, status, stop, and placement-aware predict.

A deploy claims each replica's row here (`starting`, its port reserved on the node) and
sends a `gswarm.deploy` task to the node's own queue (`node.<node_id>.high`): the node's
worker spawns the serving process (runtime/execution/serving/host.py) and records it
`running` once it answers. A stop sends `gswarm.undeploy` the same way and waits (bounded)
for the row to say `stopped`. Rows whose node restarted (its boot is not the one that
spawned them) read as `failed`: their processes ended with it.

`predict` goes through the router (runtime/execution/serving/router.py): a warm replica
of the model, else a cold start from the model's fastest location on a node with a free
serving slot (evicting a routed replica, LFU by default, when none is free), timed.

Errors are serving's (runtime/execution/serving/errors.py) and placement's; the gateway
maps both to the API's codes. Model not on the device asked for: 409 RESOURCE_UNAVAILABLE.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
import weakref
from dataclasses import dataclass
from typing import Any

import httpx

from runtime.execution.placement.errors import NodeNotFound, NotOnDevice
from runtime.execution.placement.names import check_device, check_node
from runtime.execution.queues import node_pool
from runtime.execution.serving.errors import (
    InvalidServingRequest,
    ReplicaFailed,
    ReplicaUnreachable,
    ServiceNotFound,
    ServingError,
)
from runtime.execution.serving.frameworks import check_framework
from runtime.execution.serving.host import Launch, Probe, claim, probe_url
from runtime.execution.serving.router import Place, Replica, Routed, Router, device_rank
from runtime.execution.serving.settings import ServingSettings
from runtime.execution.serving.tasks import DEPLOY, UNDEPLOY
from runtime.services import Services, placement
from runtime.services import tasks as task_service
from runtime.store import NewTask
from runtime.store.model_services import LIVE_STATUSES, ModelServiceRepository, ServiceRecord
from runtime.store.placement import PlacementNodeRecord

RESTARTED = "the node's worker restarted or went offline: its serving process ended with it"
STOP_WAIT_SECONDS = 15.0
POLL_SECONDS = 0.02
PREDICT_TIMEOUT_SECONDS = 30.0


class ModelNotOnDevice(ServingError):
    """The model has no copy on the device asked for (move or copy it there first)."""

    code = "resource_unavailable"


def repo(services: Services) -> ModelServiceRepository:
    return ModelServiceRepository.of(services.store.engine)


def settings() -> ServingSettings:
    return ServingSettings.from_env()


def _nodes(services: Services) -> dict[str, PlacementNodeRecord]:
    return {node.node_id: node for node in placement.repo(services).list_nodes()}


def _alive(record: ServiceRecord, nodes: dict[str, PlacementNodeRecord]) -> bool:
    node = nodes.get(record.node_id)
    return (
        node is not None
        and node.status == "online"
        and (record.holder is None or record.holder == node.boot_id)
    )


def _settle(services: Services, records: list[ServiceRecord]) -> list[ServiceRecord]:
    """Live rows whose node restarted or went offline are failed (their processes are gone)."""
    nodes = _nodes(services)
    settled = []
    for record in records:
        if record.live and not _alive(record, nodes):
            repo(services).update(
                record.tenant_id, record.service_id, only_from=LIVE_STATUSES, status="failed", error=RESTARTED
            )
            record = repo(services).get(record.tenant_id, record.service_id) or record
        settled.append(record)
    return settled


def view(record: ServiceRecord) -> dict[str, Any]:
    """A service in gswarm's words (both APIs' `Service`)."""
    return {
        "service_id": record.service_id,
        "model_name": record.model_name,
        "node": record.node_id,
        "device": record.device,
        "port": record.port,
        "status": record.status,
        "url": record.url,
        "created_at": record.created_at,
        "framework": record.framework,
        "emulated": record.emulated,
        "error": record.error,
        "pid": record.pid,
        "load_time": record.load_time,
    }


# -- reads ------------------------------------------------------------------------------------


def list_sync(services: Services, tenant_id: str, model_name: str | None = None) -> list[ServiceRecord]:
    return _settle(services, repo(services).for_tenant(tenant_id, model_name=model_name))


async def list_services(services: Services, tenant_id: str) -> list[ServiceRecord]:
    return await services.blocking.run(list_sync, services, tenant_id)


def get_sync(services: Services, tenant_id: str, service_id: str) -> ServiceRecord:
    record = repo(services).get(tenant_id, service_id)
    if record is None:
        raise ServiceNotFound(f"service {service_id!r} not found", service_id=service_id)
    return _settle(services, [record])[0]


async def get(services: Services, tenant_id: str, service_id: str) -> ServiceRecord:
    return await services.blocking.run(get_sync, services, tenant_id, service_id)


def status_sync(services: Services, tenant_id: str, service_id: str) -> tuple[ServiceRecord, Probe]:
    """The row and what the serving process answers now (a running row that stopped
    answering while its node lives keeps its status; `healthy` says the truth)."""
    record = get_sync(services, tenant_id, service_id)
    if record.status not in ("running", "starting"):
        return record, Probe(False)
    return record, probe_url(f"{record.url}/health", record.service_id)


async def status(services: Services, tenant_id: str, service_id: str) -> tuple[ServiceRecord, Probe]:
    return await services.blocking.run(status_sync, services, tenant_id, service_id)


def _running_ids(services: Services, tenant_id: str, model_name: str) -> list[str]:
    return [r.service_id for r in list_sync(services, tenant_id, model_name) if r.live]


def _urls(services: Services, tenant_id: str, model_name: str) -> dict[str, str]:
    return {
        r.node_id: r.url
        for r in reversed(list_sync(services, tenant_id, model_name))
        if r.status == "running"
    }


placement.IN_USE.append(_running_ids)
placement.SERVICE_URLS.append(_urls)


# -- deploy -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Target:
    node: PlacementNodeRecord
    device: str
    source: str
    emulated: bool


def _split_device(device: str | None) -> tuple[str | None, str | None]:
    """`gpu0` → (None, gpu0); `node1:gpu0` → (node1, gpu0); bad names → INVALID_REQUEST."""
    if device is None:
        return None, None
    if not isinstance(device, str):
        raise InvalidServingRequest("device must be a string", field="device")
    node, sep, name = device.partition(":")
    if not sep:
        return None, check_device(device)
    return check_node(node), check_device(name)


def _targets(
    services: Services, tenant_id: str, model_name: str, nodes: list[str] | None, device: str | None
) -> list[Target]:
    """Where each node of the deploy loads from: the device asked for, else its fastest copy."""
    where = placement.locations(services, tenant_id, model_name)  # MODEL_NOT_FOUND first
    device_node, device_name = _split_device(device)
    known = _nodes(services)
    chosen = list(dict.fromkeys(nodes or []))
    if device_node is not None:
        if chosen and chosen != [device_node]:
            raise InvalidServingRequest(
                f"device {device!r} names node {device_node}, not {chosen}", field="device"
            )
        chosen = [device_node]
    if not chosen:
        ranked = sorted(where, key=lambda loc: (device_rank(loc.device), loc.node))
        chosen = list(dict.fromkeys(loc.node for loc in ranked if loc.node in known))
        if not chosen:
            raise ModelNotOnDevice(
                f"model {model_name!r} has no copy on any online node: download or copy it first",
                model_name=model_name,
            )
    targets = []
    for node_id in chosen:
        check_node(node_id)
        node = known.get(node_id)
        if node is None:
            raise NodeNotFound(f"no placement node {node_id}", node=node_id)
        here = [loc for loc in where if loc.node == node_id]
        if device_name is not None:
            here = [loc for loc in here if loc.device == device_name]
        if not here:
            on = ", ".join(loc.place for loc in where) or "nowhere"
            asked = f"{node_id}:{device_name}" if device_name else node_id
            raise ModelNotOnDevice(
                f"model {model_name!r} is not on {asked} (it is on {on}): move or copy it there first",
                model_name=model_name,
                device=asked,
                locations=[loc.place for loc in where],
            )
        best = min(here, key=lambda loc: device_rank(loc.device))
        try:
            source = placement.local_source(services, tenant_id, model_name, node_id, best.device)
        except NotOnDevice as error:
            raise ModelNotOnDevice(error.message, model_name=model_name, device=best.place) from None
        targets.append(Target(node, best.device, source, best.emulated))
    return targets


def _same_machine(node: PlacementNodeRecord) -> bool:
    return node.hostname == socket.gethostname()


def _neighbours(services: Services, node: PlacementNodeRecord) -> tuple[str, ...]:
    """Other nodes on the node's machine: they share its ports."""
    return tuple(
        other.node_id
        for other in _nodes(services).values()
        if other.hostname == node.hostname and other.node_id != node.node_id
    )


def claim_replicas(
    services: Services,
    tenant_id: str,
    model_name: str,
    *,
    nodes: list[str] | None = None,
    device: str | None = None,
    port: int | None = None,
    replicas: int = 1,
    framework: str | None = None,
    config: dict[str, Any] | None = None,
) -> list[tuple[ServiceRecord, str]]:
    """Rows (`starting`, ports reserved) and load sources of `replicas` replicas, round robin
    over the nodes; nothing is claimed when any check fails."""
    framework = check_framework(framework)
    if not 1 <= replicas <= 64:
        raise InvalidServingRequest("replicas must be between 1 and 64", field="config.replicas")
    targets = _targets(services, tenant_id, model_name, nodes, device)
    serving = settings()
    claimed: list[tuple[ServiceRecord, str]] = []
    try:
        for index in range(replicas):
            target = targets[index % len(targets)]
            launch = Launch(
                tenant_id=tenant_id,
                model_name=model_name,
                device=target.device,
                source=target.source,
                framework=framework,
                port=port if index == 0 else None,
                emulated=target.emulated,
                config=dict(config or {}),
            )
            record = claim(
                repo(services),
                serving,
                target.node.node_id,
                target.node.boot_id,
                launch,
                check_bind=_same_machine(target.node),
                neighbours=_neighbours(services, target.node),
            )
            claimed.append((record, target.source))
    except BaseException:
        for record, _ in claimed:
            repo(services).update(tenant_id, record.service_id, only_from=LIVE_STATUSES, status="stopped")
        raise
    return claimed


def _deploy_task(record: ServiceRecord, source: str, api: str) -> NewTask:
    return NewTask(
        tenant_id=record.tenant_id,
        type=DEPLOY,
        payload={"function": DEPLOY, "data": {"service_id": record.service_id, "source": source}},
        priority="high",
        timeout_seconds=int(settings().start_timeout) + 60,
        pool=node_pool(record.node_id),
        api=api,
        labels={"gswarm.node": record.node_id, "gswarm.service": record.service_id},
    )


def _undeploy_task(record: ServiceRecord, api: str) -> NewTask:
    return NewTask(
        tenant_id=record.tenant_id,
        type=UNDEPLOY,
        payload={"function": UNDEPLOY, "data": {"service_id": record.service_id}},
        priority="critical",
        timeout_seconds=60,
        pool=node_pool(record.node_id),
        api=api,
        labels={"gswarm.node": record.node_id, "gswarm.service": record.service_id},
    )


async def _send(services: Services, records: list[tuple[ServiceRecord, str]], api: str) -> None:
    for record, source in records:
        try:
            await task_service.submit(services, _deploy_task(record, source, api))
        except BaseException as error:
            await services.blocking.run(
                repo(services).update,
                record.tenant_id,
                record.service_id,
                only_from=LIVE_STATUSES,
                status="failed",
                error=f"could not queue the deploy: {error}"[:500],
            )
            raise


async def deploy(
    services: Services, tenant_id: str, model_name: str, *, api: str = "gswarm_host", **options: Any
) -> list[ServiceRecord]:
    """Claims the replicas and queues their starts on their nodes (rows say `starting`)."""
    claimed = await services.blocking.run(lambda: claim_replicas(services, tenant_id, model_name, **options))
    await _send(services, claimed, api)
    return [record for record, _ in claimed]


# -- stop -----------------------------------------------------------------------------------------


def _wait_past(
    services: Services,
    tenant_id: str,
    service_id: str,
    seconds: float,
    statuses: tuple[str, ...] = LIVE_STATUSES,
) -> ServiceRecord | None:
    """The row once its status is out of `statuses` (or as it is after `seconds`)."""
    deadline = time.monotonic() + seconds
    while True:
        record = repo(services).get(tenant_id, service_id)
        if record is None or record.status not in statuses or time.monotonic() >= deadline:
            return record
        time.sleep(POLL_SECONDS)


async def stop(
    services: Services, tenant_id: str, service_id: str, *, api: str = "gswarm_host"
) -> ServiceRecord:
    """Queues the stop on the service's node and waits (bounded) until its process is gone."""
    record = await get(services, tenant_id, service_id)
    if not record.live:
        return record
    await task_service.submit(services, _undeploy_task(record, api))
    final = await services.blocking.run(_wait_past, services, tenant_id, service_id, STOP_WAIT_SECONDS)
    return final or record


async def stop_model(
    services: Services,
    tenant_id: str,
    model_name: str,
    *,
    node_id: str | None = None,
    device: str | None = None,
    api: str = "gswarm_host",
) -> list[str]:
    """Stops the model's live services (on `node_id` / `device` only, when given): what a
    forced delete does first, so no process keeps serving bytes that are being removed."""
    records = await services.blocking.run(list_sync, services, tenant_id, model_name)
    stopped = []
    for record in records:
        if not record.live or (node_id is not None and record.node_id != node_id):
            continue
        if device is not None and device not in (record.device, f"{record.node_id}:{record.device}"):
            continue
        await stop(services, tenant_id, record.service_id, api=api)
        stopped.append(record.service_id)
    return stopped


# -- predict ------------------------------------------------------------------------------------


class StoreBackend:
    """The router's hands: replicas from the services table, cold starts as deploy tasks."""

    def __init__(self, services: Services, serving: ServingSettings) -> None:
        self.services, self.serving = services, serving
        self.loop: asyncio.AbstractEventLoop | None = None

    def _replica(self, record: ServiceRecord) -> Replica:
        return Replica(
            record.service_id,
            record.model_name,
            record.node_id,
            record.device,
            record.url,
            bool(record.config.get("routed")),
        )

    def running(self, tenant_id: str, model_name: str) -> list[Replica]:
        rows = repo(self.services).for_tenant(tenant_id, model_name=model_name, statuses=("running",))
        nodes = _nodes(self.services)
        return [self._replica(r) for r in rows if _alive(r, nodes)]

    def locations(self, tenant_id: str, model_name: str) -> list[Place]:
        online = {n for n, node in _nodes(self.services).items() if node.status == "online"}
        return [
            Place(loc.node, loc.device)
            for loc in placement.locations(self.services, tenant_id, model_name)
            if loc.node in online
        ]

    def live_on(self, node_id: str) -> list[tuple[str, Replica]]:
        nodes = _nodes(self.services)
        return [
            (r.tenant_id, self._replica(r)) for r in repo(self.services).on_node(node_id) if _alive(r, nodes)
        ]

    def _submit(self, new: NewTask) -> None:
        if self.loop is None:
            raise ServingError("the router has no event loop to submit on")
        asyncio.run_coroutine_threadsafe(task_service.submit(self.services, new), self.loop).result(
            timeout=30
        )

    def start(self, tenant_id: str, model_name: str, place: Place) -> Replica:
        (record, source), *_ = claim_replicas(
            self.services,
            tenant_id,
            model_name,
            device=f"{place.node_id}:{place.device}",
            config={"routed": True},
        )
        self._submit(_deploy_task(record, source, "gswarm_host"))
        final = _wait_past(
            self.services,
            tenant_id,
            record.service_id,
            self.serving.start_timeout + 30,
            statuses=("starting",),
        )
        if final is None or final.status != "running":
            reason = final.error if final is not None else "its row disappeared"
            raise ReplicaFailed(
                f"cold start of {model_name!r} on {place.node_id}:{place.device} failed: {reason}"
            )
        return self._replica(final)

    def stop(self, tenant_id: str, replica: Replica) -> None:
        record = repo(self.services).get(tenant_id, replica.service_id)
        if record is None or not record.live:
            return
        self._submit(_undeploy_task(record, "gswarm_host"))
        _wait_past(self.services, tenant_id, replica.service_id, STOP_WAIT_SECONDS)


_ROUTERS: dict[int, tuple[weakref.ref[Services], Router, StoreBackend]] = {}
_ROUTERS_LOCK = threading.Lock()


def router_of(services: Services) -> tuple[Router, StoreBackend]:
    """One router per Services bundle (its usage book lives as long as the process)."""
    with _ROUTERS_LOCK:
        found = _ROUTERS.get(id(services))
        if found is None or found[0]() is not services:
            serving = settings()
            backend = StoreBackend(services, serving)
            found = _ROUTERS[id(services)] = (
                weakref.ref(services),
                Router(backend, serving.slots, serving.eviction),
                backend,
            )
        return found[1], found[2]


def _call(routed: Routed, inputs: Any, parameters: dict[str, Any], timeout: float) -> dict[str, Any]:
    try:
        answer = httpx.post(
            f"{routed.replica.url}/v1/predict",
            json={"inputs": inputs, "parameters": parameters},
            timeout=timeout,
        )
    except httpx.HTTPError as error:
        raise ReplicaUnreachable(
            f"replica {routed.replica.service_id} did not answer: {type(error).__name__}",
            service_id=routed.replica.service_id,
        ) from None
    try:
        body = answer.json()
    except ValueError:
        body = {}
    if answer.status_code == 400:
        raise InvalidServingRequest(str(body.get("error", "invalid inputs")), **(body.get("details") or {}))
    if answer.status_code != 200:
        raise ReplicaUnreachable(
            f"replica {routed.replica.service_id} answered {answer.status_code}",
            service_id=routed.replica.service_id,
        )
    return dict(body)


def predict_sync(
    services: Services, tenant_id: str, model_name: str, inputs: Any, parameters: dict[str, Any]
) -> dict[str, Any]:
    router, _ = router_of(services)
    routed = router.route(tenant_id, model_name)
    try:
        body = _call(routed, inputs, parameters, PREDICT_TIMEOUT_SECONDS)
    except ReplicaUnreachable:
        probe = probe_url(f"{routed.replica.url}/health", routed.replica.service_id)
        if probe.healthy:
            raise
        repo(services).update(
            tenant_id,
            routed.replica.service_id,
            only_from=LIVE_STATUSES,
            status="failed",
            error="stopped answering",
        )
        routed = router.route(tenant_id, model_name)  # once more: another replica, or a cold start
        body = _call(routed, inputs, parameters, PREDICT_TIMEOUT_SECONDS)
    replica = routed.replica
    return {
        "model_name": model_name,
        "outputs": body.get("outputs"),
        "service_id": replica.service_id,
        "node": replica.node_id,
        "device": replica.device,
        "cold_start": routed.cold,
        "load_time": routed.cold_start_ms / 1000.0 if routed.cold_start_ms is not None else None,
        "cold_start_ms": routed.cold_start_ms,
        "latency": body.get("latency"),
        "evicted": routed.evicted.service_id if routed.evicted is not None else None,
    }


async def predict(
    services: Services, tenant_id: str, model_name: str, inputs: Any, parameters: dict[str, Any] | None = None
) -> dict[str, Any]:
    _, backend = router_of(services)
    backend.loop = asyncio.get_running_loop()
    return await services.blocking.run(
        predict_sync, services, tenant_id, model_name, inputs, parameters or {}
    )
