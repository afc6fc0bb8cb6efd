"""Locust users that keep the appointments of a drawn schedule (loadtest/bed/schedule.py).

    GREY_BED_SCHEDULE=schedule.json GREY_BED_LABELS='{"bed": "...", "level": "0"}'
    GREY_API_KEY=... locust -f loadtest/bed/users.py RestSubmitter --host http://127.0.0.1:8080
    (GrpcSubmitter: GREY_GRPC_TARGET=127.0.0.1:4100)

Every user of the process takes the next arrival from one shared queue, sleeps until its time
and submits it, so the users only bound how many submits can be in flight at once: the load is
open-loop. The run stops a few seconds after the last appointment. gRPC is told about gevent
before any channel exists (see loadtest/locustfile.py).
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections import deque
from pathlib import Path
from typing import Any

import gevent
import grpc
import grpc.experimental.gevent
from locust import FastHttpUser, User, constant, events, task
from locust.env import Environment

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "generated" / "grey" / "pb"))
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from grey_pb2 import SubmitTaskRequest
from grey_pb2_grpc import GreyServiceStub

from loadtest.bed.schedule import Arrival, read_schedule

grpc.experimental.gevent.init_gevent()  # after Locust's monkey-patching, before any channel

API_KEY = os.environ.get("GREY_API_KEY", "")
GRPC_TARGET = os.environ.get("GREY_GRPC_TARGET", "127.0.0.1:4100")
LABELS: dict[str, str] = json.loads(os.environ.get("GREY_BED_LABELS", "{}"))
_pending: deque[Arrival] = deque(read_schedule(Path(os.environ["GREY_BED_SCHEDULE"])))
_start: list[float] = []


_quitting: list[bool] = []
QUIT_GRACE_SECONDS = 3.0  # for the last submits to be answered


def next_arrival(environment: Environment) -> Arrival | None:
    """The next appointment, after sleeping until it is due; None when the schedule is done
    (then the run ends a little later, so that it lasts as long as the schedule)."""
    if not _start:
        _start.append(time.monotonic())
    if not _pending:
        if not _quitting and environment.runner is not None:
            _quitting.append(True)
            gevent.spawn_later(QUIT_GRACE_SECONDS, environment.runner.quit)
        gevent.sleep(0.5)
        return None
    arrival = _pending.popleft()
    gevent.sleep(max(0.0, _start[0] + arrival.at - time.monotonic()))
    return arrival


def body(arrival: Arrival) -> dict[str, Any]:
    return {
        "type": "stateless",
        "priority": arrival.priority,
        "payload": {"function": "sleep", "data": {"seconds": round(arrival.seconds, 6)}},
        "labels": {**LABELS, "fn": arrival.function},
    }


class RestSubmitter(FastHttpUser):
    wait_time = constant(0)

    def on_start(self) -> None:
        self.headers = {"Authorization": f"Bearer {API_KEY}"}

    @task
    def submit(self) -> None:
        arrival = next_arrival(self.environment)
        if arrival is not None:
            self.client.post("/v1/tasks", json=body(arrival), headers=self.headers, name="POST /v1/tasks")


_channels: list[grpc.Channel] = []


def shared_channel() -> grpc.Channel:
    """One channel for every user of the process: HTTP/2 multiplexes their calls, and one
    connection per user would spend the run's first seconds connecting."""
    if not _channels:
        _channels.append(grpc.insecure_channel(GRPC_TARGET))
        grpc.channel_ready_future(_channels[0]).result(timeout=30)
    return _channels[0]


class GrpcSubmitter(User):
    """Reports each RPC to Locust like an HTTP request, named by its method."""

    wait_time = constant(0)

    def on_start(self) -> None:
        self.stub = GreyServiceStub(shared_channel())
        self.metadata = [("authorization", f"Bearer {API_KEY}")]

    @task
    def submit(self) -> None:
        arrival = next_arrival(self.environment)
        if arrival is None:
            return
        fields = body(arrival)
        request = SubmitTaskRequest(
            type="stateless",
            payload=json.dumps(fields["payload"]).encode(),
            priority=arrival.priority,
            labels=fields["labels"],
        )
        started = time.perf_counter()
        reply, failure = None, None
        try:
            reply = self.stub.SubmitTask(request, metadata=self.metadata, timeout=30)
        except grpc.RpcError as error:
            failure = error
        events.request.fire(
            request_type="grpc",
            name="SubmitTask",
            response_time=(time.perf_counter() - started) * 1000,
            response_length=reply.ByteSize() if reply is not None else 0,
            exception=failure,
            context={},
        )
