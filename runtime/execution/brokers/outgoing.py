"""What the intake hands a broker to send: a message and its delay (ms), for every broker."""

from __future__ import annotations

from typing import Any

import dramatiq

Outgoing = tuple[dramatiq.Message[Any], int | None]
