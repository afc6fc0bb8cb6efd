"""A gateway with one in-process worker pool that runs containers in the test image."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from typing import Any

import pytest

from runtime.execution.containers.settings import ContainerSettings
from runtime.store import NewTask, TaskRecord
from tests.execution.conftest import Gateway


@pytest.fixture
async def container_gateway(
    make_gateway: Callable[..., Any], container_settings: ContainerSettings
) -> Gateway:
    gateway: Gateway = await make_gateway()
    gateway.pool(threads=4, containers=container_settings)
    return gateway


async def submit_container(
    gateway: Gateway,
    command: str,
    *,
    image: str = "localhost/grey-busybox:test",
    cpu: float = 0.5,
    memory_gb: float = 0.125,
    storage_gb: float = 0.01,
    gpu: float = 0.0,
    timeout_seconds: int = 60,
) -> TaskRecord:
    """A container task as the CloudAI contract stores it (the agreed task shape)."""
    new = NewTask(
        tenant_id="acme",
        type="container",
        payload={"image": image, "command": command},
        resources={"cpu": cpu, "memory_gb": memory_gb, "storage_gb": storage_gb, "gpu": gpu},
        pool="gpu" if gpu > 0 else "cpu",
        api="cloudai",
        timeout_seconds=timeout_seconds,
    )
    return await gateway.services.runtime.intake.submit(new)


def grey_containers(settings: ContainerSettings, task_id: str = "") -> list[str]:
    """Names of the engine's containers (running or not) named for `task_id` (all task ones)."""
    done = subprocess.run(
        [
            *settings.engine_argv(),
            "ps",
            "--all",
            "--filter",
            f"name=grey-{task_id}",
            "--format",
            "{{.Names}}",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return [name for name in done.stdout.split() if name.startswith("grey-task")]
