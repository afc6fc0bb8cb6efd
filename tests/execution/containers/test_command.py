"""The `podman run` line a task gets, and the settings an operator may give it."""

from __future__ import annotations

from typing import Any

import pytest

from runtime.execution.containers.command import ContainerSpec, run_argv
from runtime.execution.containers.settings import ContainerSettings
from tests.execution.conftest import Gateway

SPEC = ContainerSpec(
    name="grey-task_1-1",
    image="docker.io/library/ubuntu:latest",
    command="echo 'hi'; id",
    cpu=1.5,
    memory_gb=2.0,
)


def _option(argv: list[str], name: str) -> list[str]:
    return [argv[i + 1] for i, arg in enumerate(argv) if arg == name]


def test_a_task_container_gets_its_limits_and_nothing_of_the_host() -> None:
    argv = run_argv(ContainerSettings(), SPEC)
    assert argv[:5] == ["podman", "--runtime", "runc", "run", "--rm"]
    assert _option(argv, "--network") == ["none"]
    assert _option(argv, "--cpus") == ["1.5"]
    assert _option(argv, "--memory") == _option(argv, "--memory-swap") == [f"{2 * 2**30}b"]
    assert _option(argv, "--cap-drop") == ["all"]
    assert _option(argv, "--security-opt") == ["no-new-privileges"]
    assert sorted(_option(argv, "--ulimit")) == ["nofile=1024:1024", "nproc=1024:1024"]
    assert "--read-only" in argv
    for mount in ("-v", "--volume", "--mount", "--privileged", "--device"):
        assert mount not in argv
    # The command is one argument of `sh -c`, after the image: never parsed as options.
    assert argv[-5:] == ["--", SPEC.image, "/bin/sh", "-c", SPEC.command]


def test_the_storage_request_sizes_the_only_writable_place() -> None:
    spec = ContainerSpec(name="n", image="i", command="c", cpu=1, memory_gb=1, storage_gb=0.5)
    assert _option(run_argv(ContainerSettings(), spec), "--tmpfs") == [
        f"/tmp:rw,nosuid,nodev,size={2**29},mode=1777"
    ]
    zero = ContainerSpec(name="n", image="i", command="c", cpu=1, memory_gb=1, storage_gb=0)
    assert "size=1048576" in _option(run_argv(ContainerSettings(), zero), "--tmpfs")[0]  # never 0 (unlimited)
    writable = run_argv(ContainerSettings(writable_root=True), spec)
    assert "--read-only" not in writable and "--tmpfs" not in writable


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GREY_CONTAINER_NETWORK", "slirp4netns")
    monkeypatch.setenv("GREY_CONTAINER_RUNTIME", "")
    monkeypatch.setenv("GREY_CONTAINER_STORAGE_GB", "12.5")
    monkeypatch.setenv("GREY_CONTAINERS", "off")
    settings = ContainerSettings.from_env()
    assert settings.network == "slirp4netns" and settings.oci_runtime is None
    assert settings.storage_gb == 12.5 and settings.enabled is False
    assert run_argv(settings, SPEC)[:2] == ["podman", "run"]


@pytest.mark.parametrize("network", ["host", "container:abc", "ns:/proc/1/ns/net"])
def test_sharing_the_hosts_network_is_refused(network: str) -> None:
    with pytest.raises(ValueError, match="not allowed"):
        ContainerSettings(network=network)


async def test_a_worker_with_bad_container_settings_starts_and_says_why(
    make_gateway: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GREY_CONTAINER_NETWORK", "host")
    gateway: Gateway = await make_gateway()
    pool = gateway.pool()
    node = gateway.store.nodes.get(pool.node_id)
    assert node is not None and node.status == "active" and node.info["containers"] is False
    assert "invalid container settings" in node.info["containers_reason"]
    assert "not allowed" in node.info["containers_reason"]
