"""The contracts this process can serve: one `ApiContract` per `spec/<api>/`.

A contract ties together what codegen writes for an API (`generated/<api>/`: its operation
table, gRPC bindings and converters), the hand-written handler table
(`handlers/<api>/__init__.py:HANDLERS`) and where it listens by default. The gateway is
built from these objects only; adding an API is adding one entry to `CONTRACTS`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import generated.cloudai.errors
import generated.cloudai.operations
import generated.grey.errors
import generated.grey.grpc_convert
import generated.grey.grpc_service
import generated.grey.operations
import generated.gswarm_client.errors
import generated.gswarm_client.operations
import generated.gswarm_host.errors
import generated.gswarm_host.operations
import generated.gswarm_profiler.errors
import generated.gswarm_profiler.operations
import generated.openmcp.errors
import generated.openmcp.grpc_convert
import generated.openmcp.grpc_service
import generated.openmcp.operations
import generated.orchestrator.errors
import generated.orchestrator.grpc_convert
import generated.orchestrator.grpc_service
import generated.orchestrator.operations
import handlers.cloudai
import handlers.grey
import handlers.gswarm_client
import handlers.gswarm_host
import handlers.gswarm_profiler
import handlers.openmcp
import handlers.orchestrator
from generated.grey.pb import grey_pb2
from generated.openmcp.pb import openmcp_pb2
from generated.orchestrator.pb import orchestrator_pb2
from handlers.cloudai.telemetry_socket import TELEMETRY
from runtime.api.context import RequestContext
from runtime.api.grpc import GrpcCalls
from runtime.api.operation import OperationSpec
from runtime.api.websocket import WebSocketSpec
from runtime.gateway.grpc.convert import (
    GREY_REQUEST_ADAPTERS,
    GREY_RESPONSE_ADAPTERS,
    OPENMCP_RESPONSE_ADAPTERS,
    Conversion,
)
from runtime.services.auth import CLOUDAI_ANONYMOUS_SCOPES
from runtime.settings import Settings

SPEC_ROOT = Path(__file__).resolve().parents[2] / "spec"

Handler = Callable[[Any, RequestContext], Any]
GrpcServices = Callable[[GrpcCalls], Sequence[Any]]


@dataclass(frozen=True, slots=True)
class ApiContract:
    """One API: its spec, operations, handlers, gRPC bindings and default listeners."""

    name: str  # the folder name: spec/<name>/, generated/<name>/, handlers/<name>/
    title: str  # for people: the listener lines of `grey serve`
    spec: Path  # the OpenAPI document connexion routes and validates against
    operations: Mapping[str, OperationSpec]
    handlers: Mapping[str, Handler]
    rest_port: int
    grpc_port: int | None = None  # None: a REST-only API (no proto)
    grpc_services: GrpcServices | None = None  # the generated bindings, given the dispatcher
    conversion: Conversion | None = None  # messages ⇄ models of the gRPC side
    # The grpcio stubs' file descriptor: importing it registers the API's protos in the default
    # descriptor pool, which server reflection answers from.
    grpc_descriptor: Any = None
    # Internal error code → this API's code (generated/<api>/errors.py, from the contract's
    # `x-grey-error-codes`); a code missing here is the API's word already.
    error_codes: Mapping[str, str] = field(default_factory=dict)
    # (alias, target) path prefixes: a path under `alias` answers as under `target`.
    path_aliases: tuple[tuple[str, str], ...] = ()
    # (API code, message) → a message of the API's proto sent in the rich status next to
    # google.rpc.ErrorInfo, where the API's reference asks for its own error payload.
    grpc_error_detail: Callable[[str, str], Any] | None = None
    # What a call without credentials may do when the operator names the tenant it acts as
    # (`GREY_<API>_ANONYMOUS_TENANT`); empty: this API never takes calls without credentials.
    anonymous_scopes: frozenset[str] = frozenset()
    # WebSocket endpoints by path (under the API's base path): the gateway authenticates the
    # upgrade, then calls the handler. An upgrade on any other path answers 404 in the
    # API's envelope (runtime/gateway/rest/websocket.py).
    websockets: Mapping[str, WebSocketSpec] = field(default_factory=dict)
    # `x-grey-envelope: true` (generated/<api>/operations.py:ENVELOPE): every REST answer is
    # `{success, data, error}` (runtime/api/envelope.py), successes and errors alike.
    envelope: bool = False

    def public_code(self, code: str) -> str:
        """This API's word for the internal error code `code`."""
        return self.error_codes.get(code, code)

    @property
    def env_prefix(self) -> str:
        """`GREY_<API>_`: where this API's settings are read from the environment."""
        return f"GREY_{self.name.upper()}_"


GREY = ApiContract(
    name="grey",
    title="Grey Distributed",
    spec=SPEC_ROOT / "grey" / "openapi.yaml",
    operations=generated.grey.operations.OPERATIONS,
    handlers=handlers.grey.HANDLERS,
    rest_port=8080,
    grpc_port=4100,
    grpc_services=lambda calls: [
        generated.grey.grpc_service.GreyServiceBinding(calls),
        generated.grey.grpc_service.AuthServiceBinding(calls),
    ],
    conversion=Conversion(
        generated.grey.grpc_convert.CONVERTERS, GREY_REQUEST_ADAPTERS, GREY_RESPONSE_ADAPTERS
    ),
    grpc_descriptor=grey_pb2.DESCRIPTOR,
    error_codes=generated.grey.errors.ERROR_CODES,
    path_aliases=(("/api/v1", "/v1"),),  # the self-hosted prefix of Grey's reference
)

OPENMCP = ApiContract(
    name="openmcp",
    title="OpenMCP Chain",
    spec=SPEC_ROOT / "openmcp" / "openapi.yaml",
    operations=generated.openmcp.operations.OPERATIONS,
    handlers=handlers.openmcp.HANDLERS,
    rest_port=8081,
    grpc_port=4101,
    grpc_services=lambda calls: [
        generated.openmcp.grpc_service.AuthServiceBinding(calls),
        generated.openmcp.grpc_service.TaskServiceBinding(calls),
    ],
    conversion=Conversion(
        generated.openmcp.grpc_convert.CONVERTERS, response_adapters=OPENMCP_RESPONSE_ADAPTERS
    ),
    grpc_descriptor=openmcp_pb2.DESCRIPTOR,
    error_codes=generated.openmcp.errors.ERROR_CODES,
    # "status.details carries the same machine-readable error payload serialized as protobuf"
    grpc_error_detail=lambda code, message: openmcp_pb2.Error(code=code, message=message),
)

ORCHESTRATOR = ApiContract(
    name="orchestrator",
    title="Orchestrator",
    spec=SPEC_ROOT / "orchestrator" / "openapi.yaml",
    operations=generated.orchestrator.operations.OPERATIONS,
    handlers=handlers.orchestrator.HANDLERS,
    rest_port=8082,
    grpc_port=50051,  # where the reference's example connects
    grpc_services=lambda calls: [generated.orchestrator.grpc_service.OrchestratorServiceBinding(calls)],
    conversion=Conversion(generated.orchestrator.grpc_convert.CONVERTERS),
    grpc_descriptor=orchestrator_pb2.DESCRIPTOR,
    error_codes=generated.orchestrator.errors.ERROR_CODES,
    grpc_error_detail=lambda code, message: orchestrator_pb2.Error(code=code, message=message),
)

CLOUDAI = ApiContract(
    name="cloudai",
    title="CloudAI",
    spec=SPEC_ROOT / "cloudai" / "openapi.yaml",
    operations=generated.cloudai.operations.OPERATIONS,
    handlers=handlers.cloudai.HANDLERS,
    rest_port=8083,  # the reference's 8080 is Grey's; REST + WebSocket only, no gRPC
    error_codes=generated.cloudai.errors.ERROR_CODES,
    # The reference runs without authentication; Grey only where the operator says so.
    anonymous_scopes=CLOUDAI_ANONYMOUS_SCOPES,
    websockets={"/ws/telemetry": TELEMETRY},
)

GSWARM_HOST = ApiContract(
    name="gswarm_host",
    title="gswarm Model Host",
    spec=SPEC_ROOT / "gswarm_host" / "openapi.yaml",
    operations=generated.gswarm_host.operations.OPERATIONS,
    handlers=handlers.gswarm_host.HANDLERS,
    rest_port=9010,  # the reference's Model Host API; REST only
    error_codes=generated.gswarm_host.errors.ERROR_CODES,
    envelope=generated.gswarm_host.operations.ENVELOPE,
)

GSWARM_CLIENT = ApiContract(
    name="gswarm_client",
    title="gswarm Model Client",
    spec=SPEC_ROOT / "gswarm_client" / "openapi.yaml",
    operations=generated.gswarm_client.operations.OPERATIONS,
    handlers=handlers.gswarm_client.HANDLERS,
    rest_port=9011,  # the reference's Model Client API; REST only
    error_codes=generated.gswarm_client.errors.ERROR_CODES,
    envelope=generated.gswarm_client.operations.ENVELOPE,
)

GSWARM_PROFILER = ApiContract(
    name="gswarm_profiler",
    title="gswarm Profiler",
    spec=SPEC_ROOT / "gswarm_profiler" / "openapi.yaml",
    operations=generated.gswarm_profiler.operations.OPERATIONS,
    handlers=handlers.gswarm_profiler.HANDLERS,
    rest_port=8091,  # the reference's profiler HTTP API (its gRPC :8090 is not built)
    error_codes=generated.gswarm_profiler.errors.ERROR_CODES,
    envelope=generated.gswarm_profiler.operations.ENVELOPE,
)

CONTRACTS: dict[str, ApiContract] = {
    contract.name: contract
    for contract in (GREY, OPENMCP, ORCHESTRATOR, CLOUDAI, GSWARM_HOST, GSWARM_CLIENT, GSWARM_PROFILER)
}
"""Every API this build can serve, by name; `GREY_APIS` / `grey serve --apis` pick some."""


def enabled(names: Sequence[str] | None) -> list[ApiContract]:
    """The contracts named (all when None), in the order given; unknown names are an error."""
    if names is None:
        return list(CONTRACTS.values())
    unknown = [name for name in names if name not in CONTRACTS]
    if unknown:
        raise ValueError(f"unknown API {', '.join(unknown)}: this build serves {', '.join(CONTRACTS)}")
    return [CONTRACTS[name] for name in names]


def ports(contract: ApiContract, settings: Settings) -> tuple[int, int | None]:
    """(REST port, gRPC port or None) of an API: `GREY_<API>_REST_PORT` / `GREY_<API>_GRPC_PORT`
    over the contract's defaults; Grey's are also `GREY_REST_PORT` / `GREY_GRPC_PORT` and
    `grey serve --rest-port/--grpc-port` (the settings' rest_port and grpc_port)."""
    rest_default, grpc_default = contract.rest_port, contract.grpc_port
    if contract.name == GREY.name:
        rest_default, grpc_default = settings.rest_port, settings.grpc_port
    rest = settings.api_ports.get(f"{contract.name}_rest", rest_default)
    grpc = settings.api_ports.get(f"{contract.name}_grpc", grpc_default)
    return rest, grpc if contract.grpc_services is not None else None


def base_path(contract: ApiContract, settings: Settings) -> str:
    """The prefix the API's REST side answers under (`GREY_<API>_BASE_PATH`); "" for the root."""
    path = settings.api_base_paths.get(contract.name, "").rstrip("/")
    if path and not path.startswith("/"):
        raise ValueError(f"GREY_{contract.name.upper()}_BASE_PATH must start with '/': {path!r}")
    return path
