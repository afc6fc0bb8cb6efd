"""`grey loadtest`: a real cluster from a cluster config, Locust at a list of offered loads.

Starts its own redis-server (or uses `--broker-url`, e.g. RabbitMQ's amqp://), a PostgreSQL
database of its own, one `grey serve` gateway and one `grey worker` process per cpu node of
the config with its `threads_per_node` threads (bench/cluster.py's `GreyCluster`). Each level
draws its arrivals from the workload (loadtest/bed/schedule.py), lets Locust submit them on
time, waits until every task has finished, and reads the store for the figures.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.cluster import GreyCluster, PostgresDatabase, RedisServer
from loadtest.bed.kill import WorkerKill
from loadtest.bed.locust_run import start_locust, submit_stats
from loadtest.bed.processes import CpuMeter
from loadtest.bed.records import TaskRecord, figures, read_records, records_to_json
from loadtest.bed.schedule import draw_schedule, write_schedule
from runtime.config import ClusterConfig
from simulator.scaling import mean_service, mix_shares
from simulator.workload import Workload

Progress = Callable[[str, float, float], None]
"""(what, done, total): called while a level runs."""


@dataclass(frozen=True)
class Level:
    """An offered load: absolute tasks/s, or a fraction of the capacity measured first."""

    value: float
    of_capacity: bool = False

    def __str__(self) -> str:
        return f"{self.value * 100:g}%" if self.of_capacity else f"{self.value:g}/s"


def parse_levels(text: str) -> list[Level]:
    """'5,10,20' (tasks/s) or '50%,85%,100%' (of the capacity a probe level measures)."""
    levels = []
    for part in (p.strip() for p in text.split(",") if p.strip()):
        try:
            value = float(part.rstrip("%"))
        except ValueError:
            raise ValueError(f"levels: expected numbers (tasks/s) or percentages, got {part!r}") from None
        if value <= 0:
            raise ValueError(f"levels: expected values > 0, got {part!r}")
        levels.append(Level(value / 100, True) if part.endswith("%") else Level(value))
    if not levels:
        raise ValueError("levels: expected at least one")
    return levels


@dataclass
class BedOptions:
    protocol: str = "rest"  # rest | grpc
    seconds: float = 30.0  # per level
    users: int = 32
    seed: int = 1
    probe: float = 1.5  # the capacity probe offers this x the nominal capacity
    broker_url: str | None = None  # default: a redis-server of its own
    drain_seconds: float = 120.0
    kill_worker_at: float | None = None  # seconds into each measured level: SIGKILL a worker node
    kill_worker: int = 0  # which worker (0-based)
    extra: dict[str, Any] = field(default_factory=dict)


def nominal_capacity(cluster: ClusterConfig, workload: Workload) -> float:
    """Worker threads / mean service time: the capacity if nothing else cost anything."""
    pool = cluster.pool("cpu")
    service = mean_service(workload)
    return pool.nodes * pool.threads_per_node / service if service > 0 else float("inf")


@contextlib.contextmanager
def running_cluster(
    cluster_file: Path, cluster: ClusterConfig, workdir: Path, broker_url: str | None
) -> Iterator[GreyCluster]:
    """A cluster of its own: redis (unless a broker URL is given), a database, the processes."""
    pool = cluster.pool("cpu")
    if pool.nodes < 1:
        raise ValueError(f"{cluster_file}: pools.cpu.nodes must be >= 1 for a load run")
    # A fresh directory: the admin key is read from the gateway's log, which appends.
    shutil.rmtree(workdir, ignore_errors=True)
    redis = None if broker_url else RedisServer(workdir / "redis").start()
    database = PostgresDatabase(prefix="grey_bed_")
    grey = GreyCluster(
        database.url,
        broker_url or redis.url(0),  # type: ignore[union-attr]
        workdir,
        workers=pool.nodes,
        threads=pool.threads_per_node,
        env={"GREY_CLUSTER_CONFIG": str(cluster_file.resolve())},
    )
    try:
        yield grey.start()
    finally:
        grey.stop()
        database.drop()
        if redis is not None:
            redis.stop()


def _pids(grey: GreyCluster) -> dict[str, int]:
    found = {g.name: g.pid for g in grey.gateways if g.alive}
    found |= {w.name: w.pid for w in grey.workers if w.alive}
    return found


def run_level(
    grey: GreyCluster,
    workload: Workload,
    rate: float,
    index: int,
    run_id: str,
    options: BedOptions,
    out: Path,
    progress: Progress | None = None,
    kill: WorkerKill | None = None,
) -> tuple[dict[str, Any], list[TaskRecord]]:
    """One level: schedule, Locust, drain, read. Returns its figures and its task records.
    With `kill`, a worker's node process is killed during it (started with Locust)."""
    labels = {"bed": run_id, "level": str(index)}
    arrivals = draw_schedule(workload, rate, options.seconds, options.seed * 1000 + index)
    schedule = write_schedule(arrivals, out / "schedule.json")
    meter = CpuMeter(_pids(grey))
    grpc_port = grey.ports[0][1]
    locust = start_locust(
        options.protocol,
        schedule,
        labels,
        rest_url=grey.url(0),
        grpc_target=f"127.0.0.1:{grpc_port}",
        api_key=grey.key,
        users=options.users,
        seconds=options.seconds + 60,  # an upper bound: the users end the run with the schedule
        out=out,
    )
    started = time.monotonic()
    if kill is not None:
        kill.start()
    while locust.poll() is None:
        if progress is not None:
            progress("submitting", min(time.monotonic() - started, options.seconds), options.seconds)
        time.sleep(0.5)
    deadline = time.monotonic() + options.drain_seconds
    while True:
        records = read_records(grey.engine(), labels)
        left = sum(1 for r in records if r.status in ("pending", "running"))
        if progress is not None:
            progress("draining", len(records) - left, max(len(records), 1))
        if left == 0 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    if kill is not None:
        kill.join()
    result = {
        "index": index,
        "offered_rate": rate,
        "scheduled": len(arrivals),
        "figures": figures(records),
        "submit": submit_stats(out),
        "cpu_percent": meter.percent(),
        "wall_seconds": meter.wall(),
        "locust_exit": locust.returncode,
        "report": str(out / "report.html"),
        "records": f"{out.name}/records.json",
    }
    if kill is not None:
        result["kill"] = kill.measured(records, options.extra.get("heartbeat_timeout", 15.0))
    (out / "records.json").write_text(json.dumps(records_to_json(records)))
    return result, records


def saturated_capacity(workload: Workload, records: list[TaskRecord], threads: int) -> float:
    """Tasks/s the cluster completes at the workload's mix with every thread busy: threads over
    the mean thread time per task (each function's measured time between its stamps, weighted by
    the mix, plus the hold overhead outside them). Not the completions counted at the probe,
    which under strict priorities favour whichever function the high priorities run."""
    from simulator.calibration import hold_overhead, service_samples

    rows = records_to_json(records)
    measured = service_samples(rows)
    shares = mix_shares(workload)
    per_task = sum(
        share * statistics.fmean(measured[name]) for name, share in shares.items() if measured.get(name)
    )
    per_task += hold_overhead(rows, threads)
    return threads / per_task if per_task > 0 else 0.0


def run_bed(
    cluster_file: Path,
    cluster: ClusterConfig,
    workload: Workload,
    levels: list[Level],
    options: BedOptions,
    out: Path,
    progress: Callable[[str], Progress] | None = None,
) -> dict[str, Any]:
    """Every level on one cluster; a capacity probe first when a level is a percentage."""
    run_id = f"{time.strftime('%Y%m%d-%H%M%S')}"
    out.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {
        "run_id": run_id,
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "cluster": cluster.model_dump(mode="json"),
        "cluster_file": str(cluster_file),
        "workload": workload.model_dump(mode="json"),
        "options": {k: v for k, v in vars(options).items() if k != "extra"},
        "nominal_capacity": nominal_capacity(cluster, workload),
        "levels": [],
    }
    options.extra["heartbeat_timeout"] = cluster.heartbeat.timeout_seconds
    with running_cluster(cluster_file, cluster, out / "cluster", options.broker_url) as grey:
        capacity = None
        index = 0
        threads = cluster.pool("cpu").nodes * cluster.pool("cpu").threads_per_node
        if any(level.of_capacity for level in levels):
            rate = options.probe * results["nominal_capacity"]
            hook = progress(f"probe {rate:.1f}/s") if progress else None
            probe, records = run_level(grey, workload, rate, index, run_id, options, out / "probe", hook)
            probe["probe"] = True
            capacity = saturated_capacity(workload, records, threads)
            results["capacity"] = capacity
            results["levels"].append(probe)
            index += 1
        for level in levels:
            rate = level.value * capacity if level.of_capacity and capacity else level.value
            hook = progress(f"level {level} = {rate:.1f}/s") if progress else None
            kill = None
            if options.kill_worker_at is not None:
                kill = WorkerKill(grey, options.kill_worker, options.kill_worker_at)
            result, _ = run_level(
                grey, workload, rate, index, run_id, options, out / f"level-{index}", hook, kill
            )
            result["level"] = str(level)
            results["levels"].append(result)
            index += 1
    (out / "results.json").write_text(json.dumps(results, indent=1))
    return results
