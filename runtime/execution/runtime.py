"""The runtime of one process: broker, actors, event bus, and (once started) nodes and pools.

Building it opens nothing that runs: `Services.open` builds one so the gateway can send
messages, and tests drive such a gateway with no worker at all. `start()` registers the
gateway node, re-enqueues what the store holds as unfinished, and (embedded default)
starts the in-process cpu pool and, asked to, a tee pool. Every node it starts (gateway,
pools) competes for the coordinator lease and, holding it, runs the reconciler
(runtime.execution.reconciler).
"""

from __future__ import annotations

import logging
import threading
import time

import dramatiq

from runtime.config import ClusterConfig
from runtime.execution import brokers
from runtime.execution.actors import Dispatch, retry_when
from runtime.execution.batches import send_missing_items
from runtime.execution.events import EventBus, open_bus
from runtime.execution.functions import load_builtins
from runtime.execution.intake import Intake
from runtime.execution.nodes import DOWN, NodeAgent, NodeSpec, Reaper
from runtime.execution.queues import all_queues
from runtime.execution.reconciler import Reconciler
from runtime.execution.submission import SubmissionChecks
from runtime.execution.tee.node import TeeNode
from runtime.execution.tee.service import TeeService
from runtime.execution.tee.settings import TeeSettings
from runtime.execution.webhooks import WebhookDeliverer, WebhookSettings
from runtime.execution.workers import PoolOptions, WorkerPool
from runtime.settings import Settings
from runtime.store import LeaseRecord, NodeRecord, Store, TaskRecord
from runtime.store.coltypes import utc_now
from runtime.store.records import PENDING, RUNNING

logger = logging.getLogger("grey.runtime")

NODE_CACHE_SECONDS = 1.0


class Runtime:
    def __init__(self, settings: Settings, store: Store, cluster: ClusterConfig) -> None:
        self.settings, self.store, self.cluster = settings, store, cluster
        self.kind = brokers.broker_kind(settings.broker_url)
        retry = cluster.retry
        stack = brokers.middleware(
            retry_when,
            min_backoff_ms=max(1, int(retry.backoff_base_seconds * 1000)),
            max_backoff_ms=max(1, int(retry.backoff_max_seconds * 1000)),
        )
        self.broker: dramatiq.Broker = brokers.open_broker(settings.broker_url, stack)
        self.dispatch = Dispatch(self.broker)
        checks = SubmissionChecks(store, self.live_nodes, cluster)
        self.intake = Intake(store, self.dispatch.send_many, checks)  # the gateway's submits
        self.bus: EventBus = open_bus(settings.broker_url, store)
        store.listeners.append(self.bus)
        self.reconciler = Reconciler(
            store,
            self.dispatch,
            self.resend,
            cluster.heartbeat,
            ready=lambda queues: brokers.ready_counts(self.broker, queues),
            retention=cluster.retention,
        )
        self.pools: list[WorkerPool] = []
        # The gateway's side of the TEE (verdicts, fresh attestations); tee pools started
        # here use the same settings.
        self.tee = TeeService(TeeSettings.from_env(), store, self.tee_nodes)
        # Webhook deliveries: sent by whichever process's node holds the coordinator lease.
        self.webhooks = WebhookDeliverer(store, WebhookSettings.from_env(), self.node_ids)
        self.agent: NodeAgent | None = None
        self.started = False
        self._nodes: tuple[float, list[NodeRecord]] = (0.0, [])

    # -- lifecycle ------------------------------------------------------------------------

    def start(
        self,
        *,
        gateway_node_id: str | None = None,
        address: str = "",
        worker_threads: int = 0,
        recover: bool = True,
        tee_threads: int = 0,
    ) -> None:
        """Bus listener, gateway node + reaper, restart recovery, the in-process cpu pool
        (`worker_threads`) and tee pool (`tee_threads`)."""
        if self.started:
            return
        self.started = True
        # Task modules load now (seconds: numpy and friends), not in the first submit's
        # check, which runs on the gateway's event loop.
        load_builtins()
        self.bus.start()
        own: list[str] = []
        if gateway_node_id is not None:
            spec = NodeSpec.of_this_machine(gateway_node_id, "gateway", address=address)
            self.agent = NodeAgent(
                self.store, spec, self.cluster.heartbeat, reaper=self.reaper(), reconciler=self.reconciler
            )
            self.agent.start()
            self.webhooks.start()
            own += [
                gateway_node_id,
                embedded_node_id(gateway_node_id),
                embedded_node_id(gateway_node_id, "tee"),
            ]
        if recover:
            sent = self.recover(own)
            if sent:
                logger.info("re-enqueued %d unfinished tasks from the store", sent)
        if worker_threads > 0:
            node_id = embedded_node_id(gateway_node_id) if gateway_node_id else None
            self.start_pool(PoolOptions(pool="cpu", threads=worker_threads, node_id=node_id, address=address))
        if tee_threads > 0:
            node_id = embedded_node_id(gateway_node_id, "tee") if gateway_node_id else None
            options = PoolOptions(
                pool="tee", threads=tee_threads, node_id=node_id, address=address, tee=self.tee.settings
            )
            self.start_pool(options)

    def start_pool(self, options: PoolOptions) -> WorkerPool:
        pool = WorkerPool(
            options,
            store=self.store,
            dispatch=self.dispatch,
            bus=self.bus,
            cluster=self.cluster,
            reaper=self.reaper(),
            reconciler=self.reconciler,
        ).start()
        self.pools.append(pool)
        self.webhooks.start()  # a worker process's node may hold the coordinator lease
        self.forget_nodes()  # submits see the new node at once
        return pool

    def stop(self, grace_seconds: float | None = None) -> None:
        """Stops the intake, the pools (all at once: each gives its running tasks
        `grace_seconds`, default the settings' `shutdown_grace_seconds`, then hands back
        what still runs), the gateway node and the bus."""
        self.intake.stop()
        self.webhooks.stop()
        self.reconciler.retention.stop()  # a pass under way ends after its batch
        grace = self.settings.shutdown_grace_seconds if grace_seconds is None else grace_seconds
        stopping = [
            threading.Thread(target=pool.stop, args=(grace,), name="grey-pool-stop") for pool in self.pools
        ]
        for thread in stopping:
            thread.start()
        for thread in stopping:
            thread.join()
        self.pools.clear()
        if self.agent is not None:
            self.agent.stop(mark_down=True)
            self.agent = None
        self.bus.stop()
        self.started = False

    def close(self) -> None:
        self.stop()
        self.broker.close()

    # -- sending --------------------------------------------------------------------------

    def resend(self, task: TaskRecord) -> None:
        """Send a task again: pending ones as a task message, running batches as missing items."""
        if task.type == "batch" and task.status == RUNNING:
            fresh = self.store.tasks.get(None, task.task_id)
            if fresh is not None and fresh.status == RUNNING:
                send_missing_items(self.store, self.dispatch, fresh)
            return
        self.dispatch.send(task)

    def tee_nodes(self) -> dict[str, TeeNode]:
        """The TEE nodes of this process's tee pools, by node id."""
        return {pool.node_id: pool.tee for pool in self.pools if pool.tee is not None}

    def reaper(self) -> Reaper:
        return Reaper(self.store, self.resend, self.cluster.heartbeat.timeout_seconds)

    def recover(self, own_node_ids: list[str] | None = None) -> int:
        """Re-enqueue every unfinished task, except those running on a node still alive.

        Pending tasks may also still have a message in a durable broker: the duplicate is
        harmless. Running tasks of this process's previous life, or of nodes that are down
        or gone, go back to pending first.
        """
        own = set(own_node_ids or ())
        nodes = {node.node_id: node for node in self.store.nodes.list()}
        sent = 0
        for task in self.store.scheduling.unfinished():
            if task.status == RUNNING:
                node = nodes.get(task.executed_on or "")
                if node is not None and node.status != DOWN and task.executed_on not in own:
                    continue
                if task.type == "batch":
                    self.resend(task)
                    sent += 1
                    continue
                if not self.store.lifecycle.transition(
                    task.task_id,
                    from_statuses=(RUNNING,),
                    to_status=PENDING,
                    match={"executed_on": task.executed_on, "attempt": task.attempt},
                    message=f"re-queued after a restart (attempt {task.attempt})",
                    progress=0,
                    sent_at=utc_now(),
                ):
                    continue
            self.dispatch.send(task)
            sent += 1
        return sent

    # -- figures --------------------------------------------------------------------------

    def live_nodes(self) -> list[NodeRecord]:
        """Registered nodes not down (cached for a second: submit consults it)."""
        at, nodes = self._nodes
        now = time.monotonic()
        if now - at > NODE_CACHE_SECONDS:
            nodes = [node for node in self.store.nodes.list() if node.status != DOWN]
            self._nodes = (now, nodes)
        return nodes

    def forget_nodes(self) -> None:
        """Drops the live-node cache: the next submit reads the nodes again."""
        self._nodes = (0.0, [])

    def queue_depth(self) -> int | None:
        """Messages waiting in the broker; None while the broker cannot be reached."""
        return brokers.queue_depth(self.broker, all_queues())

    def node_ids(self) -> set[str]:
        """The nodes this process runs (its gateway's and its pools')."""
        own = {pool.node_id for pool in self.pools}
        return own | ({self.agent.node_id} if self.agent is not None else set())

    def coordinator(self) -> LeaseRecord | None:
        """The coordinator lease (holder node, term, expiry) as the store has it."""
        return self.reconciler.current()


def embedded_node_id(gateway_node_id: str | None, pool: str = "cpu") -> str:
    base = gateway_node_id or "grey-gateway"
    return base.replace("grey-gateway-", "grey-worker-", 1) + f"-{pool}"
