"""Grey Distributed's Python gRPC example (Connection Setup and Streaming), as written but the
channel.

The stubs are the generated `grey_pb2` / `grey_pb2_grpc`, imported the way Grey Distributed's
example does.
"""

from __future__ import annotations

import sys

import grpc
import pytest

from tests.e2e.conftest import ROOT, Server


@pytest.fixture(scope="module", autouse=True)
def stubs_on_path() -> None:
    sys.path.insert(0, str(ROOT / "generated" / "grey" / "pb"))


def test_grey_distributed_connection_setup_submits_a_task(server: Server) -> None:
    from grey_pb2 import SubmitTaskRequest
    from grey_pb2_grpc import GreyServiceStub

    api_key = server.admin_key
    # Grey Distributed's example uses TLS to grpc.grey.io:443; here the same server runs locally.
    channel = grpc.insecure_channel(f"localhost:{server.grpc_port}")

    # Add authentication
    auth_metadata = [("authorization", f"Bearer {api_key}")]
    stub = GreyServiceStub(channel)

    # Make call
    request = SubmitTaskRequest(type="stateless", payload=b'{"data": "test"}')
    response = stub.SubmitTask(request, metadata=auth_metadata)

    assert response.task_id.startswith("task_")
    assert response.status == "pending"
    from grey_pb2 import GetTaskStatusRequest

    task = stub.GetTaskStatus(GetTaskStatusRequest(task_id=response.task_id), metadata=auth_metadata)
    assert dict(task.payload) == {"data": "test"}
    channel.close()


def test_grey_distributed_streaming_follows_a_task_to_its_end(server: Server) -> None:
    from grey_pb2 import StreamTaskRequest, SubmitTaskRequest
    from grey_pb2_grpc import GreyServiceStub

    channel = grpc.insecure_channel(f"localhost:{server.grpc_port}")
    auth_metadata = [("authorization", f"Bearer {server.admin_key}")]
    stub = GreyServiceStub(channel)
    submitted = stub.SubmitTask(
        SubmitTaskRequest(type="stateless", payload=b'{"data": "test"}'), metadata=auth_metadata
    )

    # Stream task updates (Grey Distributed's example, as written)
    request = StreamTaskRequest(task_id=submitted.task_id)
    seen = []
    for update in stub.StreamTaskStatus(request, metadata=auth_metadata):
        print(f"Status: {update.status}, Progress: {update.progress}%")
        seen.append(update.status)

    assert seen[-1] == "completed"
    assert set(seen) <= {"pending", "running", "completed"}
    channel.close()


def test_grpc_errors_carry_the_canonical_status_and_the_code(server: Server) -> None:
    from grey_pb2 import GetTaskStatusRequest, SubmitTaskRequest
    from grey_pb2_grpc import GreyServiceStub

    with grpc.insecure_channel(f"localhost:{server.grpc_port}") as channel:
        stub = GreyServiceStub(channel)
        metadata = [("authorization", f"Bearer {server.admin_key}")]
        with pytest.raises(grpc.RpcError) as missing:
            stub.GetTaskStatus(GetTaskStatusRequest(task_id="task_nope"), metadata=metadata)
        assert missing.value.code() == grpc.StatusCode.NOT_FOUND
        assert dict(missing.value.trailing_metadata())["grey-error-code"] == "task_not_found"
        with pytest.raises(grpc.RpcError) as bad:
            stub.SubmitTask(SubmitTaskRequest(type="stateless", payload=b"{not json"), metadata=metadata)
        assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert dict(bad.value.trailing_metadata())["grey-error-code"] == "invalid_payload"
        with pytest.raises(grpc.RpcError) as anonymous:
            stub.SubmitTask(SubmitTaskRequest(type="stateless", payload=b"{}"))
        assert anonymous.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_first_serve_prints_an_admin_key_that_works_over_rest(server: Server) -> None:
    import httpx

    response = httpx.post(
        f"{server.rest_url}/v1/tasks",
        json={"type": "stateless", "payload": {"function": "echo"}},
        headers={"Authorization": f"Bearer {server.admin_key}"},
    )
    assert response.status_code == 201
    assert (server.home / "grey.db").exists()
