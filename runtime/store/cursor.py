"""Opaque listTasks cursors: the (created_at, task_id) of the last row of a page."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime

from runtime.store.errors import InvalidCursor


def encode_cursor(created_at: datetime, task_id: str) -> str:
    """URL-safe base64 of a small JSON object, without padding."""
    raw = json.dumps({"c": created_at.isoformat(), "t": task_id}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """Inverse of `encode_cursor`; anything else raises InvalidCursor."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        data = json.loads(raw)
        created_at = datetime.fromisoformat(data["c"])
        task_id = data["t"]
    except (binascii.Error, ValueError, TypeError, KeyError, UnicodeDecodeError) as exc:
        raise InvalidCursor(f"invalid cursor {cursor!r}") from exc
    if created_at.tzinfo is None or not isinstance(task_id, str):
        raise InvalidCursor(f"invalid cursor {cursor!r}")
    return created_at, task_id
