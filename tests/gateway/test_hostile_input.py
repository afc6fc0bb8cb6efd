"""One hostile corpus against every operation of every contract, over REST and gRPC, on both
stores.

Strings with NUL or lone surrogates, nesting past the limit, oversized keys: each must be
refused with a 4xx (or the matching gRPC status) naming the field, never a 5xx; the code is
one of the API's own (`generated/<api>/errors.py`, its spec's `ErrorCode`) and the status
the one that code maps to (runtime/api/errors.py); nothing stored may become unreadable,
through Grey Distributed or through the API that stored it.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import importlib
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import quote

import betterproto2
import grpc
import httpx
import pytest
import yaml
from grpclib.client import Channel
from grpclib.const import Cardinality, Status
from grpclib.exceptions import GRPCError

from bench.serving import free_port
from runtime.api.errors import ERRORS
from runtime.gateway.app import Platform
from runtime.gateway.contracts import CONTRACTS, ApiContract
from runtime.gateway.grpc.dispatch import ERROR_CODE_KEY
from runtime.gateway.input_limits import MAX_DEPTH, MAX_KEY_LENGTH
from tests.support.cloudai import seed_worker
from tests.support.transports import Outcome

HOSTILE_STRINGS = ["\x00", "nul\x00inside", "\ud800", "lone \udfff here", "k" * (MAX_KEY_LENGTH + 1)]
SUBMIT = {"type": "stateless", "payload": {"function": "echo", "data": {}}}
SERVER_FAULTS = {Status.INTERNAL, Status.UNKNOWN, Status.DATA_LOSS}

#: A valid submit of each API, whose every string (value or key) the corpus replaces in turn.
VALID_SUBMITS: dict[str, dict[str, Any]] = {
    "grey": SUBMIT,
    "openmcp": {
        "workspace_id": "acme",
        "type": "echo",
        "payload": {"v": "x", "nested": {"list": ["y"]}},
        "metadata": {"priority": "high"},
    },
    "orchestrator": {
        "task_id": "t",
        "task_type": "data_analysis",
        "inputs": [{"input_id": "i", "type": "text", "data": "x"}],
        "execution_mode": "parallel",
        "priority": 5,
        "timeout_ms": 1000,
        "metadata": {"report_title": "r"},
    },
    "cloudai": {
        "user_id": "user-123",
        "docker_image": "docker.io/library/busybox:latest",
        "command": "echo hi",
        "req_cpu": 0.5,
        "req_memory": 0.25,
        "req_storage": 0,
        "req_gpu": 0,
    },
}
#: The operation reading one task back, by API.
READ = {"grey": "getTask", "openmcp": "getTask", "orchestrator": "getTaskStatus", "cloudai": "getTask"}
#: The APIs served over gRPC too (CloudAI is REST and WebSocket only).
WITH_GRPC = [name for name, contract in CONTRACTS.items() if contract.grpc_services is not None]


#: The APIs that submit Grey tasks (a `submitTask`): their hostile bodies, then a valid submit,
#: must leave every stored task readable everywhere. (gswarm's APIs submit none directly:
#: Schemathesis' negative data covers their input, tests/contract.)
SUBMITTING = [name for name, contract in CONTRACTS.items() if "submitTask" in contract.operations]


@pytest.fixture(params=SUBMITTING)
def contract(request: pytest.FixtureRequest) -> ApiContract:
    return CONTRACTS[request.param]


@pytest.fixture(params=WITH_GRPC)
def grpc_contract(request: pytest.FixtureRequest) -> ApiContract:
    return CONTRACTS[request.param]


def vocabulary(contract: ApiContract) -> set[str]:
    """The codes this API's envelope and trailers may carry."""
    return set(contract.error_codes.values())


def statuses_of(contract: ApiContract, code: str) -> tuple[set[int], set[Status]]:
    """The HTTP statuses and gRPC statuses the API's `code` is sent with."""
    kinds = [ERRORS[internal] for internal, public in contract.error_codes.items() if public == code]
    return {kind.http_status for kind in kinds}, {kind.grpc_status for kind in kinds}


def test_every_code_of_an_api_is_in_its_spec_error_code_enum() -> None:
    for contract in CONTRACTS.values():
        schemas = yaml.safe_load(contract.spec.read_text())["components"]["schemas"]
        if "ErrorCode" in schemas:  # Grey Distributed's codes are its internal ones
            assert vocabulary(contract) <= set(schemas["ErrorCode"]["enum"]), contract.name
        assert set(contract.error_codes) == set(ERRORS), contract.name


# -- the corpus --------------------------------------------------------------------------


def _nested(depth: int) -> Any:
    value: Any = "bottom"
    for _ in range(depth):
        value = {"a": value}
    return value


def _places(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[str, tuple[Any, ...]]]:
    """("value" | "key" | "object", path) of every string value, key and object in `value`."""
    if isinstance(value, dict):
        yield "object", path
        for key, item in value.items():
            yield "key", (*path, key)
            yield from _places(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _places(item, (*path, index))
    elif isinstance(value, str):
        yield "value", path


def _replaced(body: dict[str, Any], kind: str, path: tuple[Any, ...], new: Any) -> dict[str, Any]:
    changed = copy.deepcopy(body)
    if not path:
        return new if isinstance(new, dict) else changed
    parent: Any = changed
    for part in path[:-1]:
        parent = parent[part]
    if kind == "key":
        parent[new] = parent.pop(path[-1])
    else:
        parent[path[-1]] = new
    return changed


def submit_bodies(api: str) -> Iterator[dict[str, Any]]:
    """Submits of `api` whose every place a string can go holds something hostile in turn,
    and whose every object is nested too deep or holds an oversized key."""
    valid = VALID_SUBMITS[api]
    bodies: list[dict[str, Any]] = []
    for kind, path in _places(valid):
        if kind == "object":
            if path:  # the body itself stays an object
                bodies.append(_replaced(valid, kind, path, _nested(MAX_DEPTH + 1)))
                bodies.append(_replaced(valid, kind, path, _nested(300)))
            continue
        bodies.extend(_replaced(valid, kind, path, text) for text in HOSTILE_STRINGS)
    first_object = next((path for kind, path in _places(valid) if kind == "object" and path), None)
    if first_object is None:  # a flat body (CloudAI's): the oversized key at the top
        bodies.append({**valid, "k" * 900_000: "v"})
    else:
        bodies.append(_replaced(valid, "object", first_object, {"k" * 900_000: "v"}))
    if api == "grey":
        for text in HOSTILE_STRINGS:  # places the valid submit does not have
            bodies.append({**SUBMIT, "labels": {text: "v"}})
            bodies.append({**SUBMIT, "labels": {"k": text}})
            bodies.append({**SUBMIT, "idempotency_key": text})
            bodies.append({**SUBMIT, "type": "stateful", "state_key": text})
            bodies.append({**SUBMIT, "dependencies": [text]})
    for number, body in enumerate(bodies):
        if api == "orchestrator" and body.get("task_id") == valid["task_id"]:
            body["task_id"] = f"t-{number}"  # each its own task: not refused as a duplicate first
        yield body


def _body_fields(contract: ApiContract, operation_id: str) -> list[str]:
    operation = contract.operations[operation_id]
    skip = set(operation.path_params) | set(operation.query_params)
    return [name for name in operation.input_model.model_fields if name not in skip]


def _quoted(text: str) -> str:
    return quote(text.encode("utf-8", "surrogatepass"), safe="")


def rest_requests(contract: ApiContract) -> Iterator[tuple[str, str, dict[str, Any] | None, str | None]]:
    """(method, url, json body, raw body) for every operation with hostile input in each place."""
    for operation in contract.operations.values():
        path = operation.path
        for name in operation.path_params:
            for text in HOSTILE_STRINGS:
                yield operation.method, path.replace("{" + name + "}", _quoted(text)), None, None
        concrete = path
        for name in operation.path_params:
            concrete = concrete.replace("{" + name + "}", "task_x")
        for name in operation.query_params:
            for text in HOSTILE_STRINGS:
                yield operation.method, f"{concrete}?{name}={_quoted(text)}", None, None
        if operation.has_body:
            for name in _body_fields(contract, operation.operation_id):
                for text in HOSTILE_STRINGS:
                    yield operation.method, concrete, {name: text}, None
                yield operation.method, concrete, {name: _nested(MAX_DEPTH + 1)}, None
            yield operation.method, concrete, None, "[" * 10_000 + "]" * 10_000
            yield operation.method, concrete, None, json.dumps({"k" * 2000: 1})
    submit = contract.operations["submitTask"]
    for body in submit_bodies(contract.name):
        yield submit.method, submit.path, body, None


def grpc_shape(api: str, body: dict[str, Any]) -> dict[str, Any]:
    """A REST submit body as its gRPC request's fields."""
    shaped = dict(body)
    if api == "grey" and "payload" in shaped:
        shaped["payload"] = base64.b64encode(json.dumps(shaped["payload"]).encode()).decode()
    if api == "orchestrator" and isinstance(shaped.get("execution_mode"), str):
        shaped["execution_mode"] = shaped["execution_mode"].upper()
    return shaped


def grpc_requests(contract: ApiContract) -> Iterator[tuple[str, dict[str, Any]]]:
    """(operationId, request fields) with a hostile value in each string field of each RPC."""
    messages = _rpc_messages(contract)
    for operation in contract.operations.values():
        if operation.grpc is None:
            continue
        request_type, _ = messages[operation.grpc]
        fields = [
            name for name, kind in request_type.__annotations__.items() if kind in ("str", "str | None")
        ]
        for name in fields:
            for text in HOSTILE_STRINGS:
                if "\ud800" not in text and "\udfff" not in text:  # not encodable: see the raw test
                    yield operation.operation_id, {name: text}
    request_type, _ = messages[contract.operations["submitTask"].grpc or ""]
    for body in submit_bodies(contract.name):
        if set(body) <= set(request_type.__annotations__):  # a field name is no place for input
            yield "submitTask", grpc_shape(contract.name, body)


# -- callers -----------------------------------------------------------------------------


def _rpc_messages(
    contract: ApiContract,
) -> dict[str, tuple[type[betterproto2.Message], type[betterproto2.Message]]]:
    module = importlib.import_module(f"generated.{contract.name}.grpc_service")
    messages: dict[str, tuple[type[betterproto2.Message], type[betterproto2.Message]]] = module.RPC_MESSAGES
    return messages


class AnyGrpc:
    """An operation of any contract over gRPC (unary or server-streaming): its `Outcome`."""

    def __init__(self, channel: Channel, contract: ApiContract) -> None:
        self.channel = channel
        self.contract = contract
        self.messages = _rpc_messages(contract)
        self.package = contract.grpc_descriptor.package

    def request(self, operation_id: str, arguments: dict[str, Any]) -> betterproto2.Message:
        """The request message, encoded once: raises where the client library refuses it."""
        grpc_name = self.contract.operations[operation_id].grpc
        assert grpc_name is not None
        request_type, _ = self.messages[grpc_name]
        request = request_type.from_dict(arguments) if arguments else request_type()
        bytes(request)
        return request

    async def __call__(self, operation_id: str, key: str, **arguments: Any) -> Outcome:
        return await self.send(operation_id, key, self.request(operation_id, arguments))

    async def send(self, operation_id: str, key: str, request: betterproto2.Message) -> Outcome:
        operation = self.contract.operations[operation_id]
        assert operation.grpc is not None
        service, method = operation.grpc.split(".")
        request_type, reply_type = self.messages[operation.grpc]
        cardinality = Cardinality.UNARY_STREAM if operation.streaming else Cardinality.UNARY_UNARY
        replies = []
        try:
            async with self.channel.request(
                f"/{self.package}.{service}/{method}",
                cardinality,
                request_type,
                reply_type,
                metadata={"authorization": f"Bearer {key}"},
                timeout=10,
            ) as stream:
                await stream.send_message(request, end=True)
                while (reply := await stream.recv_message()) is not None:
                    replies.append(reply)
                    if not operation.streaming:
                        break
                await stream.recv_trailing_metadata()
        except GRPCError as error:
            trailers: dict[str, Any] = dict(stream.trailing_metadata or {})
            code = str(trailers.get(ERROR_CODE_KEY, ""))
            return Outcome(code=code or f"(none: {error.status.name})", status=error.status.value)
        data = replies[0].to_dict(casing=betterproto2.Casing.SNAKE) if replies else {}
        return Outcome(data=data, status=Status.OK.value)


@pytest.fixture
async def api_rest(platform: Platform, contract: ApiContract) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=platform.gateways[contract.name].rest)
    async with httpx.AsyncClient(transport=transport, base_url="http://grey.test") as client:
        yield client


@pytest.fixture
async def api_grpc(platform: Platform, grpc_contract: ApiContract) -> AsyncIterator[Channel]:
    server = platform.grpc_server(grpc_contract.name)
    port = free_port()
    await server.start("127.0.0.1", port)
    channel = Channel("127.0.0.1", port)
    yield channel
    channel.close()
    server.close()
    await server.wait_closed()


def rest_problem(contract: ApiContract, answer: httpx.Response) -> str | None:
    """What is wrong with an answer to hostile input, or None."""
    if answer.status_code >= 500 and answer.status_code != 501:
        return "a server fault"
    if answer.status_code < 400:
        return None
    error = answer.json()["error"]
    if not error["message"] or "Traceback" in error["message"]:
        return f"message {error['message']!r}"
    if error["code"] not in vocabulary(contract):
        return f"code {error['code']} is not {contract.name}'s"
    if answer.status_code not in statuses_of(contract, error["code"])[0]:
        return f"status {answer.status_code} is not {error['code']}'s"
    return None


def grpc_problem(contract: ApiContract, outcome: Outcome) -> str | None:
    if outcome.ok:
        return None
    status = Status(outcome.status)
    if status in SERVER_FAULTS:
        return "a server fault"
    assert outcome.code is not None
    if outcome.code not in vocabulary(contract):
        return f"code {outcome.code} is not {contract.name}'s"
    if status not in statuses_of(contract, outcome.code)[1]:
        return f"status {status.name} is not {outcome.code}'s"
    return None


# -- the tests ---------------------------------------------------------------------------


async def _readable_everywhere(platform: Platform, key: str, accepted: list[tuple[str, str]]) -> int:
    """Every stored task reads through Grey Distributed (REST and gRPC), and every task an API
    accepted reads through that API: the count of stored tasks."""
    grey = CONTRACTS["grey"]
    headers = {"X-API-Key": key}
    server = platform.grpc_server("grey")
    port = free_port()
    await server.start("127.0.0.1", port)
    channel = Channel("127.0.0.1", port)
    try:
        transport = httpx.ASGITransport(app=platform.gateways["grey"].rest)
        async with httpx.AsyncClient(transport=transport, base_url="http://grey.test") as rest:
            listed = await rest.get("/v1/tasks?limit=100", headers=headers)
            assert listed.status_code == 200, listed.text
            tasks = listed.json()["tasks"]
            grey_grpc = AnyGrpc(channel, grey)
            for task in tasks:
                answer = await rest.get(f"/v1/tasks/{task['task_id']}", headers=headers)
                assert answer.status_code == 200, answer.text
                assert (await grey_grpc("getTask", key, task_id=task["task_id"])).ok
            assert (await grey_grpc("listTasks", key, limit=100)).ok
        for api, task_id in accepted:
            contract = CONTRACTS[api]
            read = contract.operations[READ[api]]
            transport = httpx.ASGITransport(app=platform.gateways[api].rest)
            async with httpx.AsyncClient(transport=transport, base_url="http://grey.test") as rest:
                url = read.path.replace("{task_id}", _quoted(task_id))
                answer = await rest.get(url, headers=headers)
                assert answer.status_code == 200, (api, task_id, answer.text)
    finally:
        channel.close()
        server.close()
        await server.wait_closed()
    return len(tasks)


async def test_no_hostile_rest_input_gets_a_5xx_and_stored_tasks_stay_readable(
    contract: ApiContract, platform: Platform, api_rest: httpx.AsyncClient, key: str
) -> None:
    headers = {"X-API-Key": key}
    if contract.name == "cloudai":  # a worker that runs containers, so valid submits are accepted
        seed_worker(platform.services)
    problems = []
    accepted = []
    for method, url, body, raw in rest_requests(contract):
        content = raw.encode() if raw is not None else json.dumps(body).encode() if body is not None else None
        sent_headers = {**headers, "Content-Type": "application/json"} if content is not None else headers
        answer = await api_rest.request(method, url, content=content, headers=sent_headers)
        problem = rest_problem(contract, answer)
        if problem is not None:
            problems.append((method, url, answer.status_code, problem, answer.text[:200]))
        elif method == "POST" and answer.status_code < 300 and "task_id" in answer.json():
            accepted.append((contract.name, answer.json()["task_id"]))
    assert problems == []
    valid = VALID_SUBMITS[contract.name]
    submitted = await api_rest.post(contract.operations["submitTask"].path, json=valid, headers=headers)
    assert submitted.status_code in (200, 201), submitted.text
    assert await _readable_everywhere(platform, key, accepted) >= 1


async def test_no_hostile_grpc_input_gets_a_server_fault(
    grpc_contract: ApiContract, api_grpc: Channel, key: str
) -> None:
    contract = grpc_contract
    call = AnyGrpc(api_grpc, contract)
    problems = []
    for operation_id, arguments in grpc_requests(contract):
        try:
            request = call.request(operation_id, arguments)
        except (UnicodeEncodeError, ValueError, KeyError, TypeError, AttributeError, RecursionError):
            continue  # the client library itself refuses to encode it (see the raw tests)
        outcome = await call.send(operation_id, key, request)
        problem = grpc_problem(contract, outcome)
        if problem is not None:
            problems.append((operation_id, str(arguments)[:200], outcome.code, problem))
    assert problems == []


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_a_request_message_that_is_not_valid_protobuf_utf8_is_invalid_argument(
    grpc_contract: ApiContract, api_grpc: Channel, key: str
) -> None:
    """Bytes a conforming client never sends: a string field holding invalid UTF-8."""
    contract = grpc_contract
    read = contract.operations[READ[contract.name]]
    assert read.grpc is not None
    request_type, _ = _rpc_messages(contract)[read.grpc]
    valid = bytes(request_type.from_dict({"task_id": "AAAA"}))
    broken = valid.replace(b"AAAA", b"\xed\xa0\x80A")
    target = f"{api_grpc._host}:{api_grpc._port}"
    service, method = read.grpc.split(".")
    path = f"/{contract.grpc_descriptor.package}.{service}/{method}"

    def send() -> tuple[grpc.StatusCode, str | None]:
        with grpc.insecure_channel(target) as channel:
            call = channel.unary_unary(
                path, request_serializer=lambda raw: raw, response_deserializer=lambda raw: raw
            )
            try:
                call(broken, metadata=[("authorization", f"Bearer {key}")], timeout=10)
            except grpc.RpcError as error:
                trailers = dict(error.trailing_metadata() or ())
                return error.code(), trailers.get(ERROR_CODE_KEY)
        return grpc.StatusCode.OK, None

    status, code = await asyncio.to_thread(send)
    assert status == grpc.StatusCode.INVALID_ARGUMENT
    assert code == contract.public_code("bad_request")


def _struct_fields() -> list[tuple[str, str, int]]:
    """(API, `Service.Method`, field number) of every request field holding a
    google.protobuf.Struct: a message a client can nest without bound."""
    found = []
    for contract in CONTRACTS.values():
        if contract.grpc_descriptor is None:
            continue
        for service in contract.grpc_descriptor.services_by_name.values():
            for method in service.methods:
                for field in method.input_type.fields:
                    if (
                        field.message_type is not None
                        and field.message_type.full_name == "google.protobuf.Struct"
                    ):
                        found.append((contract.name, f"{service.name}.{method.name}", field.number))
    return found


def _length_delimited(number: int, payload: bytes) -> bytes:
    def varint(value: int) -> bytes:
        out = bytearray()
        while True:
            low, value = value & 0x7F, value >> 7
            out.append(low | (0x80 if value else 0))
            if not value:
                return bytes(out)

    return varint(number << 3 | 2) + varint(len(payload)) + payload


def _deep_struct(depth: int) -> bytes:
    """A Struct `{"a": {"a": ...}}` `depth` levels deep, encoded by hand (no client library
    encodes one this deep)."""
    struct = b""
    for _ in range(depth):
        value = _length_delimited(5, struct)  # Value.struct_value
        entry = _length_delimited(1, b"a") + _length_delimited(2, value)  # fields map entry
        struct = _length_delimited(1, entry)  # Struct.fields
    return struct


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize(("api", "rpc", "number"), _struct_fields())
async def test_a_struct_nested_past_the_parser_is_invalid_argument(
    platform: Platform, key: str, api: str, rpc: str, number: int
) -> None:
    contract = CONTRACTS[api]
    server = platform.grpc_server(api)
    port = free_port()
    await server.start("127.0.0.1", port)
    service, method = rpc.split(".")
    path = f"/{contract.grpc_descriptor.package}.{service}/{method}"

    def send(depth: int) -> tuple[grpc.StatusCode, str | None]:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            call = channel.unary_unary(
                path, request_serializer=lambda raw: raw, response_deserializer=lambda raw: raw
            )
            try:
                call(
                    _length_delimited(number, _deep_struct(depth)),
                    metadata=[("authorization", f"Bearer {key}")],
                    timeout=10,
                )
            except grpc.RpcError as error:
                trailers = dict(error.trailing_metadata() or ())
                return error.code(), trailers.get(ERROR_CODE_KEY)
        return grpc.StatusCode.OK, None

    operation = next(op for op in contract.operations.values() if op.grpc == rpc)
    # Past MAX_DEPTH the input check names the field; past the parser's stack, the message.
    refusals = {contract.public_code("bad_request"), contract.public_code(operation.input_error_code)}
    try:
        for depth in (MAX_DEPTH + 1, 300, 5000):
            status, code = await asyncio.to_thread(send, depth)
            assert status == grpc.StatusCode.INVALID_ARGUMENT and code in refusals, (depth, status, code)
    finally:
        server.close()
        await server.wait_closed()
