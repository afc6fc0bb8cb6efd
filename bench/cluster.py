"""The processes `make bench-runtime` and `make bench-runtime-breakdown` measure, started one way.

- `Grey`: a gateway process (REST, runtime started, no in-process workers) and a worker
  process (`python -m runtime.execution.processes --pool cpu`) on one Redis broker, sharing
  a store the parent also opens to read what happened.
- `BareDramatiq`: a bare Dramatiq worker process with one no-op actor, and the sender of its
  messages, as the baseline.

The children run this module: `python -m bench.cluster gateway PORT DATABASE_URL BROKER_URL
KEY_FILE` and `python -m bench.cluster bare-worker BROKER_URL COUNT THREADS`.

For the chaos suite (`loadtest/chaos`), the cluster as an operator runs it, each piece
startable, stoppable and killable on its own:

- `GreyCluster`: `grey serve` gateways (`python -m runtime.cli serve`, GREY_WORKER_THREADS=0)
  and `grey worker` processes (`python -m runtime.cli worker --processes 1 --threads N`),
  each a `Child` in a session of its own with its output in a log file;
- `RedisServer`: a redis-server of its own on a free port, no persistence;
- `PostgresDatabase`: a database of its own (`grey_chaos_<random>`), which can refuse
  connections for a while, dropped at the end.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from bench.serving import free_port, listening

ROOT = Path(__file__).resolve().parents[1]
REDIS_URL = os.environ.get("GREY_BENCH_REDIS_URL", "redis://127.0.0.1:6379/10")
STOP_SECONDS = 20


def flush(url: str) -> None:
    """Empties the Redis database the broker uses, so no earlier run's messages remain."""
    import redis

    redis.Redis.from_url(url).flushdb()


def _stop(*processes: subprocess.Popen[Any]) -> None:
    for process in processes:
        process.terminate()
    for process in processes:
        try:
            process.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()


# -- the parent's side ----------------------------------------------------------------------


class Grey:
    """A gateway process and a worker process on Redis, with a store they share."""

    def __init__(self, database_url: str, threads: int, workdir: Path, start_timeout: float = 30) -> None:
        from runtime.store import Store

        flush(REDIS_URL)
        self.database_url, self.port = database_url, free_port()
        key_file = workdir / "key"
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.gateway = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bench.cluster",
                "gateway",
                str(self.port),
                database_url,
                REDIS_URL,
                str(key_file),
            ],
            cwd=ROOT,
            env=env,
        )
        worker_env = {**env, "GREY_BROKER_URL": REDIS_URL, "GREY_DATABASE_URL": database_url}
        self.worker = subprocess.Popen(
            [sys.executable, "-m", "runtime.execution.processes", "--pool", "cpu", "--threads", str(threads)],
            cwd=ROOT,
            env=worker_env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.store = Store.open(database_url)
        deadline = time.monotonic() + start_timeout
        while not (key_file.exists() and key_file.read_text() and listening(self.port) and self._workers()):
            exited = [name for name, p in self._processes().items() if p.poll() is not None]
            if exited or time.monotonic() > deadline:
                self.stop()
                raise SystemExit(f"gateway or worker did not start (exited: {', '.join(exited) or 'none'})")
            time.sleep(0.2)
        self.key = key_file.read_text()

    def _processes(self) -> dict[str, subprocess.Popen[Any]]:
        return {"gateway": self.gateway, "worker": self.worker}

    def _workers(self) -> int:
        return len([n for n in self.store.nodes.list(role="worker") if n.status == "active"])

    def stop(self) -> None:
        _stop(self.worker, self.gateway)
        self.store.dispose()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def counts(self) -> dict[str, int]:
        return self.store.figures.count_by_status()

    def wait_idle(self, timeout: float = 120) -> dict[str, int]:
        deadline = time.monotonic() + timeout
        while True:
            counts = self.counts()
            if counts["pending"] == 0 and counts["running"] == 0:
                return counts
            if time.monotonic() > deadline:
                raise SystemExit(f"tasks did not finish: {counts}")
            time.sleep(0.1)

    def span(self) -> tuple[int, float]:
        """(completed tasks, seconds from the first submit to the last completion)."""
        from sqlalchemy import func, select

        from runtime.store.schema import tasks

        stmt = select(func.count(), func.min(tasks.c.created_at), func.max(tasks.c.completed_at)).where(
            tasks.c.status == "completed"
        )
        with self.store.engine.connect() as conn:
            count, first, last = conn.execute(stmt).one()
        return count, (last - first).total_seconds()


class BareDramatiq:
    """A bare Dramatiq worker process expecting `count` no-op messages, ready to receive them."""

    def __init__(self, count: int, threads: int) -> None:
        flush(REDIS_URL)
        self.count = count
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench.cluster", "bare-worker", REDIS_URL, str(count), str(threads)],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        if self.process.stdout.readline().strip() != "ready":
            _stop(self.process)
            raise SystemExit("the bare Dramatiq worker did not start")

    @property
    def pid(self) -> int:
        return self.process.pid

    def send(self) -> float:
        """Sends the `count` messages; returns the time the first was sent."""
        import dramatiq
        from dramatiq.brokers.redis import RedisBroker

        broker = RedisBroker(url=REDIS_URL)
        actor = dramatiq.Actor(
            lambda: None, broker=broker, actor_name="bench_noop", queue_name="bench", priority=0, options={}
        )
        started = time.time()
        for _ in range(self.count):
            actor.send()
        return started

    def finished(self) -> float:
        """Waits until the worker has run them all; returns the time the last one ended.

        The worker and all its threads stay up (their /proc entries readable) until `wait`."""
        assert self.process.stdout is not None
        line = self.process.stdout.readline().split()  # "done <time>"
        return float(line[1])

    def wait(self) -> None:
        """Tells the worker to stop (closes its stdin) and waits until it has exited."""
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(timeout=30)


# -- a real cluster of `grey` processes (the chaos suite) ------------------------------------

POSTGRES_ADMIN_URL = os.environ.get(
    "GREY_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
KEY_PATTERN = re.compile(r"(grey_api_key_\S+)")


def child_pids(pid: int) -> list[int]:
    """The direct children of `pid` (Linux /proc), e.g. the node process of a `grey worker`."""
    found: list[int] = []
    try:
        threads = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for thread in threads:
        try:
            found += [int(p) for p in Path(f"/proc/{pid}/task/{thread}/children").read_text().split()]
        except OSError:
            continue
    return sorted(set(found))


class Child:
    """One process this parent started, in a session of its own, its output in a log file.

    Its session makes it a process group of its own: `kill` ends it and every process it
    started (a `grey worker` and its node processes), by that group's id.
    """

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log: Path, cwd: Path = ROOT) -> None:
        self.name, self.argv, self.env, self.log, self.cwd = name, argv, env, log, cwd
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Child:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as out:
            out.write(f"---- {time.strftime('%H:%M:%S')} start: {' '.join(self.argv)}\n".encode())
            out.flush()
            self.process = subprocess.Popen(
                self.argv,
                cwd=self.cwd,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None, f"{self.name} was never started"
        return self.process.pid

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def wait(self, timeout: float) -> int | None:
        """The exit code, or None if still running after `timeout` seconds."""
        if self.process is None:
            return None
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def terminate(self, timeout: float = STOP_SECONDS) -> float | None:
        """SIGTERM, then SIGKILL (the whole group) after `timeout`; the seconds it took to
        exit on its own, or None if it had to be killed (or was not running)."""
        if not self.alive:
            return None
        started = time.monotonic()
        self.process.send_signal(signal.SIGTERM)  # type: ignore[union-attr]
        if self.wait(timeout) is not None:
            self._reap_group()
            return time.monotonic() - started
        self.kill()
        return None

    def kill(self) -> None:
        """SIGKILL to the process and everything it started (its process group)."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.wait(10)

    def _reap_group(self) -> None:
        # Children it left behind (none, normally) go with it.
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.process.pid, signal.SIGKILL)

    def log_text(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""


def wait_healthy(url: str, process: Child, timeout: float) -> None:
    """Until `url`/health answers 200; RuntimeError (with the end of the process's log) if
    `process` exits first or `timeout` seconds pass."""
    import httpx

    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return
        if not process.alive or time.monotonic() > deadline:
            why = "exited" if not process.alive else f"not ready after {timeout:.0f} s"
            tail = process.log_text()[-3000:]
            raise RuntimeError(f"{process.name} {why} (no 200 from {url}/health): see {process.log}\n{tail}")
        time.sleep(0.1)


class RedisServer:
    """A redis-server of our own on 127.0.0.1 (no persistence): `stop`/`kill` lose every key."""

    def __init__(self, workdir: Path, port: int | None = None) -> None:
        self.workdir, self.port = workdir, port or free_port()
        self.child: Child | None = None

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self, timeout: float = 10) -> RedisServer:
        self.workdir.mkdir(parents=True, exist_ok=True)
        argv = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
        argv += ["--appendonly", "no", "--dir", str(self.workdir), "--protected-mode", "yes"]
        self.child = Child("redis", argv, dict(os.environ), self.workdir / "redis.log").start()
        deadline = time.monotonic() + timeout
        while not self.ping():
            if not self.child.alive or time.monotonic() > deadline:
                self.child.kill()
                raise RuntimeError(f"redis-server did not start on port {self.port}: see {self.child.log}")
            time.sleep(0.05)
        return self

    def ping(self) -> bool:
        import redis

        try:
            return bool(redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=1).ping())
        except redis.RedisError:
            return False

    @property
    def alive(self) -> bool:
        return self.child is not None and self.child.alive

    def stop(self) -> None:
        """A clean stop (SIGTERM; nothing is saved)."""
        if self.child is not None:
            self.child.terminate(10)

    def kill(self) -> None:
        if self.child is not None:
            self.child.kill()

    def flush(self) -> None:
        import redis

        redis.Redis(host="127.0.0.1", port=self.port).flushall()


class PostgresDatabase:
    """A database of our own (`grey_chaos_<random>`) on a PostgreSQL server; `drop` removes it."""

    def __init__(self, admin_url: str = POSTGRES_ADMIN_URL, prefix: str = "grey_chaos_") -> None:
        import secrets

        from sqlalchemy import create_engine, text
        from sqlalchemy.engine import make_url

        self._text = text
        self.admin_url = make_url(admin_url)
        self.admin = create_engine(
            self.admin_url, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3}
        )
        self.name = f"{prefix}{secrets.token_hex(5)}"
        try:
            with self.admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{self.name}"'))
        except Exception:
            self.admin.dispose()
            raise

    @property
    def url(self) -> str:
        return self.admin_url.set(database=self.name).render_as_string(hide_password=False)

    def refuse_connections(self) -> int:
        """No new connections, and every open one terminated; how many were terminated."""
        with self.admin.connect() as conn:
            conn.execute(self._text(f'ALTER DATABASE "{self.name}" ALLOW_CONNECTIONS false'))
            rows = conn.execute(
                self._text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = :name AND pid <> pg_backend_pid()"
                ),
                {"name": self.name},
            ).all()
        return len(rows)

    def allow_connections(self) -> None:
        with self.admin.connect() as conn:
            conn.execute(self._text(f'ALTER DATABASE "{self.name}" ALLOW_CONNECTIONS true'))

    def drop(self) -> None:
        try:
            with self.admin.connect() as conn:
                conn.execute(self._text(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))
        finally:
            self.admin.dispose()


class GreyCluster:
    """`grey serve` gateways and `grey worker` processes on one store and one broker.

    Gateways: `python -m runtime.cli serve` with GREY_WORKER_THREADS=0 (no in-process pool);
    workers: `python -m runtime.cli worker --processes 1 --threads N`, whose supervisor
    restarts a node process that dies. `env` is added to every process's environment
    (GREY_TASK_MODULES, GREY_CLUSTER_CONFIG, ...). The admin key is the one the first
    gateway prints on the empty store. Logs: `workdir/<name>.log`.
    """

    def __init__(
        self,
        database_url: str,
        broker_url: str,
        workdir: Path,
        *,
        gateways: int = 1,
        workers: int = 1,
        threads: int = 4,
        env: dict[str, str] | None = None,
    ) -> None:
        self.database_url, self.broker_url, self.workdir = database_url, broker_url, workdir
        self.threads = threads
        self.env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "PYTHONUNBUFFERED": "1",
            "GREY_HOME": str(workdir / "home"),
            "GREY_DATABASE_URL": database_url,
            "GREY_BROKER_URL": broker_url,
            "GREY_WORKER_THREADS": "0",
            # Grey Distributed only: the other APIs' listeners have fixed default ports, on
            # which a second gateway of the cluster could not bind.
            "GREY_APIS": "grey",
            **(env or {}),
        }
        self.ports = [(free_port(), free_port()) for _ in range(gateways)]
        self.gateways = [self._gateway(i) for i in range(gateways)]
        self.workers = [self._worker(i) for i in range(workers)]
        self.key = ""
        self._engine: Any = None

    def _gateway(self, index: int) -> Child:
        rest, grpc = self.ports[index]
        argv = [sys.executable, "-m", "runtime.cli", "serve", "--host", "127.0.0.1"]
        argv += ["--rest-port", str(rest), "--grpc-port", str(grpc)]
        return Child(f"gateway-{index + 1}", argv, self.env, self.workdir / f"gateway-{index + 1}.log")

    def _worker(self, index: int) -> Child:
        argv = [sys.executable, "-m", "runtime.cli", "worker", "--processes", "1"]
        argv += ["--threads", str(self.threads)]
        return Child(f"worker-{index + 1}", argv, self.env, self.workdir / f"worker-{index + 1}.log")

    # -- starting -------------------------------------------------------------------------

    def start(self, timeout: float = 60) -> GreyCluster:
        """Every process at once; ready when each gateway answers and each worker's node is
        registered. The key: the one a gateway printed on finding no key in the store."""
        try:
            deadline = time.monotonic() + timeout
            for child in [*self.gateways, *self.workers]:
                child.start()
            for index in range(len(self.gateways)):
                self.wait_gateway(index, deadline - time.monotonic())
            for gateway in self.gateways:
                if not self.key and (found := KEY_PATTERN.search(gateway.log_text())):
                    self.key = found.group(1)
            if not self.key:
                raise RuntimeError(f"no gateway printed an admin key (store not empty?): {self.workdir}")
            self.wait_workers(deadline - time.monotonic())
        except BaseException:
            self.stop()
            raise
        return self

    def start_gateway(self, index: int, timeout: float = 60) -> float:
        """(Re)starts gateway `index` on its ports; the seconds until it answered /health."""
        started = time.monotonic()
        self.gateways[index] = self._gateway(index)
        self.gateways[index].start()
        self.wait_gateway(index, timeout)
        return time.monotonic() - started

    def wait_gateway(self, index: int, timeout: float) -> None:
        wait_healthy(self.url(index), self.gateways[index], timeout)

    def restart_worker(self, index: int, timeout: float = 60) -> None:
        self.workers[index] = self._worker(index)
        self.workers[index].start()
        self.wait_workers(timeout)

    def wait_workers(self, timeout: float) -> None:
        """Until each worker's node process is registered as an active node."""
        deadline = time.monotonic() + timeout
        while True:
            nodes = self.worker_nodes()
            if all(any(pid in nodes for pid in self.node_pids(i)) for i in range(len(self.workers))):
                return
            dead = [w.name for w in self.workers if not w.alive]
            if dead or time.monotonic() > deadline:
                why = f"{', '.join(dead)} exited" if dead else f"workers not ready after {timeout:.0f} s"
                raise RuntimeError(f"{why}: see {self.workdir}")
            time.sleep(0.2)

    # -- looking at it --------------------------------------------------------------------

    def url(self, index: int = 0) -> str:
        return f"http://127.0.0.1:{self.ports[index][0]}"

    def node_pids(self, index: int = 0) -> list[int]:
        """The node processes of worker `index` (the children of its supervisor)."""
        worker = self.workers[index]
        return child_pids(worker.pid) if worker.alive else []

    def engine(self) -> Any:
        """An engine on the store for reading (made once)."""
        if self._engine is None:
            from runtime.store import create_store_engine

            self._engine = create_store_engine(self.database_url)
        return self._engine

    def worker_nodes(self) -> dict[int, str]:
        """pid -> node id of the active worker nodes the store lists."""
        from sqlalchemy import select
        from sqlalchemy.exc import SQLAlchemyError

        from runtime.store.schema import nodes

        stmt = select(nodes.c.node_id, nodes.c.info).where(
            nodes.c.role == "worker", nodes.c.status == "active"
        )
        try:
            with self.engine().connect() as conn:
                rows = conn.execute(stmt).all()
        except SQLAlchemyError:
            return {}  # not created yet, or the store is down
        return {int((info or {}).get("pid", 0)): node_id for node_id, info in rows}

    def stop(self, timeout: float = STOP_SECONDS) -> dict[str, float | None]:
        """SIGTERM to every running process (workers first), SIGKILL past `timeout`: the
        seconds each took to exit, None for those that had to be killed."""
        running = [child for child in [*self.workers, *self.gateways] if child.alive]
        took = {child.name: child.terminate(timeout) for child in running}
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None
        return took


# -- the children ---------------------------------------------------------------------------


def serve_gateway(port: int, database_url: str, broker_url: str, key_file: Path) -> None:
    """A gateway process (REST) with its runtime started, no in-process workers."""
    from bench.serving import UNLIMITED, bench_key, serve_rest
    from runtime.gateway.app import Platform
    from runtime.services import Services
    from runtime.settings import Settings

    settings = Settings(database_url=database_url, broker_url=broker_url, rest_port=port, worker_threads=0)
    services = Services.open(settings, UNLIMITED)
    platform = Platform.build(services)
    platform.start_runtime(worker_threads=0)
    key_file.write_text(bench_key(services))
    serve_rest(platform.rest, port)


def bare_worker(broker_url: str, count: int, threads: int) -> None:
    """A bare Dramatiq worker: a no-op actor; prints the time the count-th message ended, then
    keeps its threads until its stdin closes."""
    import dramatiq
    from dramatiq.brokers.redis import RedisBroker

    broker = RedisBroker(url=broker_url)
    done = threading.Event()
    lock = threading.Lock()
    seen = [0]

    def noop() -> None:
        with lock:
            seen[0] += 1
            if seen[0] == count:
                print(f"done {time.time()}", flush=True)
                done.set()

    dramatiq.Actor(noop, broker=broker, actor_name="bench_noop", queue_name="bench", priority=0, options={})
    worker = dramatiq.Worker(broker, worker_threads=threads, worker_timeout=100)
    worker.start()
    print("ready", flush=True)
    done.wait()
    sys.stdin.read()
    worker.stop(timeout=1000)


if __name__ == "__main__":
    command = sys.argv[1] if len(sys.argv) > 1 else ""
    if command == "gateway":
        serve_gateway(int(sys.argv[2]), sys.argv[3], sys.argv[4], Path(sys.argv[5]))
    elif command == "bare-worker":
        bare_worker(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    else:
        sys.exit(__doc__)
