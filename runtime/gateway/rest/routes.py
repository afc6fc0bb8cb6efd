"""Which methods the contract offers on a path (for the `Allow` header of a 405)."""

from __future__ import annotations

import re
from functools import cache

from generated.grey.operations import OPERATIONS


@cache
def _patterns() -> tuple[tuple[re.Pattern[str], frozenset[str]], ...]:
    by_path: dict[str, set[str]] = {}
    for operation in OPERATIONS.values():
        by_path.setdefault(operation.path, set()).add(operation.method)
    return tuple(
        (re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", path) + "$"), frozenset(methods))
        for path, methods in by_path.items()
    )


def allowed_methods(path: str) -> list[str]:
    for pattern, methods in _patterns():
        if pattern.match(path):
            return sorted(methods)
    return []
