"""The Orchestrator reference's Python gRPC example, as written but the address and the
`x-api-key` metadata (the reference leaves auth to the deployment), then GetTaskStatus and
CancelTask: of the finished task, and of one held running by a slow HTTP call.

tests/e2e/test_reference_clients.py compiles orchestrator.proto here into
`grpc_services/generated/` (where the example imports its stubs from) and runs this in a
fresh interpreter (the stubs define orchestrator.v1 again, which a process that imported
Grey's own generated modules already holds):
`python orchestrator_grpc_client.py HOST:PORT API_KEY SLOW_URL`.
It prints what it saw as one JSON line after `RESULT `.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import grpc
from google.protobuf import json_format
from grpc_services.generated import orchestrator_pb2, orchestrator_pb2_grpc


def as_dict(message: Any) -> dict[str, Any]:
    return json_format.MessageToDict(message, preserving_proto_field_name=True)


def main(target: str, api_key: str, slow_url: str) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    metadata = [("x-api-key", api_key)]

    # -- the reference's example ("localhost:50051" there) -----------------------------
    channel = grpc.insecure_channel(target)
    stub = orchestrator_pb2_grpc.OrchestratorServiceStub(channel)

    request = orchestrator_pb2.TaskRequest(
        task_id="task-001",
        task_type="report_generation",
        execution_mode=orchestrator_pb2.SEQUENTIAL,
        priority=5,
        timeout_ms=30000,
    )

    response = stub.SubmitTask(request, metadata=metadata)
    print(f"Task submitted: {response.task_id}, status: {response.status}")
    seen["submitted"] = as_dict(response)

    # -- its streaming example -----------------------------------------------------------
    request = orchestrator_pb2.TaskStatusRequest(task_id=response.task_id)
    updates = []
    for update in stub.StreamTaskUpdates(request, metadata=metadata):
        print(f"Progress: {update.progress_percent}%, Status: {update.status}")
        updates.append(as_dict(update))
    seen["updates"] = updates

    # -- GetTaskStatus and CancelTask ------------------------------------------------------
    status = stub.GetTaskStatus(orchestrator_pb2.TaskStatusRequest(task_id="task-001"), metadata=metadata)
    seen["status"] = as_dict(status)
    ended = stub.CancelTask(
        orchestrator_pb2.TaskCancelRequest(task_id="task-001", reason="User requested cancellation"),
        metadata=metadata,
    )
    seen["cancel_ended"] = as_dict(ended)

    call = orchestrator_pb2.Input(
        input_id="input-1", type="json", data=json.dumps({"url": slow_url, "timeout_seconds": 60})
    )
    slow = orchestrator_pb2.TaskRequest(
        task_id="task-002",
        task_type="api_call",
        inputs=[call],
        execution_mode=orchestrator_pb2.PARALLEL,
        priority=5,
        timeout_ms=60000,
    )
    stub.SubmitTask(slow, metadata=metadata)
    deadline = time.monotonic() + 30
    running = stub.GetTaskStatus(orchestrator_pb2.TaskStatusRequest(task_id="task-002"), metadata=metadata)
    while running.status != orchestrator_pb2.TASK_STATUS_RUNNING and time.monotonic() < deadline:
        time.sleep(0.05)
        running = stub.GetTaskStatus(
            orchestrator_pb2.TaskStatusRequest(task_id="task-002"), metadata=metadata
        )
    seen["before_cancel"] = orchestrator_pb2.TaskStatus.Name(running.status)
    cancelled = stub.CancelTask(
        orchestrator_pb2.TaskCancelRequest(task_id="task-002", reason="User requested cancellation"),
        metadata=metadata,
    )
    seen["cancel_running"] = as_dict(cancelled)
    after = stub.GetTaskStatus(orchestrator_pb2.TaskStatusRequest(task_id="task-002"), metadata=metadata)
    seen["after_cancel"] = as_dict(after)

    try:
        stub.GetTaskStatus(orchestrator_pb2.TaskStatusRequest(task_id="task-001"))
    except grpc.RpcError as error:
        seen["no_key"] = error.code().name
    unknown = orchestrator_pb2.TaskRequest(task_id="task-003", task_type="no_such_type", timeout_ms=1000)
    try:
        stub.SubmitTask(unknown, metadata=metadata)
    except grpc.RpcError as error:
        trailers = {key: value for key, value in error.trailing_metadata() or () if isinstance(value, str)}
        seen["unknown_type"] = {"code": error.code().name, "trailers": trailers}
    channel.close()
    return seen


if __name__ == "__main__":
    print("RESULT " + json.dumps(main(*sys.argv[1:4])))
