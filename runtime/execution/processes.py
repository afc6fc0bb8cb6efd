"""`grey worker`: worker processes with Dramatiq's CLI semantics, each one a node.

The parent starts `--processes` children (a GPU pool: one per GPU, pinned with
CUDA_VISIBLE_DEVICES; a tee pool: one by default, each a TEE node of its own, see
runtime.execution.tee), restarts any that dies, and stops them all on SIGINT/SIGTERM.
Each child runs one `WorkerPool` (`--threads` worker threads on the pool's `--queues`).

Stopping is bounded by `GREY_SHUTDOWN_GRACE_SECONDS` (default 20): a child takes no new
work, lets running tasks finish for the grace, then hands what still runs back to pending
for another worker, and exits (grace + ~2 s); the parent kills a child still there
`KILL_AFTER_GRACE_SECONDS` after the grace.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass

from runtime.config import PRIORITIES, ClusterConfig, load_cluster_config
from runtime.execution.brokers import broker_kind
from runtime.execution.gpu import GpuDevice, discover, emulated, pin_environment
from runtime.settings import Settings

logger = logging.getLogger("grey.worker")

DEVICE_VARIABLE = "GREY_WORKER_DEVICE"
RESTART_DELAY_SECONDS = 1.0
#: A child still running this long after the grace is killed (its leases bring its tasks back).
KILL_AFTER_GRACE_SECONDS = 5.0


class WorkerStartError(RuntimeError):
    """The pool cannot start (no shared broker, no GPU without --emulate-gpus...)."""


@dataclass(frozen=True)
class WorkerPlan:
    pool: str
    processes: int
    threads: int
    priorities: tuple[str, ...]
    devices: tuple[GpuDevice, ...] = ()
    node_id: str | None = None  # a placement node (gswarm): one process, queues node.<node_id>.*


def cluster_of(settings: Settings) -> ClusterConfig:
    if settings.cluster_config is not None:
        return load_cluster_config(settings.cluster_config)
    return ClusterConfig.default()


def plan(
    settings: Settings,
    pool: str,
    processes: int | None,
    threads: int | None,
    queues: str | None,
    emulate_gpus: int | None,
) -> WorkerPlan:
    """What `grey worker` would start; WorkerStartError says why it cannot."""
    if broker_kind(settings.broker_url) == "embedded":
        raise WorkerStartError(
            "grey worker needs a broker it can share with the gateway: set GREY_BROKER_URL to "
            "redis://... or amqp://... (the embedded broker runs its workers inside grey serve)"
        )
    if pool not in ("cpu", "gpu", "tee"):
        raise WorkerStartError(f"unknown pool {pool!r}: use cpu, gpu or tee")
    priorities = PRIORITIES
    if queues:
        chosen = tuple(q.strip() for q in queues.split(",") if q.strip())
        unknown = [q for q in chosen if q not in PRIORITIES]
        if unknown:
            raise WorkerStartError(
                f"unknown queue priority {', '.join(unknown)}: use {', '.join(PRIORITIES)}"
            )
        priorities = tuple(p for p in PRIORITIES if p in chosen)
    pool_threads = threads or cluster_of(settings).pool(pool).threads_per_node
    if pool == "cpu":
        return WorkerPlan(pool, processes or os.cpu_count() or 1, pool_threads, priorities)
    if pool == "tee":  # simulation mode: each process a TEE node with its own key and quotes
        return WorkerPlan(pool, processes or 1, pool_threads, priorities)
    devices = discover()
    if not devices:
        if not emulate_gpus:
            raise WorkerStartError(
                "no GPU found by nvidia-ml-py on this machine: the gpu pool will not start; "
                "pass --emulate-gpus N to run GPU tasks on the CPU (the task records say emulated)"
            )
        devices = emulated(emulate_gpus)
    elif emulate_gpus:
        logger.warning("--emulate-gpus ignored: %d real GPUs found", len(devices))
    return WorkerPlan(pool, len(devices), pool_threads, priorities, tuple(devices))


def _child_command(plan_: WorkerPlan) -> list[str]:
    return [
        sys.executable,
        "-m",
        "runtime.execution.processes",
        "--pool",
        plan_.pool,
        "--threads",
        str(plan_.threads),
        "--queues",
        ",".join(plan_.priorities),
        *(["--node-id", plan_.node_id] if plan_.node_id else []),
    ]


def _child_env(device: GpuDevice | None) -> dict[str, str]:
    env = dict(os.environ)
    if device is not None:
        env.update(pin_environment(device))
        env[DEVICE_VARIABLE] = json.dumps(device.as_dict())
    return env


def supervise(plan_: WorkerPlan, stop: threading.Event | None = None, grace_seconds: float = 20.0) -> None:
    """Start the children and keep them running until SIGINT/SIGTERM (or `stop`); then
    stop them, each within `grace_seconds` (they read it from GREY_SHUTDOWN_GRACE_SECONDS)
    plus `KILL_AFTER_GRACE_SECONDS`."""
    stop = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
    slots: list[GpuDevice | None] = list(plan_.devices) or [None] * plan_.processes
    children: list[subprocess.Popen[bytes] | None] = [None] * len(slots)
    try:
        while not stop.is_set():
            for index, device in enumerate(slots):
                child = children[index]
                if child is None or child.poll() is not None:
                    if child is not None:
                        logger.warning(
                            "worker process %d exited (%s); restarting", child.pid, child.returncode
                        )
                        time.sleep(RESTART_DELAY_SECONDS)
                    children[index] = subprocess.Popen(_child_command(plan_), env=_child_env(device))
            stop.wait(0.5)
    finally:
        for child in children:
            if child is not None and child.poll() is None:
                child.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace_seconds + KILL_AFTER_GRACE_SECONDS
        for child in children:
            if child is not None:
                try:
                    child.wait(timeout=max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    child.kill()


def child_main(argv: list[str] | None = None) -> None:
    """One worker process: a WorkerPool until SIGINT/SIGTERM."""
    from runtime.execution.runtime import Runtime
    from runtime.execution.workers import PoolOptions
    from runtime.store import Store

    parser = argparse.ArgumentParser(prog="grey-worker-process")
    parser.add_argument("--pool", default="cpu")
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--queues", default=",".join(PRIORITIES))
    parser.add_argument("--node-id", default=None)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(process)d %(name)s %(levelname)s %(message)s"
    )
    device = None
    if os.environ.get(DEVICE_VARIABLE):
        device = GpuDevice(**json.loads(os.environ[DEVICE_VARIABLE]))
    settings = Settings.from_env()
    store = Store.open(settings.database_url)
    runtime = Runtime(settings, store, cluster_of(settings))
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    runtime.bus.start(tasks=False)  # a worker needs cancel requests, not every doorbell
    priorities = tuple(p for p in args.queues.split(",") if p)
    pool = runtime.start_pool(
        PoolOptions(
            pool=args.pool,
            threads=args.threads,
            priorities=priorities,
            device=device,
            node_id=args.node_id,
            placement=bool(args.node_id),
        )
    )
    logger.info(
        "worker %s: pool %s, %d threads, queues %s", pool.node_id, args.pool, args.threads, pool.queues
    )
    stop.wait()
    logger.info("worker %s stopping (grace %.1fs)", pool.node_id, settings.shutdown_grace_seconds)
    runtime.close()  # the pool's bounded stop: see WorkerPool.stop
    store.dispose()


if __name__ == "__main__":
    child_main()


def placement_plan(plan_: WorkerPlan, node_id: str, processes: int | None) -> WorkerPlan:
    """`grey worker --node-id`: one process, the placement node `node_id` (its DRAM and GPU
    bytes live in that process), consuming its pool's queues and its node queues."""
    from dataclasses import replace

    from runtime.execution.placement.errors import PlacementError
    from runtime.execution.placement.names import check_node

    try:
        check_node(node_id)
    except PlacementError as error:
        raise WorkerStartError(str(error)) from None
    if processes not in (None, 1):
        raise WorkerStartError("a placement node is one process: --node-id takes --processes 1")
    return replace(plan_, processes=1, node_id=node_id, devices=plan_.devices[:1])
