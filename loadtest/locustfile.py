"""Locust users: a tenant submitting and watching tasks over REST and over gRPC.

    GREY_API_KEY=... locust -f loadtest/locustfile.py --host http://127.0.0.1:8080
    GREY_GRPC_TARGET=127.0.0.1:4100 (gRPC user)

Both users do the same thing: submit a no-op task, read it back, now and then list and
check health. Run headless with `--headless -u 50 -r 10 -t 1m`.

Locust runs every user as a gevent greenlet; grpcio's calls block in C unless gRPC is told
about gevent, so the module patches it (`init_gevent`) before any channel exists: without it
one user's RPC stalls every other user of the process and the load reported is not the load
offered (tests/e2e/test_loadtest.py pins that concurrent gRPC users overlap).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

import grpc
import grpc.experimental.gevent
from locust import FastHttpUser, User, between, events, task

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "generated" / "grey" / "pb"))
from grey_pb2 import GetTaskStatusRequest, SubmitTaskRequest
from grey_pb2_grpc import GreyServiceStub

grpc.experimental.gevent.init_gevent()  # after Locust's monkey-patching (its import), before any channel

API_KEY = os.environ.get("GREY_API_KEY", "")
GRPC_TARGET = os.environ.get("GREY_GRPC_TARGET", "127.0.0.1:4100")
TASK = {"type": "stateless", "payload": {"function": "echo", "data": {"n": 1}}, "labels": {"load": "locust"}}


class RestTenant(FastHttpUser):
    wait_time = between(0.01, 0.05)

    def on_start(self) -> None:
        self.headers = {"Authorization": f"Bearer {API_KEY}"}

    @task(5)
    def submit_and_read(self) -> None:
        response = self.client.post("/v1/tasks", json=TASK, headers=self.headers, name="POST /v1/tasks")
        if response.status_code == 201:
            task_id = response.json()["task_id"]
            self.client.get(f"/v1/tasks/{task_id}", headers=self.headers, name="GET /v1/tasks/{id}")

    @task(1)
    def list_tasks(self) -> None:
        self.client.get("/v1/tasks?limit=20&label=load=locust", headers=self.headers, name="GET /v1/tasks")

    @task(1)
    def health(self) -> None:
        self.client.get("/v1/cluster/health", headers=self.headers, name="GET /v1/cluster/health")


class GrpcTenant(User):
    """Reports each RPC to Locust like an HTTP request, named by its method."""

    wait_time = between(0.01, 0.05)

    def on_start(self) -> None:
        self.channel = grpc.insecure_channel(GRPC_TARGET)
        self.stub = GreyServiceStub(self.channel)
        self.metadata = [("authorization", f"Bearer {API_KEY}")]

    def on_stop(self) -> None:
        self.channel.close()

    def _call(self, name: str, method: Any, request: Any) -> Any:
        started = time.perf_counter()
        reply, failure = None, None
        try:
            reply = method(request, metadata=self.metadata, timeout=10)
        except grpc.RpcError as error:
            failure = error
        events.request.fire(
            request_type="grpc",
            name=name,
            response_time=(time.perf_counter() - started) * 1000,
            response_length=reply.ByteSize() if reply is not None else 0,
            exception=failure,
            context={},
        )
        return reply

    @task
    def submit_and_read(self) -> None:
        submitted = self._call(
            "SubmitTask",
            self.stub.SubmitTask,
            SubmitTaskRequest(type="stateless", payload=b'{"function": "echo"}'),
        )
        if submitted is not None:
            self._call(
                "GetTaskStatus", self.stub.GetTaskStatus, GetTaskStatusRequest(task_id=submitted.task_id)
            )
