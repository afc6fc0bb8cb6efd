"""The Orchestrator over gRPC: the plain grpcio stubs of generated/orchestrator/pb with
`x-api-key` metadata (as the reference's example connects), the update stream, and errors
carrying the Orchestrator's code (trailer, google.rpc.ErrorInfo, orchestrator.v1.Error)."""

from __future__ import annotations

import asyncio
import importlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import betterproto2
import grpc
import pytest
from google.protobuf import json_format
from google.rpc import error_details_pb2
from grpclib.client import Channel
from grpclib.const import Cardinality, Status
from grpclib.exceptions import GRPCError

from generated.orchestrator.grpc.orchestrator.v1 import (
    TaskCancelRequest,
    TaskRequest,
    TaskStatus,
    TaskStatusRequest,
    TaskUpdate,
)
from generated.orchestrator.grpc_service import RPC_MESSAGES
from generated.orchestrator.pb import orchestrator_pb2
from runtime.gateway.app import Platform
from runtime.services import Services
from tests.handlers.orchestrator.conftest import REPORT_INPUTS
from tests.support.platform import make_key, until_streaming

PB = Path(__file__).resolve().parents[3] / "generated" / "orchestrator" / "pb"
SERVICE = "/orchestrator.v1.OrchestratorService"


@dataclass(frozen=True, slots=True)
class Failure:
    status: Status
    code: str  # `grey-error-code`
    details: tuple[Any, ...]


async def _call(channel: Channel, rpc: str, key: str | None, request: Any) -> Any:
    """One unary call with grpclib; the reply, or a Failure."""
    request_type: type[betterproto2.Message] = RPC_MESSAGES[f"OrchestratorService.{rpc}"][0]
    reply_type: type[betterproto2.Message] = RPC_MESSAGES[f"OrchestratorService.{rpc}"][1]
    metadata = {"x-api-key": key} if key else {}
    try:
        async with channel.request(
            f"{SERVICE}/{rpc}",
            Cardinality.UNARY_UNARY,
            request_type,
            reply_type,
            metadata=metadata,
            timeout=15,
        ) as stream:
            await stream.send_message(request, end=True)
            reply = await stream.recv_message()
            await stream.recv_trailing_metadata()
            return reply
    except GRPCError as error:
        trailers: dict[str, Any] = dict(stream.trailing_metadata or {})
        return Failure(error.status, str(trailers.get("grey-error-code")), tuple(error.details or ()))


def _report_request(task_id: str, **changes: Any) -> TaskRequest:
    return TaskRequest.from_dict(
        {"task_id": task_id, "task_type": "report_generation", "inputs": REPORT_INPUTS, **changes}
    )


async def test_errors_carry_the_orchestrator_code_in_the_trailer_and_the_rich_status(
    api_grpc: Callable[[str], Channel], key: str
) -> None:
    channel = api_grpc("orchestrator")
    assert not isinstance(await _call(channel, "SubmitTask", key, _report_request("g-dup")), Failure)
    cases: list[tuple[str, str | None, Any, Status, str]] = [
        ("GetTaskStatus", key, TaskStatusRequest(task_id="ghost"), Status.NOT_FOUND, "TASK_NOT_FOUND"),
        ("CancelTask", key, TaskCancelRequest(task_id="ghost"), Status.NOT_FOUND, "TASK_NOT_FOUND"),
        ("SubmitTask", key, _report_request("g-dup"), Status.ALREADY_EXISTS, "TASK_ALREADY_EXISTS"),
        (
            "SubmitTask",
            key,
            TaskRequest(task_id="g-video", task_type="real_time_monitoring"),
            Status.ABORTED,  # runtime/api/errors.py: unschedulable
            "AGENT_UNAVAILABLE",
        ),
        (
            "SubmitTask",
            key,
            TaskRequest(task_id="g-x", task_type="summon_dragons"),
            Status.INVALID_ARGUMENT,
            "VALIDATION_ERROR",
        ),
        (
            "GetTaskStatus",
            None,
            TaskStatusRequest(task_id="g-dup"),
            Status.UNAUTHENTICATED,
            "UNAUTHENTICATED",
        ),
    ]
    for rpc, credential, request, status, code in cases:
        failure = await _call(channel, rpc, credential, request)
        assert isinstance(failure, Failure), (rpc, request)
        assert (failure.status, failure.code) == (status, code), (rpc, request)
        info, error = failure.details
        assert isinstance(info, error_details_pb2.ErrorInfo) and info.reason == code
        assert isinstance(error, orchestrator_pb2.Error) and error.code == code and error.message


async def test_the_update_stream_names_each_agent_with_progress_and_ends_completed(
    api_grpc: Callable[[str], Channel], key: str, every_api: Platform
) -> None:
    channel = api_grpc("orchestrator")
    submitted = await _call(channel, "SubmitTask", key, _report_request("g-watch"))
    assert submitted.task_id == "g-watch" and submitted.status == TaskStatus.QUEUED

    async def updates() -> list[TaskUpdate]:
        received = []
        async with channel.request(
            f"{SERVICE}/StreamTaskUpdates",
            Cardinality.UNARY_STREAM,
            TaskStatusRequest,
            TaskUpdate,
            metadata={"x-api-key": key},
            timeout=15,
        ) as stream:
            await stream.send_message(TaskStatusRequest(task_id="g-watch"), end=True)
            while (update := await stream.recv_message()) is not None:
                received.append(update)
            await stream.recv_trailing_metadata()
        return received

    watching = asyncio.ensure_future(updates())
    await until_streaming(every_api.services)  # subscribed while the task is still pending
    every_api.start_runtime(worker_threads=2)
    received = await asyncio.wait_for(watching, 15)
    assert received[0].status == TaskStatus.QUEUED and received[-1].status == TaskStatus.COMPLETED
    assert all(update.task_id == "g-watch" and update.timestamp_ms > 0 for update in received)
    agents = [update.agent_id for update in received if update.agent_id]
    assert agents == ["agent-data-ingest-1", "agent-data-analysis-2", "agent-synthesis-3"]
    progress = [update.progress_percent for update in received]
    assert progress == sorted(progress) and progress[-1] == 100


@pytest.fixture
def stubs(monkeypatch: pytest.MonkeyPatch) -> tuple[ModuleType, ModuleType]:
    """`orchestrator_pb2`, `orchestrator_pb2_grpc`: the flat modules a plain grpcio client
    imports (codegen writes them flat, next to each other)."""
    monkeypatch.syspath_prepend(str(PB))
    return importlib.import_module("orchestrator_pb2"), importlib.import_module("orchestrator_pb2_grpc")


def _reference_example(
    stubs: tuple[ModuleType, ModuleType], port: int, key: str, tenant_key: str
) -> dict[str, Any]:
    """What the Orchestrator reference's Python example does, with the generated stubs."""
    orchestrator_pb2, orchestrator_pb2_grpc = stubs
    seen: dict[str, Any] = {}
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = orchestrator_pb2_grpc.OrchestratorServiceStub(channel)
        metadata = [("x-api-key", key)]
        request = orchestrator_pb2.TaskRequest(
            task_id="grpcio-1",
            task_type="report_generation",
            inputs=[orchestrator_pb2.Input(**item) for item in REPORT_INPUTS],
            execution_mode=orchestrator_pb2.SEQUENTIAL,
            priority=5,
            timeout_ms=30000,
            metadata={"report_title": "From grpcio"},
        )
        seen["submitted"] = stub.SubmitTask(request, metadata=metadata, timeout=10)
        deadline = time.monotonic() + 15
        while True:
            status = stub.GetTaskStatus(
                orchestrator_pb2.TaskStatusRequest(task_id="grpcio-1"), metadata=metadata, timeout=10
            )
            if status.status == orchestrator_pb2.TASK_STATUS_COMPLETED or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        seen["status"] = status
        seen["updates"] = list(
            stub.StreamTaskUpdates(
                orchestrator_pb2.TaskStatusRequest(task_id="grpcio-1"), metadata=metadata, timeout=10
            )
        )
        seen["cancel"] = stub.CancelTask(
            orchestrator_pb2.TaskCancelRequest(task_id="grpcio-1", reason="too late"),
            metadata=metadata,
            timeout=10,
        )
        try:  # another tenant's key: the same task id is not there
            stub.GetTaskStatus(
                orchestrator_pb2.TaskStatusRequest(task_id="grpcio-1"),
                metadata=[("x-api-key", tenant_key)],
                timeout=10,
            )
        except grpc.RpcError as error:
            seen["other_tenant"] = (error.code(), dict(error.trailing_metadata() or ())["grey-error-code"])
    return seen


async def test_the_reference_example_with_plain_grpcio_stubs_and_x_api_key_runs_a_report(
    api_grpc_port: Callable[[str], int],
    key: str,
    workers: Platform,
    services: Services,
    stubs: tuple[ModuleType, ModuleType],
) -> None:
    other = make_key(services, "globex")
    seen = await asyncio.to_thread(_reference_example, stubs, api_grpc_port("orchestrator"), key, other)
    submitted = seen["submitted"]
    assert submitted.task_id == "grpcio-1" and submitted.status == orchestrator_pb2.TASK_STATUS_QUEUED
    status = seen["status"]
    assert status.status == orchestrator_pb2.TASK_STATUS_COMPLETED
    assert [execution.agent_type for execution in status.agent_executions] == [
        "data_ingest",
        "data_analysis",
        "synthesis",
    ]
    assert all(
        execution.status == orchestrator_pb2.TASK_STATUS_COMPLETED for execution in status.agent_executions
    )
    assert status.output.type == "json_report"
    report = json_format.MessageToDict(status.output.data)
    assert report["title"] == "From grpcio" and report["sections"]
    assert (
        status.metrics.agents_used == 3
        and status.metrics.total_duration_ms >= status.metrics.execution_time_ms
    )
    assert not status.HasField("error")
    assert [update.status for update in seen["updates"]] == [orchestrator_pb2.TASK_STATUS_COMPLETED]
    assert seen["cancel"].success is False
    assert seen["other_tenant"] == (grpc.StatusCode.NOT_FOUND, "TASK_NOT_FOUND")
