"""The contracts this process can serve: one `ApiContract` per `spec/<api>/`.

A contract ties together what codegen writes for an API (`generated/<api>/`: its operation
table, gRPC bindings and converters), the hand-written handler table
(`handlers/<api>/__init__.py:HANDLERS`) and where it listens by default. The gateway is
built from these objects only; adding an API is adding one entry to `CONTRACTS`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import handlers.grey
from generated.grey import grpc_convert as grey_convert
from generated.grey import grpc_service as grey_grpc
from generated.grey.operations import OPERATIONS as GREY_OPERATIONS
from generated.grey.pb import grey_pb2
from runtime.api.context import RequestContext
from runtime.api.grpc import GrpcCalls
from runtime.api.operation import OperationSpec
from runtime.gateway.grpc.convert import GREY_REQUEST_ADAPTERS, GREY_RESPONSE_ADAPTERS, Conversion
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

    @property
    def env_prefix(self) -> str:
        """`GREY_<API>_`: where this API's settings are read from the environment."""
        return f"GREY_{self.name.upper()}_"


GREY = ApiContract(
    name="grey",
    title="Grey Distributed",
    spec=SPEC_ROOT / "grey" / "openapi.yaml",
    operations=GREY_OPERATIONS,
    handlers=handlers.grey.HANDLERS,
    rest_port=8080,
    grpc_port=4100,
    grpc_services=lambda calls: [grey_grpc.GreyServiceBinding(calls), grey_grpc.AuthServiceBinding(calls)],
    conversion=Conversion(grey_convert.CONVERTERS, GREY_REQUEST_ADAPTERS, GREY_RESPONSE_ADAPTERS),
    grpc_descriptor=grey_pb2.DESCRIPTOR,
)

CONTRACTS: dict[str, ApiContract] = {contract.name: contract for contract in (GREY,)}
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
