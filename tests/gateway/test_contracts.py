"""The gateway is built from contract objects: any number of APIs, each on its own listeners,
chosen by `GREY_APIS` and placed by `GREY_<API>_REST_PORT` / `GREY_<API>_GRPC_PORT`."""

from __future__ import annotations

import dataclasses

import httpx
import pytest
from starlette.types import Receive, Scope, Send

from runtime.gateway.app import Platform, _ByPort
from runtime.gateway.contracts import CONTRACTS, GREY, enabled, ports
from runtime.services import Services
from runtime.settings import Settings

SQLITE = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def test_every_api_is_registered_with_its_spec_operations_and_handlers() -> None:
    assert list(CONTRACTS) == [
        "grey",
        "openmcp",
        "orchestrator",
        "cloudai",
        "gswarm_host",
        "gswarm_client",
        "gswarm_profiler",
    ]
    for contract in CONTRACTS.values():
        assert contract.spec.parent.name == contract.name
        assert set(contract.handlers) == set(contract.operations)
    ports_taken = [(c.rest_port, c.grpc_port) for c in CONTRACTS.values()]
    assert ports_taken == [
        (8080, 4100),
        (8081, 4101),
        (8082, 50051),
        (8083, None),
        (9010, None),  # gswarm's reference ports: REST only
        (9011, None),
        (8091, None),
    ]
    assert [c.name for c in CONTRACTS.values() if c.envelope] == [
        "gswarm_host",
        "gswarm_client",
        "gswarm_profiler",
    ]


def test_grey_is_registered_with_its_spec_operations_and_handlers() -> None:
    assert CONTRACTS["grey"] is GREY
    assert GREY.spec.name == "openapi.yaml" and GREY.spec.parent.name == "grey"
    assert set(GREY.handlers) == set(GREY.operations)
    assert (GREY.rest_port, GREY.grpc_port) == (8080, 4100)


def test_apis_and_ports_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GREY_APIS", "grey")
    monkeypatch.setenv("GREY_OPENMCP_REST_PORT", "8181")
    monkeypatch.setenv("GREY_GREY_GRPC_PORT", "4242")
    monkeypatch.setenv("GREY_REST_PORT", "9090")
    settings = Settings.from_env()
    assert settings.apis == ("grey",)
    assert settings.api_ports == {"openmcp_rest": 8181, "grey_grpc": 4242}
    assert ports(GREY, settings) == (9090, 4242)
    other = dataclasses.replace(GREY, name="openmcp", rest_port=8100, grpc_port=4200)
    assert ports(other, settings) == (8181, 4200)


def test_the_cli_ports_of_grey_stay() -> None:
    assert ports(GREY, Settings.from_env(rest_port=1234, grpc_port=5678)) == (1234, 5678)


def test_an_unknown_api_is_refused() -> None:
    assert enabled(None) == list(CONTRACTS.values())
    with pytest.raises(ValueError, match="unknown API nope"):
        enabled(["nope"])


@SQLITE
async def test_two_contracts_are_served_side_by_side_on_their_own_listeners(services: Services) -> None:
    twin = dataclasses.replace(GREY, name="twin", title="Twin", rest_port=8081, grpc_port=4101)
    platform = Platform.build(services, [GREY, twin])
    assert list(platform.gateways) == ["grey", "twin"]
    assert platform.gateways["twin"].dispatcher.contract is twin
    lines = [listener.line(16) for listener in platform.listeners()]
    assert lines == [
        "Grey Distributed  REST  http://127.0.0.1:8080",
        "Grey Distributed  gRPC  127.0.0.1:4100",
        "Twin              REST  http://127.0.0.1:8081",
        "Twin              gRPC  127.0.0.1:4101",
    ]
    seen: list[str] = []

    def app(name: str):
        async def answer(scope: Scope, receive: Receive, send: Send) -> None:
            seen.append(name)
            await platform.gateways[name].rest(scope, receive, send)

        return answer

    router = _ByPort({8080: {"": app("grey")}, 8081: {"": app("twin")}})
    for port in (8081, 8080):

        async def on_port(scope: Scope, receive: Receive, send: Send, port: int = port) -> None:
            await router({**scope, "server": ("127.0.0.1", port)}, receive, send)

        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=on_port), base_url="http://t"
        ) as client:
            assert (await client.get("/health")).status_code == 200
    assert seen == ["twin", "grey"]


@SQLITE
def test_two_rest_apis_on_one_port_without_base_paths_are_refused_by_name(services: Services) -> None:
    twin = dataclasses.replace(GREY, name="twin", title="Twin", rest_port=8080, grpc_port=4101)
    platform = Platform.build(services, [GREY, twin])
    with pytest.raises(ValueError, match="port 8080 is given to grey REST and to twin REST"):
        platform.listeners()


@SQLITE
def test_grpc_listeners_may_share_a_port(services: Services) -> None:
    """gRPC method paths carry the proto package, so one server holds several APIs."""
    twin = dataclasses.replace(GREY, name="twin", title="Twin", rest_port=8081, grpc_port=4100)
    platform = Platform.build(services, [GREY, twin])
    assert [listener.port for listener in platform.listeners() if listener.transport == "gRPC"] == [
        4100,
        4100,
    ]


@SQLITE
async def test_apis_mounted_on_one_port_answer_under_their_base_paths(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GREY_OPENMCP_REST_PORT", "8080")
    monkeypatch.setenv("GREY_ORCHESTRATOR_REST_PORT", "8080")
    monkeypatch.setenv("GREY_OPENMCP_BASE_PATH", "/openmcp")
    monkeypatch.setenv("GREY_ORCHESTRATOR_BASE_PATH", "/orchestrator/")
    monkeypatch.setenv("GREY_CLOUDAI_REST_PORT", "8080")
    monkeypatch.setenv("GREY_CLOUDAI_BASE_PATH", "/cloudai")
    settings = Settings.from_env(database_url=services.settings.database_url)
    assert settings.api_base_paths == {
        "openmcp": "/openmcp",
        "orchestrator": "/orchestrator",
        "cloudai": "/cloudai",
    }
    mounted = [CONTRACTS[name] for name in ("grey", "openmcp", "orchestrator", "cloudai")]
    platform = Platform.build(dataclasses.replace(services, settings=settings), mounted)
    rest = [listener for listener in platform.listeners() if listener.transport == "REST"]
    assert [(listener.port, listener.base_path) for listener in rest] == [
        (8080, ""),
        (8080, "/openmcp"),
        (8080, "/orchestrator"),
        (8080, "/cloudai"),
    ]
    assert rest[1].line() == "OpenMCP Chain  REST  http://127.0.0.1:8080/openmcp"
    router = _ByPort({8080: {listener.base_path: platform.gateways[listener.api].rest for listener in rest}})
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=router), base_url="http://t") as client:
        grey = await client.get("/v1/tasks/nope")
        openmcp = await client.get("/openmcp/v1/tasks/nope")
        orchestrator = await client.get("/orchestrator/api/v1/tasks/nope")
        health = await client.get("/orchestrator/health")
        cloudai = await client.get("/cloudai/api/tasks")
    assert grey.json()["error"]["code"] == "unauthorized"
    assert openmcp.json()["error"]["code"] == "UNAUTHENTICATED"
    assert orchestrator.json()["error"]["code"] == "UNAUTHENTICATED"
    assert health.status_code == 200 and "uptime_seconds" in health.json()
    assert cloudai.json()["error"]["code"] == "UNAUTHORIZED"


@SQLITE
def test_a_base_path_must_start_with_a_slash(services: Services) -> None:
    settings = dataclasses.replace(services.settings, api_base_paths={"openmcp": "openmcp"})
    platform = Platform.build(dataclasses.replace(services, settings=settings), list(CONTRACTS.values()))
    with pytest.raises(ValueError, match="GREY_OPENMCP_BASE_PATH must start with '/'"):
        platform.listeners()
