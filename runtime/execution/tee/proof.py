"""The proof of one task: everything `grey verify-proof` needs, in one file.

JSON with `_type` https://grey.dev/tee/proof/v1: the task id, platform and debug flag, the
result, the receipt (a DSSE envelope), the quote (base64), the nonce (hex), the node key
(securesystemslib's key format) and the measurement manifest. It is what
`GET /v1/tasks/{id}/proof?format=binary` answers.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

from runtime.store.tee import ProofRecord

PROOF_TYPE = "https://grey.dev/tee/proof/v1"


class ProofFormatError(ValueError):
    """Not a proof file."""


@dataclass(frozen=True)
class Proof:
    task_id: str
    node_id: str
    platform: str
    debug: bool
    result: Any
    receipt: dict[str, Any]
    quote: bytes
    nonce: bytes
    node_key: dict[str, Any]
    measurement: dict[str, Any]

    @classmethod
    def of(cls, record: ProofRecord, result: Any, measurement: dict[str, Any]) -> Proof:
        """The proof of a stored proof record, its task's result and its enclave's manifest."""
        return cls(
            task_id=record.task_id,
            node_id=record.node_id,
            platform=record.platform,
            debug=record.debug,
            result=result,
            receipt=record.receipt,
            quote=record.quote,
            nonce=record.nonce,
            node_key=record.node_key,
            measurement=measurement,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "_type": PROOF_TYPE,
            "task_id": self.task_id,
            "node_id": self.node_id,
            "platform": self.platform,
            "debug": self.debug,
            "result": self.result,
            "receipt": self.receipt,
            "quote": base64.b64encode(self.quote).decode(),
            "nonce": self.nonce.hex(),
            "node_key": self.node_key,
            "measurement": self.measurement,
        }

    def to_bytes(self) -> bytes:
        return json.dumps(self.to_json(), indent=1, sort_keys=True, ensure_ascii=False).encode() + b"\n"

    @classmethod
    def from_bytes(cls, raw: bytes) -> Proof:
        try:
            data = json.loads(raw)
            if not isinstance(data, dict) or data.get("_type") != PROOF_TYPE:
                raise ProofFormatError(f"not a proof: `_type` is not {PROOF_TYPE}")
            return cls(
                task_id=str(data["task_id"]),
                node_id=str(data["node_id"]),
                platform=str(data["platform"]),
                debug=bool(data["debug"]),
                result=data["result"],
                receipt=dict(data["receipt"]),
                quote=base64.b64decode(data["quote"], validate=True),
                nonce=bytes.fromhex(data["nonce"]),
                node_key=dict(data["node_key"]),
                measurement=dict(data["measurement"]),
            )
        except ProofFormatError:
            raise
        except (ValueError, KeyError, TypeError, UnicodeDecodeError) as error:
            raise ProofFormatError(f"not a proof: {type(error).__name__}: {error}") from None
