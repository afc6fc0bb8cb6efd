"""betterproto2 messages ⇄ the shared models, through the converters codegen writes per API.

Field names are the same on both sides (the drift check holds codegen to it), so a request
message becomes the same input dict a REST body does. The few differences a contract
allows (`x-grey-drift-allow`) are bridged by its adapters, by operation (Grey's are below).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import betterproto2
from pydantic import BaseModel

from runtime.api.errors import ApiError
from runtime.api.operation import OperationSpec
from runtime.api.protobuf import Converters

Adapter = Callable[[Any], Any]


def _submit_payload(raw: dict[str, Any]) -> dict[str, Any]:
    """Grey Distributed's example sends the payload as JSON bytes; payload_struct is the typed form."""
    encoded = raw.pop("payload", None)
    struct = raw.pop("payload_struct", None)
    if encoded:
        try:
            raw["payload"] = json.loads(encoded)
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise ApiError("invalid_payload", f"payload is not JSON: {error}", {"field": "payload"}) from None
    elif struct is not None:
        raw["payload"] = struct
    return raw


def _token(model: Any) -> dict[str, Any]:
    """OpenMCP Chain calls it `access_token` over REST and `token` over gRPC."""
    return {"token": model.access_token, "expires_at": model.expires_at}


GREY_REQUEST_ADAPTERS: dict[str, Adapter] = {"submitTask": _submit_payload}
GREY_RESPONSE_ADAPTERS: dict[str, Adapter] = {"createToken": _token}
OPENMCP_RESPONSE_ADAPTERS: dict[str, Adapter] = {"authenticate": _token}


@dataclass(frozen=True, slots=True)
class Conversion:
    """One API's converters (generated/<api>/grpc_convert.py) and its adapters, by operation."""

    converters: Converters
    request_adapters: Mapping[str, Adapter] = field(default_factory=dict)
    response_adapters: Mapping[str, Adapter] = field(default_factory=dict)

    def message_to_input(self, operation: OperationSpec, message: betterproto2.Message) -> dict[str, Any]:
        assert operation.grpc is not None
        raw = self.converters[operation.grpc][0](message)
        adapter = self.request_adapters.get(operation.operation_id)
        return adapter(raw) if adapter else raw

    def model_to_message(self, operation: OperationSpec, model: BaseModel) -> betterproto2.Message:
        assert operation.grpc is not None
        adapter = self.response_adapters.get(operation.operation_id)
        return self.converters[operation.grpc][1](adapter(model) if adapter else model)
