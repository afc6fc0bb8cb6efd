"""Container tasks go only to nodes whose probe ran a container; otherwise, and when no such
node is big enough, the submit is refused with `Unschedulable` saying why."""

from __future__ import annotations

from typing import Any

import pytest

from runtime.execution.containers.probe import probe
from runtime.execution.containers.settings import ContainerSettings
from runtime.execution.errors import InvalidPayload, Unschedulable
from runtime.execution.submission import check_payload
from tests.execution.conftest import Gateway
from tests.execution.containers.conftest import submit_container


async def test_without_a_node_that_can_run_containers_the_submit_is_unschedulable(
    make_gateway: Any,
) -> None:
    gateway: Gateway = await make_gateway()
    with pytest.raises(Unschedulable, match="no cpu worker is active"):
        await submit_container(gateway, "true")
    pool = gateway.pool(containers=ContainerSettings(enabled=False))
    assert not any(queue.endswith(".containers") for queue in pool.queues)
    with pytest.raises(Unschedulable, match="can run containers: 1 active, disabled by GREY_CONTAINERS=off"):
        await submit_container(gateway, "true")
    node = gateway.store.nodes.get(pool.node_id)
    assert node is not None and node.info["containers"] is False
    assert node.info["containers_reason"] == "disabled by GREY_CONTAINERS=off"


async def test_a_request_bigger_than_every_container_node_is_unschedulable(
    make_gateway: Any, container_settings: ContainerSettings
) -> None:
    gateway: Gateway = await make_gateway()
    pool = gateway.pool(containers=container_settings)
    assert "cpu.normal.containers" in pool.queues
    node = gateway.store.nodes.get(pool.node_id)
    assert node is not None and node.info["containers"] is True
    total = node.info["capacity"]
    for too_big in (
        {"cpu": total["cpu_cores"] + 1},
        {"memory_gb": total["memory_gb"] * 2},
        {"storage_gb": 1e9},
    ):
        with pytest.raises(Unschedulable, match="has the resources requested"):
            await submit_container(gateway, "true", **too_big)
    with pytest.raises(
        Unschedulable, match="No active gpu worker can run containers: no gpu worker is active"
    ):
        await submit_container(gateway, "true", gpu=1.0)


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"image": "busybox"}, "payload.command"),
        ({"command": "true"}, "payload.image"),
        ({"image": "busybox --privileged", "command": "true"}, "payload.image"),
        ({"image": "-v/:/host", "command": "true"}, "payload.image"),
        ({"image": "busybox", "command": "a\x00b"}, "payload.command"),
        ({"image": "busybox", "command": "true", "mounts": ["/:/host"]}, "payload.mounts"),
        ({"image": "busybox", "command": ""}, "payload.command"),
    ],
)
def test_a_container_payload_that_could_never_run_is_invalid(payload: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidPayload) as raised:
        check_payload("container", payload, None)
    assert raised.value.details["field"] == field


async def test_a_container_request_without_cpu_or_memory_is_invalid(
    make_gateway: Any, container_settings: ContainerSettings
) -> None:
    gateway: Gateway = await make_gateway()
    gateway.pool(containers=container_settings)
    with pytest.raises(InvalidPayload, match="cpu > 0 and memory_gb > 0"):
        await submit_container(gateway, "true", cpu=0.0)


def test_the_probe_says_why_a_node_cannot_run_containers() -> None:
    missing = probe(ContainerSettings(engine="no-such-engine"))
    assert (
        not missing.available
        and missing.reason == "no-such-engine is not installed (apt-get install podman runc)"
    )
    runtime = probe(ContainerSettings(oci_runtime="no-such-runtime"))
    assert not runtime.available and runtime.reason is not None
    assert "no-such-runtime" in runtime.reason or "not installed" in runtime.reason
    assert missing.storage_gb > 0


def test_the_probe_really_runs_a_container(container_settings: ContainerSettings) -> None:
    assert probe(container_settings).available
    absent = ContainerSettings(
        probe_image="localhost/grey-absent:never", build_probe_image=False, pull="never"
    )
    found = probe(absent)
    assert (
        not found.available and found.reason == "probe image localhost/grey-absent:never is not on this node"
    )
    # An OCI runtime that cannot start anything (as crun on the hybrid cgroup layout here).
    broken = ContainerSettings(
        probe_image=container_settings.probe_image, build_probe_image=False, oci_runtime="false"
    )
    failed = probe(broken)
    assert (
        not failed.available
        and failed.reason is not None
        and failed.reason.startswith("probe container failed")
    )


async def test_the_intake_checks_a_container_payload_whichever_api_sent_it(
    make_gateway: Any, container_settings: ContainerSettings
) -> None:
    gateway: Gateway = await make_gateway()
    gateway.pool(containers=container_settings)
    with pytest.raises(InvalidPayload) as raised:
        await submit_container(gateway, "true", image="busybox --privileged")
    assert raised.value.details["field"] == "payload.image"
