"""OpenMCP Chain called as its clients do: a bearer token from `POST /v1/auth/token`, then the
TaskService over REST or over gRPC (grpclib with the generated betterproto2 messages).

`openmcp` runs a test once per transport; both callers answer an `Answer`: the REST body
(gRPC replies turned into the same shape: `PENDING`, not `TASK_STATUS_PENDING`), or the
error as the transport carried it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import betterproto2
import httpx
import pytest
from grpclib.client import Channel
from grpclib.const import Cardinality
from grpclib.exceptions import GRPCError

from generated.openmcp.grpc_service import RPC_MESSAGES
from runtime.services import Services
from tests.support.platform import make_key, parse_sse

PACKAGE = "openmcp.chain.v1"


@dataclass(frozen=True, slots=True)
class Answer:
    data: dict[str, Any] = field(default_factory=dict)
    code: str | None = None  # the API's error code: envelope `error.code`, or `grey-error-code`
    status: int | None = None  # HTTP status, or the gRPC status value
    error: dict[str, Any] = field(default_factory=dict)  # REST: the whole envelope's `error`
    details: tuple[Any, ...] = ()  # gRPC: the rich status details (ErrorInfo, openmcp Error)

    @property
    def ok(self) -> bool:
        return self.code is None


def _plain(message: betterproto2.Message) -> dict[str, Any]:
    """A reply as the REST body would be: snake_case, statuses without their enum prefix."""
    data = message.to_dict(casing=betterproto2.Casing.SNAKE)
    if isinstance(data.get("status"), str):
        data["status"] = data["status"].removeprefix("TASK_STATUS_")
    return data


class RestOpenMcp:
    name = "rest"

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    @staticmethod
    def _answer(response: httpx.Response) -> Answer:
        if response.status_code >= 400:
            error = response.json()["error"]
            return Answer(code=error["code"], status=response.status_code, error=error)
        return Answer(data=response.json(), status=response.status_code)

    async def authenticate(self, workspace_id: str, secret: str) -> Answer:
        body = {"workspace_id": workspace_id, "workspace_secret": secret}
        return self._answer(await self.client.post("/v1/auth/token", json=body))

    async def submit(self, token: str, **body: Any) -> Answer:
        response = await self.client.post("/v1/tasks", json=body, headers=_bearer(token))
        return self._answer(response)

    async def get(self, token: str, task_id: str) -> Answer:
        return self._answer(await self.client.get(f"/v1/tasks/{task_id}", headers=_bearer(token)))

    async def events(self, token: str, task_id: str) -> tuple[Answer, list[dict[str, Any]]]:
        response = await self.client.get(f"/v1/tasks/{task_id}/events", headers=_bearer(token))
        if response.status_code >= 400:
            return self._answer(response), []
        assert response.headers["content-type"].startswith("text/event-stream")
        events = parse_sse(response.text)
        assert events[-1] == ("done", {}), events
        assert all(name == "status" for name, _ in events[:-1])
        return Answer(status=response.status_code), [data for _, data in events[:-1]]


class GrpcOpenMcp:
    name = "grpc"

    def __init__(self, channel: Channel) -> None:
        self.channel = channel

    async def _call(
        self, rpc: str, token: str | None, stream_replies: bool = False, **request: Any
    ) -> tuple[Answer, list[dict[str, Any]]]:
        service, method = rpc.split(".")
        request_type: type[betterproto2.Message] = RPC_MESSAGES[rpc][0]
        reply_type: type[betterproto2.Message] = RPC_MESSAGES[rpc][1]
        metadata = {"authorization": f"Bearer {token}"} if token else {}
        cardinality = Cardinality.UNARY_STREAM if stream_replies else Cardinality.UNARY_UNARY
        replies: list[dict[str, Any]] = []
        try:
            async with self.channel.request(
                f"/{PACKAGE}.{service}/{method}",
                cardinality,
                request_type,
                reply_type,
                metadata=metadata,
                timeout=15,
            ) as stream:
                await stream.send_message(request_type.from_dict(request), end=True)
                while (reply := await stream.recv_message()) is not None:
                    replies.append(_plain(reply))
                    if not stream_replies:
                        break
                await stream.recv_trailing_metadata()
        except GRPCError as error:
            trailers: dict[str, Any] = dict(stream.trailing_metadata or {})
            code = str(trailers.get("grey-error-code") or error.status.name)
            return Answer(code=code, status=error.status.value, details=tuple(error.details or ())), []
        return Answer(data=replies[0] if replies and not stream_replies else {}, status=0), replies

    async def authenticate(self, workspace_id: str, secret: str) -> Answer:
        answer, _ = await self._call(
            "AuthService.Authenticate", None, workspace_id=workspace_id, workspace_secret=secret
        )
        if answer.ok:  # the reference names it `token` over gRPC, `access_token` over REST
            data = dict(answer.data)
            data["access_token"] = data.pop("token")
            return Answer(data=data, status=answer.status)
        return answer

    async def submit(self, token: str, **body: Any) -> Answer:
        answer, _ = await self._call("TaskService.SubmitTask", token, **body)
        return answer

    async def get(self, token: str, task_id: str) -> Answer:
        answer, _ = await self._call("TaskService.GetTask", token, task_id=task_id)
        return answer

    async def events(self, token: str, task_id: str) -> tuple[Answer, list[dict[str, Any]]]:
        return await self._call("TaskService.StreamTaskEvents", token, stream_replies=True, task_id=task_id)


OpenMcp = RestOpenMcp | GrpcOpenMcp


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(params=["rest", "grpc"])
def openmcp(
    request: pytest.FixtureRequest,
    api_rest: Callable[[str], httpx.AsyncClient],
) -> OpenMcp:
    """OpenMCP Chain over one transport (the test runs once per transport)."""
    if request.param == "rest":
        return RestOpenMcp(api_rest("openmcp"))
    api_grpc: Callable[[str], Channel] = request.getfixturevalue("api_grpc")
    return GrpcOpenMcp(api_grpc("openmcp"))


async def exchange(client: httpx.AsyncClient, workspace_id: str, secret: str) -> str:
    response = await client.post(
        "/v1/auth/token", json={"workspace_id": workspace_id, "workspace_secret": secret}
    )
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


@pytest.fixture
async def token(api_rest: Callable[[str], httpx.AsyncClient], key: str) -> str:
    """A token of workspace `acme` (every scope), exchanged over REST."""
    return await exchange(api_rest("openmcp"), "acme", key)


@pytest.fixture
async def other_token(api_rest: Callable[[str], httpx.AsyncClient], services: Services) -> str:
    """A token of workspace `globex`: the other tenant."""
    return await exchange(api_rest("openmcp"), "globex", make_key(services, "globex"))
