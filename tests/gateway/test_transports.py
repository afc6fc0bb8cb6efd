"""REST and gRPC carry the same operation to the same answer (tests/support/transports.py)."""

from __future__ import annotations

from tests.support.transports import GrpcCaller, RestCaller

SUBMIT = {"type": "stateless", "payload": {"function": "echo", "data": {"key": "value"}}}


async def test_both_transports_return_the_same_task(rest, grpc_channel, key) -> None:
    by_rest, by_grpc = RestCaller(rest), GrpcCaller(grpc_channel)
    task_id = (await by_rest("submitTask", key, **SUBMIT, labels={"a": "b"})).data["task_id"]
    over_rest = (await by_rest("getTask", key, task_id=task_id)).data
    over_grpc = (await by_grpc("getTask", key, task_id=task_id)).data
    # proto3 leaves out default values (false, 0, empty); REST sends them.
    defaults = {k: v for k, v in over_rest.items() if v in (False, 0, [], {}) and k not in over_grpc}
    assert {**over_grpc, **defaults, "metrics": over_rest["metrics"]} == over_rest
