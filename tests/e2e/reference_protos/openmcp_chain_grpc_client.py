"""An OpenMCP Chain gRPC client on stubs compiled from the reference's own proto text
(openmcp_chain.proto here), with plain grpcio: Authenticate, SubmitTask, StreamTaskEvents,
GetTask, and an error's status details.

tests/e2e/test_reference_clients.py compiles the stubs and runs this in a fresh interpreter
(the stubs define openmcp.chain.v1 again, which a process that imported Grey's own generated
modules already holds): `python openmcp_chain_grpc_client.py HOST:PORT WORKSPACE_ID SECRET`.
It prints what it saw as one JSON line after `RESULT `.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import grpc
import openmcp_chain_pb2 as pb
import openmcp_chain_pb2_grpc as pb_grpc
from google.protobuf import json_format, struct_pb2
from google.rpc import error_details_pb2
from grpc_status import rpc_status


def as_dict(message: Any) -> dict[str, Any]:
    return json_format.MessageToDict(message, preserving_proto_field_name=True)


def main(target: str, workspace_id: str, workspace_secret: str) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    with grpc.insecure_channel(target) as channel:
        auth = pb_grpc.AuthServiceStub(channel)
        token = auth.Authenticate(
            pb.AuthRequest(workspace_id=workspace_id, workspace_secret=workspace_secret)
        )
        seen["token"] = {"token": bool(token.token), "expires_at": token.expires_at.ToJsonString()}
        # "Tokens are carried in the `authorization` metadata key for subsequent gRPC calls."
        metadata = [("authorization", f"Bearer {token.token}")]

        tasks = pb_grpc.TaskServiceStub(channel)
        payload = struct_pb2.Struct()
        payload.update({"text": "the quick brown fox jumps over the lazy dog"})
        request = pb.SubmitTaskRequest(
            workspace_id=workspace_id, type="wordcount", payload=payload, metadata={"priority": "high"}
        )
        summary = tasks.SubmitTask(request, metadata=metadata)
        seen["summary"] = as_dict(summary)

        events = tasks.StreamTaskEvents(
            pb.StreamTaskEventsRequest(task_id=summary.task_id), metadata=metadata
        )
        seen["events"] = [as_dict(event) for event in events]

        detail = tasks.GetTask(pb.GetTaskRequest(task_id=summary.task_id), metadata=metadata)
        seen["detail"] = as_dict(detail)

        try:
            tasks.GetTask(pb.GetTaskRequest(task_id="task-1f7f"), metadata=metadata)
        except grpc.RpcError as error:
            status = rpc_status.from_call(error)
            reasons = []
            for detail_any in status.details if status is not None else []:
                info = error_details_pb2.ErrorInfo()
                if detail_any.Unpack(info):
                    reasons.append(info.reason)
            seen["missing"] = {"code": error.code().name, "reasons": reasons}

        try:
            auth.Authenticate(pb.AuthRequest(workspace_id=workspace_id, workspace_secret="not-the-secret"))
        except grpc.RpcError as error:
            seen["bad_secret"] = error.code().name
        try:
            tasks.GetTask(pb.GetTaskRequest(task_id=summary.task_id))
        except grpc.RpcError as error:
            seen["no_token"] = error.code().name
    return seen


if __name__ == "__main__":
    print("RESULT " + json.dumps(main(*sys.argv[1:4])))
