"""betterproto2 messages ⇄ the shared models, through the converters codegen writes.

Field names are the same on both sides (the drift check holds codegen to it), so a request
message becomes the same input dict a REST body does. The few differences the contract
allows (`x-grey-drift-allow`) are bridged here, by operation.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import betterproto2
from pydantic import BaseModel

from generated.grey.grpc_convert import CONVERTERS
from runtime.api.errors import ApiError
from runtime.api.operation import OperationSpec

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


REQUEST_ADAPTERS: dict[str, Adapter] = {"submitTask": _submit_payload}
RESPONSE_ADAPTERS: dict[str, Adapter] = {"createToken": _token}


def message_to_input(operation: OperationSpec, message: betterproto2.Message) -> dict[str, Any]:
    assert operation.grpc is not None
    raw = CONVERTERS[operation.grpc][0](message)
    adapter = REQUEST_ADAPTERS.get(operation.operation_id)
    return adapter(raw) if adapter else raw


def model_to_message(operation: OperationSpec, model: BaseModel) -> betterproto2.Message:
    assert operation.grpc is not None
    adapter = RESPONSE_ADAPTERS.get(operation.operation_id)
    return CONVERTERS[operation.grpc][1](adapter(model) if adapter else model)
