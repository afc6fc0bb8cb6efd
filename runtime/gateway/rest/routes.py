"""Which methods a contract offers on a path (for the `Allow` header of a 405)."""

from __future__ import annotations

import re
from collections.abc import Mapping

from runtime.api.operation import OperationSpec


class Routes:
    """The path patterns of one API's operations, compiled once."""

    def __init__(self, operations: Mapping[str, OperationSpec]) -> None:
        by_path: dict[str, set[str]] = {}
        for operation in operations.values():
            by_path.setdefault(operation.path, set()).add(operation.method)
        self._patterns = tuple(
            (re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", path) + "$"), frozenset(methods))
            for path, methods in by_path.items()
        )

    def allowed_methods(self, path: str) -> list[str]:
        for pattern, methods in self._patterns:
            if pattern.match(path):
                return sorted(methods)
        return []
