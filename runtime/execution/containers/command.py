"""The `podman run` line of a task's container: its limits and what it is denied.

No host path is ever mounted; the network is the operator's setting (default none);
every capability is dropped and privileges cannot be gained; rlimits are given lower
explicitly (raising them is refused on this project's machines); `--timeout` makes the
engine kill a container its worker no longer watches (a worker that died).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from runtime.execution.containers.settings import ContainerSettings

#: Label on every task container, so leftovers can be found whatever their name.
TASK_LABEL = "io.grey.task"
ATTEMPT_LABEL = "io.grey.attempt"
#: Which store (cluster) the task belongs to: a sweep leaves other clusters' containers alone.
STORE_LABEL = "io.grey.store"
NAME_PREFIX = "grey-"
#: The smallest scratch tmpfs (a size of 0 would mean unlimited to the kernel).
MIN_SCRATCH_BYTES = 1024 * 1024
#: The engine's own kill comes this long after the task's timeout (the worker stops it first).
ENGINE_TIMEOUT_MARGIN_SECONDS = 30


def store_label(url: object) -> str:
    """A short fingerprint of the store's URL (the password left out)."""
    text = url.render_as_string(hide_password=True) if hasattr(url, "render_as_string") else str(url)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def container_name(task_id: str, attempt: int) -> str:
    """`grey-<task_id>-<attempt>`: a restarted node or a sweep can find and remove it."""
    return f"{NAME_PREFIX}{task_id}-{attempt}"


def _bytes(gb: float) -> int:
    return int(gb * 2**30)


@dataclass(frozen=True)
class ContainerSpec:
    """One container to run: what the task asked for, in CloudAI's units (cores, GB)."""

    name: str
    image: str
    command: str
    cpu: float
    memory_gb: float
    storage_gb: float = 0.0
    timeout_seconds: float = 300.0
    labels: dict[str, str] = field(default_factory=dict)


def run_argv(settings: ContainerSettings, spec: ContainerSpec) -> list[str]:
    """The full command line; the command runs under `/bin/sh -c` in the image."""
    memory = max(_bytes(spec.memory_gb), 6 * 1024 * 1024)  # the engine refuses less than 6 MiB
    argv = [
        *settings.engine_argv(),
        "run",
        "--rm",
        "--name",
        spec.name,
        "--pull",
        settings.pull,
        "--network",
        settings.network,
        "--ulimit",
        "nofile=1024:1024",
        "--ulimit",
        "nproc=1024:1024",
        "--pids-limit",
        str(settings.pids_limit),
        "--memory",
        f"{memory}b",
        "--memory-swap",
        f"{memory}b",  # no swap: the memory limit is the limit
        "--security-opt",
        "no-new-privileges",
        "--cap-drop",
        "all",
        "--timeout",
        str(int(spec.timeout_seconds) + ENGINE_TIMEOUT_MARGIN_SECONDS),
        "--log-driver",
        "none",  # the worker reads the output from the pipe; nothing kept on the node
    ]
    if spec.cpu > 0:
        argv += ["--cpus", f"{spec.cpu:g}"]
    if not settings.writable_root:
        scratch = max(_bytes(spec.storage_gb), MIN_SCRATCH_BYTES)
        argv += [
            "--read-only",
            "--read-only-tmpfs=false",
            "--tmpfs",
            f"/tmp:rw,nosuid,nodev,size={scratch},mode=1777",
        ]
    for key, value in sorted({**spec.labels}.items()):
        argv += ["--label", f"{key}={value}"]
    return [*argv, "--", spec.image, "/bin/sh", "-c", spec.command]


def stop_argv(settings: ContainerSettings, name: str) -> list[str]:
    return [*settings.engine_argv(), "stop", "--ignore", "-t", str(settings.stop_seconds), name]


def remove_argv(settings: ContainerSettings, name: str) -> list[str]:
    return [*settings.engine_argv(), "rm", "--force", "--ignore", "--time", "0", name]
