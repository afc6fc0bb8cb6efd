"""Settings of container tasks, from the environment (`GREY_CONTAINER_*`).

- `GREY_CONTAINERS` (default `on`): `off` makes every worker report that it cannot run
  containers (the probe is not run).
- `GREY_CONTAINER_ENGINE` (default `podman`): the CLI that runs containers.
- `GREY_CONTAINER_RUNTIME` (default `runc`; empty: the engine's default): the OCI runtime
  (`crun` fails on this project's hybrid cgroup layout).
- `GREY_CONTAINER_NETWORK` (default `none`): the network a task's container gets. `none`
  leaves it only a loopback interface; an operator may allow `slirp4netns`, `pasta`,
  `bridge` or `private`. `host` and joining another namespace are refused.
- `GREY_CONTAINER_PULL` (default `missing`): podman's `--pull` policy (`never`: only
  images already on the node).
- `GREY_CONTAINER_PROBE_IMAGE` (default `localhost/grey-busybox:latest`): the image the
  node's probe runs `true` in; built from the `busybox-static` binary when missing and
  `GREY_CONTAINER_BUILD_PROBE_IMAGE` (default `on`).
- `GREY_CONTAINER_STORAGE_GB` (default: the free space of the engine's storage): the
  storage a node offers to `req_storage`.
- `GREY_CONTAINER_WRITABLE_ROOT` (default `off`): off, a container's root file system is
  read-only and its one writable place, `/tmp`, is a tmpfs of `req_storage` GB (charged to
  its memory limit too): the storage request is enforced. On: the image's file system is
  writable and the storage request is only reserved, not enforced.
- `GREY_CONTAINER_PIDS_LIMIT` (default 1024): processes a container may hold.
- `GREY_CONTAINER_LOG_BYTES` (default 4 MiB): the last bytes of a container's output kept
  as its log (the task's result keeps the last 64 KiB).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

#: Networks an operator may give task containers; anything sharing the host's is refused.
ALLOWED_NETWORKS = frozenset({"none", "slirp4netns", "pasta", "bridge", "private"})
#: The output a task's result keeps (its last bytes), as the task shape says.
OUTPUT_BYTES = 64 * 1024
DEFAULT_PROBE_IMAGE = "localhost/grey-busybox:latest"


def _flag(value: str | None, default: bool) -> bool:
    if value is None or not value.strip():
        return default
    return value.strip().lower() not in ("0", "off", "false", "no")


@dataclass(frozen=True)
class ContainerSettings:
    enabled: bool = True
    engine: str = "podman"
    oci_runtime: str | None = "runc"
    network: str = "none"
    pull: str = "missing"
    probe_image: str = DEFAULT_PROBE_IMAGE
    build_probe_image: bool = True
    storage_gb: float | None = None  # None: the engine storage's free space
    writable_root: bool = False
    pids_limit: int = 1024
    output_bytes: int = OUTPUT_BYTES
    log_bytes: int = 4 * 1024 * 1024
    stop_seconds: int = 2  # `podman stop -t`: SIGTERM, then SIGKILL after this long

    def __post_init__(self) -> None:
        if self.network not in ALLOWED_NETWORKS:
            allowed = ", ".join(sorted(ALLOWED_NETWORKS))
            raise ValueError(f"GREY_CONTAINER_NETWORK={self.network!r} is not allowed; one of {allowed}")
        if self.pull not in ("always", "missing", "never", "newer"):
            raise ValueError(f"GREY_CONTAINER_PULL={self.pull!r}: always, missing, never or newer")

    @classmethod
    def from_env(cls) -> ContainerSettings:
        env = os.environ
        storage = env.get("GREY_CONTAINER_STORAGE_GB", "").strip()
        runtime = env.get("GREY_CONTAINER_RUNTIME")
        return cls(
            enabled=_flag(env.get("GREY_CONTAINERS"), True),
            engine=env.get("GREY_CONTAINER_ENGINE", "").strip() or "podman",
            oci_runtime="runc" if runtime is None else (runtime.strip() or None),
            network=env.get("GREY_CONTAINER_NETWORK", "").strip() or "none",
            pull=env.get("GREY_CONTAINER_PULL", "").strip() or "missing",
            probe_image=env.get("GREY_CONTAINER_PROBE_IMAGE", "").strip() or DEFAULT_PROBE_IMAGE,
            build_probe_image=_flag(env.get("GREY_CONTAINER_BUILD_PROBE_IMAGE"), True),
            storage_gb=float(storage) if storage else None,
            writable_root=_flag(env.get("GREY_CONTAINER_WRITABLE_ROOT"), False),
            pids_limit=int(env.get("GREY_CONTAINER_PIDS_LIMIT", "1024")),
            log_bytes=int(env.get("GREY_CONTAINER_LOG_BYTES", str(4 * 1024 * 1024))),
        )

    def engine_argv(self) -> list[str]:
        """The engine and its global options (the OCI runtime)."""
        return [self.engine, *(["--runtime", self.oci_runtime] if self.oci_runtime else [])]
