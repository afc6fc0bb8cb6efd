"""listTasks cursors: the position (created_at, task_id) of the last row of a page.

Written `<microseconds since the epoch>.<task_id>`. Every string of that shape is a valid
position in the keyset order, so the contract can state the pattern and a well-formed
cursor never fails; anything else raises InvalidCursor.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from runtime.store.errors import InvalidCursor

PATTERN = re.compile(r"^([0-9]{1,17})\.([A-Za-z0-9_-]{1,128})$")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def encode_cursor(created_at: datetime, task_id: str) -> str:
    micros = (created_at - _EPOCH) // timedelta(microseconds=1)
    return f"{micros}.{task_id}"


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """Inverse of `encode_cursor`; anything else raises InvalidCursor."""
    match = PATTERN.match(cursor)
    if match is None:
        raise InvalidCursor(f"invalid cursor {cursor!r}")
    return _EPOCH + timedelta(microseconds=int(match.group(1))), match.group(2)
