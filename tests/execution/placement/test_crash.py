"""A `grey worker --node-id` process SIGKILLed in the middle of a move: no location is
listed for bytes that are not there (its DRAM/GPU copies stop being listed at once), and
the move is retried when the node comes back (or fails) — never half-done and reported done.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

from runtime.execution.placement import operations, peers
from runtime.execution.placement.devices import Key
from runtime.services import placement
from tests.execution.conftest import Deployment, Gateway, broker_url_for, start_worker_process
from tests.execution.placement.conftest import write_checkpoint

NODE = "crashnode"


async def wait_for(what: str, check: Any, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        assert time.monotonic() < deadline, f"no {what} after {timeout}s"
        await asyncio.sleep(0.1)


def node_up(gateway: Gateway) -> bool:
    peers.forget()
    record = placement.repo(gateway.services).get_node(NODE)
    return record is not None and peers.alive(record)


async def test_sigkill_mid_move_lists_no_missing_bytes_and_never_reports_a_half_move(
    make_gateway: Any, tmp_path: Path, monkeypatch: Any
) -> None:
    broker = broker_url_for("redis")
    monkeypatch.setenv("GREY_PLACEMENT_FILE_ROOTS", str(tmp_path.resolve()))  # the gateway checks sources too
    database = f"sqlite:///{tmp_path / 'grey.db'}"
    deployment = Deployment.write(tmp_path, broker, database, nodes=1, threads=2)
    gateway: Gateway = await make_gateway(
        broker_url=broker, database_url=database, cluster=deployment.cluster()
    )
    blob = write_checkpoint(tmp_path / "tiny.safetensors", floats=1024 * 1024)  # 4 MiB
    env = deployment.env(
        GREY_PLACEMENT_ROOT=str(tmp_path / "placement"),
        GREY_PLACEMENT_FILE_ROOTS=str(tmp_path.resolve()),
        GREY_PLACEMENT_PROBE_BYTES="0",
        GREY_CONTAINERS="off",
    )
    services = gateway.services
    worker = start_worker_process(env, 2, "--node-id", NODE)
    try:
        await wait_for("placement node", lambda: node_up(gateway))
        download = await placement.submit_download(
            services,
            "acme",
            "tiny",
            node_id=NODE,
            source_url=(tmp_path / "tiny.safetensors").as_uri(),
            device="disk",
        )
        assert (await gateway.wait(download.task_id, timeout=30))[0].status == "completed"
        copy = await placement.submit_transfer(
            services,
            "acme",
            "model",
            "tiny",
            source=placement.Place(NODE, "disk"),
            target=placement.Place(NODE, "gpu0"),
            keep_source=True,
        )
        assert (await gateway.wait(copy.task_id, timeout=30))[0].status == "completed"
        assert sorted(loc.place for loc in placement.locations(services, "acme", "tiny")) == [
            f"{NODE}:disk",
            f"{NODE}:gpu0",
        ]

        move = await placement.submit_transfer(
            services,
            "acme",
            "model",
            "tiny",
            source=placement.Place(NODE, "disk"),
            target=placement.Place(NODE, "dram"),
            keep_source=False,
            bandwidth_limit=len(blob) / 4.0,  # about four seconds
        )
        await wait_for(
            "move under way",
            lambda: (t := gateway.record(move.task_id)).status == "running" and t.progress > 0,
        )
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait()
        peers.forget()
        # At once: the GPU copy died with the process, the DRAM copy never completed.
        assert [loc.place for loc in placement.locations(services, "acme", "tiny")] == [f"{NODE}:disk"]
        assert gateway.record(move.task_id).status != "completed"

        worker = start_worker_process(env, 2, "--node-id", NODE)
        [task] = await gateway.wait(move.task_id, timeout=60)
        rows = placement.repo(services).locations("acme", "model", ["tiny"])
        assert f"{NODE}:gpu0" not in [row.place for row in rows]  # reconciled away at restart
        peers.forget()
        listed = [loc.place for loc in placement.locations(services, "acme", "tiny")]
        if task.status == "completed":  # retried on the restarted node, all the way
            assert task.attempt >= 2
            assert listed == [f"{NODE}:dram"]
            node = placement.repo(services).get_node(NODE)
            assert node is not None
            url = operations.object_url(node, Key("acme", "model", "tiny"), "dram")
            with urllib.request.urlopen(
                urllib.request.Request(url, headers={operations.TOKEN_HEADER: node.token})
            ) as got:
                assert got.read() == blob
        else:  # failed: the source is still where it was
            assert task.status == "failed" and listed == [f"{NODE}:disk"]
    finally:
        if worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
            try:
                worker.wait(timeout=15)
            except subprocess.TimeoutExpired:
                worker.kill()
