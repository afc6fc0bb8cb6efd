"""Receipts: an in-toto Statement (v1) in a DSSE envelope, signed by the node key.

```
Statement  _type          https://in-toto.io/Statement/v1
           subject        [{name: "<task_id>/result", digest: {sha256: <canonical JSON of the result>}}]
           predicateType  https://grey.dev/tee/execution/v1
           predicate      task_id, payload {digest}, code [{name, digest}] (each function run),
                          platform, debug, measurement {mrenclave, mrsigner},
                          node {node_id, keyid}, quote {digest, nonce}, started_at, finished_at
DSSE       payloadType    application/vnd.in-toto+json; signature by the node key (ECDSA P-256)
```

The quote's report data is SHA-256(node public key (DER) ‖ nonce), so the receipt's signer
is the key generated inside the attested worker, and the predicate names that quote.
Envelopes are securesystemslib's (`securesystemslib.dsse`), keys its `SSlibKey`.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives import serialization
from securesystemslib.dsse import Envelope
from securesystemslib.signer import Key, Signer, SSlibKey

from runtime.execution.tee.measurement import canonical_json, sha256_hex

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PAYLOAD_TYPE = "application/vnd.in-toto+json"  # in_toto.models.metadata.ENVELOPE_PAYLOAD_TYPE
PREDICATE_TYPE = "https://grey.dev/tee/execution/v1"


def result_digest(result: Any) -> str:
    return sha256_hex(canonical_json(result))


def statement(
    *,
    task_id: str,
    payload: Any,
    code: dict[str, str],
    result: Any,
    platform: str,
    debug: bool,
    mrenclave: str,
    mrsigner: str,
    node_id: str,
    keyid: str,
    quote: bytes,
    nonce: bytes,
    started_at: datetime,
    finished_at: datetime,
) -> dict[str, Any]:
    """The Statement of one task's execution; `code` is function name -> SHA-256 of its source."""
    return {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": f"{task_id}/result", "digest": {"sha256": result_digest(result)}}],
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "task_id": task_id,
            "payload": {"digest": {"sha256": sha256_hex(canonical_json(payload))}},
            "code": [{"name": name, "digest": {"sha256": digest}} for name, digest in sorted(code.items())],
            "platform": platform,
            "debug": debug,
            "measurement": {"mrenclave": mrenclave, "mrsigner": mrsigner},
            "node": {"node_id": node_id, "keyid": keyid},
            "quote": {"digest": {"sha256": sha256_hex(quote)}, "nonce": nonce.hex()},
            "started_at": started_at.isoformat(),
            "finished_at": finished_at.isoformat(),
        },
    }


def sign(statement_: dict[str, Any], signer: Signer) -> dict[str, Any]:
    """The DSSE envelope (as JSON) of `statement_`, signed by `signer`."""
    envelope = Envelope(canonical_json(statement_), PAYLOAD_TYPE, {})
    envelope.sign(signer)
    result: dict[str, Any] = envelope.to_dict()
    return result


def open_envelope(envelope: dict[str, Any], key: Key) -> dict[str, Any]:
    """The statement of an envelope `key` signed; securesystemslib's VerificationError (or
    ValueError, KeyError for a malformed one) otherwise."""
    parsed = Envelope.from_dict(json.loads(json.dumps(envelope)))  # from_dict edits its input
    if parsed.payload_type != PAYLOAD_TYPE:
        raise ValueError(f"payload type {parsed.payload_type!r}, expected {PAYLOAD_TYPE}")
    parsed.verify([key], 1)
    value = json.loads(parsed.payload)
    if not isinstance(value, dict) or value.get("_type") != STATEMENT_TYPE:
        raise ValueError("the envelope holds no in-toto Statement v1")
    return value


def key_der(key: SSlibKey) -> bytes:
    """The public key as DER SubjectPublicKeyInfo: what the quote's report data binds."""
    public = serialization.load_pem_public_key(key.keyval["public"].encode())
    return public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def key_to_dict(key: SSlibKey) -> dict[str, Any]:
    return {"keyid": key.keyid, **key.to_dict()}


def key_from_dict(data: dict[str, Any]) -> SSlibKey:
    fields = dict(data)
    keyid = str(fields.pop("keyid"))
    return SSlibKey.from_dict(keyid, fields)
