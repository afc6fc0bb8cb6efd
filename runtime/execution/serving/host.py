"""A node's serving host: the replica processes one node process spawned, their ports and rows.

One per node id per process (`serving_host(node_id, boot_id)`), living in the process that
holds the node's bytes (its worker, or `grey serve` for the embedded node): `gswarm.deploy`
and `gswarm.undeploy` run here. Its order keeps the store truthful: the row is claimed
(`starting`, port reserved) before the process starts; it says `running` only once the
process answered its health check (the model is loaded then), `failed` with the reason
when it exits or never answers, `stopped` once it is gone. On creation it marks the live
rows of an earlier boot of the node failed: their processes exited with it (each runner
watches its parent and exits when it goes).
"""

from __future__ import annotations

import atexit
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from dataclasses import dataclass, replace
from typing import Any

import httpx

from runtime.execution.serving.errors import (
    InvalidServingRequest,
    NoFreePort,
    PortConflict,
    ReplicaFailed,
    ServiceNotFound,
)
from runtime.execution.serving.frameworks import check_framework
from runtime.execution.serving.runner import TOKEN_VARIABLE
from runtime.execution.serving.settings import MAX_PORT, MIN_PORT, ServingSettings
from runtime.store.coltypes import utc_now
from runtime.store.model_services import (
    LIVE_STATUSES,
    ModelServiceRepository,
    PortTaken,
    ServiceExists,
    ServiceRecord,
    service_id_of,
)

logger = logging.getLogger("grey.serving")

STOP_GRACE_SECONDS = 5.0
HEALTH_POLL_SECONDS = 0.05
RESTARTED = "the node's worker restarted: its serving process ended with it"

_HOSTS: dict[str, ServingHost] = {}
_HOSTS_LOCK = threading.Lock()
_CLOSED_AT_EXIT = False  # close_hosts registered with atexit (by the process's first host)


def serving_host(
    node_id: str, repo: ModelServiceRepository, boot_id: str, settings: ServingSettings | None = None
) -> ServingHost:
    """This process's serving host of `node_id` (made, and reconciled, on first use). The
    process's first one has its replicas stopped when the process exits (`close_hosts`)."""
    global _CLOSED_AT_EXIT
    with _HOSTS_LOCK:
        if not _CLOSED_AT_EXIT:
            atexit.register(close_hosts)
            _CLOSED_AT_EXIT = True
        host = _HOSTS.get(node_id)
        if host is None or host.boot_id != boot_id:
            host = _HOSTS[node_id] = ServingHost(
                node_id, repo, boot_id, settings or ServingSettings.from_env()
            )
            host.reconcile()
        return host


def local_host(node_id: str) -> ServingHost | None:
    return _HOSTS.get(node_id)


def close_hosts() -> None:
    """Stops every replica this process spawned (its node stops, or the process exits)."""
    with _HOSTS_LOCK:
        hosts = list(_HOSTS.values())
    for host in hosts:
        host.close()


def port_is_free(host: str, port: int) -> bool:
    """Whether a listener could bind `port` on this machine right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


@dataclass(frozen=True, slots=True)
class Launch:
    """What a deploy asks the node for (decided by the facade: tenant, model, device, source)."""

    tenant_id: str
    model_name: str
    device: str
    source: str  # a path on this node or the byte server URL of a DRAM/GPU location
    framework: str = "builtin"
    port: int | None = None
    emulated: bool = False
    config: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Probe:
    healthy: bool
    uptime: float | None = None
    load_time: float | None = None
    requests_served: int = 0


def check_port(port: object) -> int:
    if not isinstance(port, int) or isinstance(port, bool) or not MIN_PORT <= port <= MAX_PORT:
        raise InvalidServingRequest(
            f"port {port!r} is out of range: {MIN_PORT}-{MAX_PORT} (privileged ports are refused)",
            field="port",
        )
    return port


def pick_port(
    repo: ModelServiceRepository,
    settings: ServingSettings,
    node_id: str,
    requested: int | None,
    *,
    check_bind: bool,
    neighbours: tuple[str, ...] = (),
) -> int:
    """The port asked for (PortConflict if a live service or, checked here, a process has it)
    or the first free one of the node's range. `neighbours`: nodes on the same machine (their
    live services' ports are this machine's too, bound or about to be)."""
    in_use = repo.ports_in_use(node_id)
    for neighbour in neighbours:
        in_use |= repo.ports_in_use(neighbour)

    def free(port: int) -> bool:
        return port not in in_use and (not check_bind or port_is_free(settings.bind, port))

    if requested is not None:
        port = check_port(requested)
        if not free(port):
            raise PortConflict(f"port {port} of node {node_id} is taken", node=node_id, port=port)
        return port
    first, last = settings.ports
    for port in range(first, last + 1):
        if free(port):
            return port
    raise NoFreePort(f"no free serving port on node {node_id} in {first}-{last}", node=node_id)


def claim(
    repo: ModelServiceRepository,
    settings: ServingSettings,
    node_id: str,
    boot_id: str | None,
    launch: Launch,
    *,
    check_bind: bool,
    neighbours: tuple[str, ...] = (),
) -> ServiceRecord:
    """Reserves a port of `node_id` and writes the replica's `starting` row (no process yet):
    `check_bind` when this machine is the node's (a port another program holds is refused)."""
    framework = check_framework(launch.framework)
    for _ in range(8):  # another deploy may take the port between the pick and the claim
        port = pick_port(repo, settings, node_id, launch.port, check_bind=check_bind, neighbours=neighbours)
        record = ServiceRecord(
            tenant_id=launch.tenant_id,
            service_id=service_id_of(launch.model_name, node_id, port),
            model_name=launch.model_name,
            node_id=node_id,
            device=launch.device,
            port=port,
            url=settings.url(port),
            status="starting",
            framework=framework,
            emulated=launch.emulated,
            config=dict(launch.config or {}),
            holder=boot_id,
        )
        try:
            return repo.claim(record)
        except (PortTaken, ServiceExists):
            if launch.port is not None:
                raise PortConflict(
                    f"port {port} of node {node_id} is taken", node=node_id, port=port
                ) from None
    raise NoFreePort(f"could not reserve a serving port on node {node_id}", node=node_id)


class ServingHost:
    def __init__(
        self, node_id: str, repo: ModelServiceRepository, boot_id: str, settings: ServingSettings
    ) -> None:
        self.node_id, self.repo, self.boot_id, self.settings = node_id, repo, boot_id, settings
        self._processes: dict[tuple[str, str], subprocess.Popen[bytes]] = {}
        self._logs: dict[tuple[str, str], Any] = {}
        self._lock = threading.Lock()

    # -- lifecycle --------------------------------------------------------------------------

    def reconcile(self) -> list[ServiceRecord]:
        """Live rows of an earlier boot of this node are failed: their processes are gone."""
        failed = self.repo.fail_other_boots(self.node_id, self.boot_id, RESTARTED)
        if failed:
            logger.info(
                "serving node %s: %d services of an earlier boot marked failed", self.node_id, len(failed)
            )
        return failed

    def claim(self, launch: Launch) -> ServiceRecord:
        """Reserves a port (checked bindable here) and writes the `starting` row."""
        return claim(self.repo, self.settings, self.node_id, self.boot_id, launch, check_bind=True)

    def spawn(self, record: ServiceRecord, source: str) -> ServiceRecord:
        """Starts the serving process of a claimed row and waits until it answers (or fails)."""
        key = (record.tenant_id, record.service_id)
        parsed = urllib.parse.urlparse(source)
        env = dict(os.environ)
        query = urllib.parse.parse_qs(parsed.query)
        if parsed.scheme in ("http", "https") and "token" in query:  # keep the token off `ps`
            env[TOKEN_VARIABLE] = query.pop("token")[0]
            source = urllib.parse.urlunparse(parsed._replace(query=urllib.parse.urlencode(query, doseq=True)))
        command = [
            sys.executable,
            "-m",
            "runtime.execution.serving.runner",
            "--source",
            source,
            "--port",
            str(record.port),
            "--host",
            self.settings.bind,
            "--framework",
            record.framework,
            "--model-name",
            record.model_name,
            "--service-id",
            record.service_id,
            "--parent-pid",
            str(os.getpid()),
        ]
        log = tempfile.TemporaryFile()  # noqa: SIM115  (closed by _end, with the process)
        process = subprocess.Popen(
            command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        with self._lock:
            self._processes[key] = process
            self._logs[key] = log
        self.repo.update(record.tenant_id, record.service_id, pid=process.pid, holder=self.boot_id)
        try:
            probe = self._await_health(record, process)
        except ReplicaFailed as error:
            self._end(key, process)
            self.repo.update(
                record.tenant_id,
                record.service_id,
                only_from=LIVE_STATUSES,
                status="failed",
                error=error.message,
            )
            raise
        now = utc_now()
        self.repo.update(
            record.tenant_id,
            record.service_id,
            only_from=("starting",),
            status="running",
            load_time=probe.load_time,
            started_at=now,
        )
        return replace(record, status="running", pid=process.pid, load_time=probe.load_time, started_at=now)

    def _tail(self, key: tuple[str, str]) -> str:
        log = self._logs.get(key)
        if log is None:
            return ""
        try:
            log.seek(0)
            lines = log.read().decode(errors="replace").strip().splitlines()
        except (OSError, ValueError):
            return ""
        return " | ".join(lines[-3:])

    def _await_health(self, record: ServiceRecord, process: subprocess.Popen[bytes]) -> Probe:
        deadline = time.monotonic() + self.settings.start_timeout
        url = f"http://{self.settings.bind}:{record.port}/health"
        with httpx.Client(timeout=1.0) as client:
            while time.monotonic() < deadline:
                if process.poll() is not None:
                    tail = self._tail((record.tenant_id, record.service_id))
                    raise ReplicaFailed(
                        f"serving process exited ({process.returncode}) before answering: {tail}"[:2000],
                        service_id=record.service_id,
                    )
                try:
                    answer = client.get(url)
                    if answer.status_code == 200:
                        body = answer.json()
                        if body.get("service_id") == record.service_id:
                            return Probe(
                                True,
                                body.get("uptime"),
                                body.get("load_time"),
                                int(body.get("requests_served", 0)),
                            )
                except httpx.HTTPError:
                    pass
                time.sleep(HEALTH_POLL_SECONDS)
        raise ReplicaFailed(
            f"serving process did not answer within {self.settings.start_timeout:.0f}s",
            service_id=record.service_id,
        )

    def start(self, launch: Launch) -> ServiceRecord:
        """Claim, then spawn: the replica running, or ReplicaFailed (row failed)."""
        return self.spawn(self.claim(launch), launch.source)

    def stop(self, tenant_id: str, service_id: str) -> ServiceRecord:
        """Ends the serving process (SIGTERM, then SIGKILL after a grace); the port is free after."""
        record = self.repo.get(tenant_id, service_id)
        if record is None or record.node_id != self.node_id:
            raise ServiceNotFound(f"service {service_id!r} not found", service_id=service_id)
        if not record.live:
            return record
        self.repo.update(tenant_id, service_id, only_from=LIVE_STATUSES, status="stopping")
        key = (tenant_id, service_id)
        with self._lock:
            process = self._processes.get(key)
        if process is not None:
            self._end(key, process)
        elif record.pid and record.holder == self.boot_id:
            _terminate_pid(record.pid)
        self.repo.update(tenant_id, service_id, only_from=LIVE_STATUSES, status="stopped", pid=None)
        return replace(record, status="stopped", pid=None)

    def _end(self, key: tuple[str, str], process: subprocess.Popen[bytes]) -> None:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=STOP_GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=STOP_GRACE_SECONDS)
        with self._lock:
            self._processes.pop(key, None)
            log = self._logs.pop(key, None)
        if log is not None:
            log.close()

    def probe(self, record: ServiceRecord) -> Probe:
        """Whether the replica answers its health check now (a dead process is marked failed)."""
        key = (record.tenant_id, record.service_id)
        with self._lock:
            process = self._processes.get(key)
        if process is not None and process.poll() is not None and record.live:
            self.repo.update(
                record.tenant_id,
                record.service_id,
                only_from=LIVE_STATUSES,
                status="failed",
                error=f"serving process exited ({process.returncode})",
            )
            return Probe(False)
        return probe_url(f"http://{self.settings.bind}:{record.port}/health", record.service_id)

    def close(self) -> None:
        """This process is stopping: its replicas stop with it, their rows say so."""
        with self._lock:
            keys = list(self._processes)
        for tenant_id, service_id in keys:
            try:
                self.stop(tenant_id, service_id)
            except Exception:
                logger.warning("could not stop service %s", service_id, exc_info=True)
        with _HOSTS_LOCK:
            if _HOSTS.get(self.node_id) is self:
                del _HOSTS[self.node_id]


def probe_url(url: str, service_id: str, timeout: float = 1.0) -> Probe:
    try:
        answer = httpx.get(url, timeout=timeout)
        body = answer.json() if answer.status_code == 200 else {}
    except (httpx.HTTPError, ValueError):
        return Probe(False)
    if body.get("service_id") != service_id:
        return Probe(False)
    return Probe(True, body.get("uptime"), body.get("load_time"), int(body.get("requests_served", 0)))


def _terminate_pid(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        return
