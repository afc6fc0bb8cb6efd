"""The code measurement of a TEE worker: what its MRENCLAVE is the digest of.

A manifest lists, by SHA-256, every source file of the worker's runtime (the execution and
store packages, the cluster config module, the task-function modules), the Python and
Dramatiq versions, and each registered task function's own source. MRENCLAVE is the
SHA-256 of the manifest as canonical JSON, so anyone holding the same sources can
recompute it, and a receipt's code digest can be looked up in it.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import json
import marshal
import sys
from pathlib import Path
from typing import Any

from runtime.execution.functions import TaskFunction, function_names, get_function, task_modules

FORMAT = "grey-tee-measurement/v1"
_RUNTIME_PACKAGES = ("runtime.execution", "runtime.store", "runtime.config")


def canonical_json(value: Any) -> bytes:
    """Sorted keys, no spaces, UTF-8: the bytes every digest of JSON here is taken over."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode()


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def function_digest(function: TaskFunction) -> str:
    """SHA-256 of the function's source (of its code object where no source is found)."""
    try:
        code = inspect.getsource(function.fn).encode()
    except (OSError, TypeError):
        code = marshal.dumps(function.fn.__code__)
    return sha256_hex(code)


def _files(module_name: str) -> list[Path]:
    module = importlib.import_module(module_name)
    origin = Path(inspect.getfile(module))
    if origin.name == "__init__.py":
        return sorted(origin.parent.rglob("*.py"))
    return [origin]


def _root(path: Path) -> Path:
    here = Path(inspect.getfile(importlib.import_module("runtime"))).parent.parent
    try:
        return path.relative_to(here)
    except ValueError:
        return Path(path.name)


def manifest() -> dict[str, Any]:
    """The manifest of this process's code, as a TEE node measures it when it starts."""
    import dramatiq

    files: dict[str, str] = {}
    for name in (*_RUNTIME_PACKAGES, *task_modules()):
        for path in _files(name):
            files[str(_root(path))] = sha256_hex(path.read_bytes())
    functions = {}
    for name in function_names():
        function = get_function(name)
        if function is not None:
            functions[name] = function_digest(function)
    return {
        "format": FORMAT,
        "python": sys.version.split()[0],
        "dramatiq": dramatiq.__version__,
        "files": files,
        "functions": functions,
    }


def mrenclave_of(manifest_: dict[str, Any]) -> bytes:
    return hashlib.sha256(canonical_json(manifest_)).digest()
