"""Non-JSON answers a handler may return; each transport renders them."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Binary:
    content: bytes
    media_type: str = "application/octet-stream"


@dataclass(frozen=True, slots=True)
class PlainText:
    text: str
    media_type: str = "text/plain; charset=utf-8"
