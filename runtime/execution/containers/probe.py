"""Can this node run containers? It tries: the engine, the OCI runtime, then a real
`run ... true` of the probe image with the limits tasks get.

The answer (and why not) goes in the node's info at registration; container tasks are
sent only to the queues of nodes whose probe succeeded. A process probes once per
settings (several worker pools of one process share the answer).
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path

from runtime.execution.containers.command import ContainerSpec, remove_argv, run_argv
from runtime.execution.containers.image import ImageUnavailable, ensure_busybox_image, image_exists
from runtime.execution.containers.settings import ContainerSettings

logger = logging.getLogger("grey.containers")

PROBE_TIMEOUT_SECONDS = 60.0


@dataclass(frozen=True)
class Capability:
    """What a node's probe found: can it run containers (else why not), and the storage
    it offers to tasks (GB)."""

    available: bool
    reason: str | None
    storage_gb: float


def _run(argv: list[str], timeout: float = PROBE_TIMEOUT_SECONDS) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)


def _tail(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return " | ".join(lines[-3:])[-500:]


def storage_root(settings: ContainerSettings) -> Path:
    """Where the engine keeps images and containers (its graph root), else the cwd."""
    if shutil.which(settings.engine):
        try:
            done = _run([settings.engine, "info", "--format", "{{.Store.GraphRoot}}"], 30)
        except (OSError, subprocess.TimeoutExpired):
            done = None
        if done is not None and done.returncode == 0 and done.stdout.strip():
            path = Path(done.stdout.strip())
            while not path.exists() and path != path.parent:
                path = path.parent
            return path
    return Path.cwd()


def storage_gb(settings: ContainerSettings) -> float:
    """The storage a node offers: the setting, else the free space of the engine's storage."""
    if settings.storage_gb is not None:
        return settings.storage_gb
    return round(shutil.disk_usage(storage_root(settings)).free / 2**30, 2)


def _why_not(settings: ContainerSettings) -> str | None:
    """None when a container ran; else the reason it could not."""
    if not settings.enabled:
        return "disabled by GREY_CONTAINERS=off"
    if shutil.which(settings.engine) is None:
        return f"{settings.engine} is not installed (apt-get install podman runc)"
    if settings.oci_runtime and shutil.which(settings.oci_runtime) is None:
        return f"OCI runtime {settings.oci_runtime} is not installed (apt-get install {settings.oci_runtime})"
    image = settings.probe_image
    try:
        if settings.build_probe_image:
            ensure_busybox_image(settings, image)
        elif not image_exists(settings, image):
            return f"probe image {image} is not on this node"
    except (ImageUnavailable, OSError, subprocess.SubprocessError) as error:
        return f"probe image {image} unavailable: {error}"
    spec = ContainerSpec(
        name=f"grey-probe-{uuid.uuid4().hex[:12]}",
        image=image,
        command="true",
        cpu=0.5,
        memory_gb=0.0625,
        storage_gb=0.001,
        timeout_seconds=PROBE_TIMEOUT_SECONDS,
    )
    try:
        done = _run(run_argv(settings, spec), PROBE_TIMEOUT_SECONDS + 10)
    except subprocess.TimeoutExpired:
        _run(remove_argv(settings, spec.name), 30)
        return f"probe container did not finish within {PROBE_TIMEOUT_SECONDS:g}s"
    except OSError as error:
        return f"probe failed: {error}"
    if done.returncode != 0:
        return f"probe container failed (exit {done.returncode}): {_tail(done.stderr + done.stdout)}"
    return None


def probe(settings: ContainerSettings) -> Capability:
    """Tries to run a container now."""
    reason = _why_not(settings)
    if reason is not None:
        logger.warning("this node cannot run containers: %s", reason)
    return Capability(available=reason is None, reason=reason, storage_gb=storage_gb(settings))


_CACHE: dict[ContainerSettings, Capability] = {}
_LOCK = threading.Lock()


def probe_once(settings: ContainerSettings) -> Capability:
    """`probe`, once per process and settings."""
    with _LOCK:
        found = _CACHE.get(settings)
        if found is None:
            found = _CACHE[settings] = probe(settings)
        return found
