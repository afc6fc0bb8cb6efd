"""betterproto2 messages ⇄ the shared pydantic models, through their common JSON form.

Field names are the same on both sides (the drift check holds codegen to it), so ProtoJSON
with snake_case keys is the REST JSON. The few differences the contract allows are
bridged here, by operation.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from typing import Any

import betterproto2
from pydantic import BaseModel

from runtime.errors import ApiError

Adapter = Callable[[dict[str, Any]], dict[str, Any]]


def _submit_payload(raw: dict[str, Any]) -> dict[str, Any]:
    """Seed 000's example sends the payload as JSON bytes; payload_struct is the typed form."""
    encoded = raw.pop("payload", None)
    struct = raw.pop("payload_struct", None)
    if encoded:
        try:
            raw["payload"] = json.loads(base64.b64decode(encoded))
        except (binascii.Error, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise ApiError("invalid_payload", f"payload is not JSON: {error}") from None
    elif struct is not None:
        raw["payload"] = struct
    return raw


def _token(raw: dict[str, Any]) -> dict[str, Any]:
    return {"token": raw["access_token"], "expires_at": raw["expires_at"]}


REQUEST_ADAPTERS: dict[str, Adapter] = {"submitTask": _submit_payload}
RESPONSE_ADAPTERS: dict[str, Adapter] = {"createToken": _token}


def message_to_input(operation_id: str, message: betterproto2.Message) -> dict[str, Any]:
    raw = message.to_dict(casing=betterproto2.Casing.SNAKE)
    adapter = REQUEST_ADAPTERS.get(operation_id)
    return adapter(raw) if adapter else raw


def model_to_message(
    operation_id: str, model: BaseModel, message_type: type[betterproto2.Message]
) -> betterproto2.Message:
    raw = model.model_dump(mode="json", exclude_none=True)
    adapter = RESPONSE_ADAPTERS.get(operation_id)
    return message_type.from_dict(adapter(raw) if adapter else raw)
