"""From the attacker's side: what a container task cannot do, and how it is stopped."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from runtime.execution.containers.settings import ContainerSettings
from runtime.services.tasks import cancel
from tests.execution.conftest import Gateway
from tests.execution.containers.conftest import grey_containers, submit_container


def _host_address() -> str:
    """This machine's address on its default route (not loopback)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("10.255.255.255", 1))
            return str(probe.getsockname()[0])
        except OSError:
            return "127.0.0.1"


@pytest.fixture
def listener() -> Iterator[tuple[int, list[str]]]:
    """A TCP server on every host address; the peers that reached it."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("0.0.0.0", 0))
    server.listen()
    server.settimeout(0.2)
    reached: list[str] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, peer = server.accept()
            except OSError:
                continue
            reached.append(peer[0])
            conn.close()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1], reached
    stop.set()
    thread.join()
    server.close()


async def test_a_container_has_no_network(
    container_gateway: Gateway, listener: tuple[int, list[str]]
) -> None:
    port, reached = listener
    # The listener is reachable from the host itself (the test would prove nothing otherwise).
    with socket.create_connection(("127.0.0.1", port), timeout=2):
        pass
    time.sleep(0.3)
    assert reached, "the listener should have seen the host's own connection"
    reached.clear()
    host = _host_address()
    command = (
        "echo interfaces: $(ls /sys/class/net) .; "
        f"echo x | nc -w 2 127.0.0.1 {port}; echo nc_local=$?; "
        f"echo x | nc -w 2 {host} {port}; echo nc_host=$?"
    )
    task = await submit_container(container_gateway, command)
    [done] = await container_gateway.wait(task.task_id, timeout=60)
    assert done.result is not None, done.error
    output = done.result["output"]
    assert "interfaces: lo ." in output, output
    assert "nc_local=1" in output and "nc_host=1" in output, output
    assert reached == [], f"the container reached the host: {reached}"


async def test_host_files_are_invisible_to_a_container(container_gateway: Gateway, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("the-host-secret-4711")
    command = f"cat {secret}; echo cat=$?; ls {Path.cwd()}; echo ls=$?; echo MOUNTS; cat /proc/mounts"
    task = await submit_container(container_gateway, command)
    [done] = await container_gateway.wait(task.task_id, timeout=60)
    assert done.result is not None, done.error
    output = done.result["output"]
    assert "the-host-secret-4711" not in output
    assert "cat=0" not in output and "ls=0" not in output
    # No bind mount of a host path: only the engine's own files (hosts, resolv.conf, ...).
    mounts = output.split("MOUNTS", 1)[1]
    assert str(tmp_path) not in mounts and str(Path.cwd()) not in mounts
    assert " /work" not in mounts and " /home" not in mounts and " /root" not in mounts


async def test_a_container_allocating_beyond_its_memory_is_killed(container_gateway: Gateway) -> None:
    # 32 MiB allowed; the shell tries to hold 200 MB in a variable.
    command = "x=$(head -c 200000000 /dev/zero | tr '\\0' a); echo survived ${#x}"
    task = await submit_container(container_gateway, command, memory_gb=1 / 32)
    [done] = await container_gateway.wait(task.task_id, timeout=60)
    assert done.status == "failed", done.result
    assert done.result is not None and done.result["exit_code"] != 0
    assert "survived" not in done.result["output"]


async def test_the_cpu_request_is_the_containers_cpu_limit(container_gateway: Gateway) -> None:
    command = (
        "if [ -f /sys/fs/cgroup/cpu.max ]; then cat /sys/fs/cgroup/cpu.max; "
        "else echo $(cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us) $(cat /sys/fs/cgroup/cpu/cpu.cfs_period_us); fi"
    )
    task = await submit_container(container_gateway, command, cpu=0.5)
    [done] = await container_gateway.wait(task.task_id, timeout=60)
    assert done.result is not None and done.status == "completed", (done.error, done.result)
    quota, period = done.result["output"].split()[:2]
    assert int(quota) / int(period) == pytest.approx(0.5)


async def test_writes_beyond_the_storage_request_fail(container_gateway: Gateway) -> None:
    # 1 MiB of storage: /tmp (the only writable place) is full after it; / is read-only.
    command = "dd if=/dev/zero of=/tmp/f bs=1024 count=4096; echo dd=$?; touch /etc/x; echo touch=$?"
    task = await submit_container(container_gateway, command, storage_gb=1 / 1024)
    [done] = await container_gateway.wait(task.task_id, timeout=60)
    assert done.result is not None, done.error
    output = done.result["output"]
    assert "dd=1" in output and "No space left on device" in output
    assert "touch=1" in output


async def test_a_timeout_stops_the_container(
    container_gateway: Gateway, container_settings: ContainerSettings
) -> None:
    task = await submit_container(container_gateway, "echo started; sleep 120", timeout_seconds=2)
    started = time.monotonic()
    [done] = await container_gateway.wait(task.task_id, timeout=30)
    assert done.status == "timeout"
    assert time.monotonic() - started < 15
    await _until_gone(container_settings, task.task_id)
    log = container_gateway.store.logs.get("acme", task.task_id)
    assert log is not None and "started" in log.text


async def test_cancel_stops_the_container(
    container_gateway: Gateway, container_settings: ContainerSettings
) -> None:
    task = await submit_container(container_gateway, "sleep 120")
    await container_gateway.wait(task.task_id, statuses=("running",), timeout=30)
    deadline = time.monotonic() + 30
    while not grey_containers(container_settings, task.task_id):  # it is being created
        assert time.monotonic() < deadline, "the container never started"
        await asyncio.sleep(0.1)
    await cancel(container_gateway.services, "acme", task.task_id, "test")
    await _until_gone(container_settings, task.task_id)
    [done] = await container_gateway.wait(task.task_id, timeout=5)
    assert done.status == "cancelled"


async def _until_gone(settings: ContainerSettings, task_id: str, within: float = 15.0) -> None:
    deadline = time.monotonic() + within
    while grey_containers(settings, task_id):
        assert time.monotonic() < deadline, f"container of {task_id} still there: {grey_containers(settings)}"
        await asyncio.sleep(0.2)
