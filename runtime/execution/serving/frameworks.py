"""Serving frameworks: `builtin` (numpy on the CPU, the test checkpoint) and `vllm` where installed.

A framework turns a checkpoint location into a model answering `predict(inputs, parameters)`.
`check_framework` runs where a deploy is decided (before any process starts): an unknown
name is an invalid request, a known framework whose package is missing on this node is
RESOURCE_UNAVAILABLE — a node with vLLM installed serves it, one without says so.
"""

from __future__ import annotations

import importlib.util
import zlib
from typing import Any, Protocol

import numpy as np

from runtime.execution.serving.checkpoint import Checkpoint, read_checkpoint
from runtime.execution.serving.errors import FrameworkUnavailable, InvalidServingRequest

BUILTIN = "builtin"
VLLM = "vllm"
FRAMEWORKS = (BUILTIN, VLLM)
MAX_ROWS = 4096


def installed(name: str) -> bool:
    if name == BUILTIN:
        return True
    return importlib.util.find_spec(name) is not None


def check_framework(name: str | None) -> str:
    """The framework to run (default `builtin`); refuses unknown or missing ones."""
    name = (name or BUILTIN).strip().lower()
    if name not in FRAMEWORKS:
        raise InvalidServingRequest(
            f"framework {name!r} is unknown: use {' or '.join(FRAMEWORKS)}", field="config.framework"
        )
    if not installed(name):
        raise FrameworkUnavailable(
            f"framework {name!r} is not installed on this node (pip install {name}); "
            "`builtin` serves on the CPU",
            framework=name,
        )
    return name


class Model(Protocol):
    def predict(self, inputs: Any, parameters: dict[str, Any]) -> Any: ...

    def describe(self) -> dict[str, Any]: ...


def _text_features(text: str, width: int) -> np.ndarray:
    """A text as numbers the matrix can take: its bytes hashed into `width` buckets."""
    row = np.zeros(width, dtype=np.float32)
    for token in text.split():
        row[zlib.crc32(token.encode()) % width] += 1.0
    return row


class BuiltinModel:
    """outputs = inputs · weight + bias with the checkpoint's tensors (a real computation on
    the bytes that were loaded: another checkpoint gives other answers)."""

    def __init__(self, checkpoint: Checkpoint) -> None:
        self.weight = np.asarray(checkpoint.weight, dtype=np.float32)
        bias = checkpoint.tensors.get("bias")
        self.bias = (
            np.asarray(bias, dtype=np.float32)
            if bias is not None
            else np.zeros(self.weight.shape[1], np.float32)
        )
        self.metadata = checkpoint.metadata

    @classmethod
    def load(cls, data: bytes | bytearray | memoryview) -> BuiltinModel:
        return cls(read_checkpoint(data))

    def _matrix(self, inputs: Any) -> tuple[np.ndarray, bool]:
        width = self.weight.shape[0]
        if isinstance(inputs, str):
            return _text_features(inputs, width)[None, :], True
        if isinstance(inputs, list) and inputs and all(isinstance(x, str) for x in inputs):
            if len(inputs) > MAX_ROWS:
                raise InvalidServingRequest(f"at most {MAX_ROWS} inputs per request", field="inputs")
            return np.stack([_text_features(x, width) for x in inputs]), False
        try:
            array = np.asarray(inputs, dtype=np.float32)
        except (TypeError, ValueError):
            raise InvalidServingRequest(
                "inputs must be text, a list of texts, or numbers (a vector or a matrix)", field="inputs"
            ) from None
        single = array.ndim == 1
        if single:
            array = array[None, :]
        if array.ndim != 2 or array.shape[1] != width or array.shape[0] == 0:
            raise InvalidServingRequest(
                f"inputs must have {width} numbers per row (got shape {list(array.shape)})", field="inputs"
            )
        if array.shape[0] > MAX_ROWS:
            raise InvalidServingRequest(f"at most {MAX_ROWS} rows per request", field="inputs")
        if not np.all(np.isfinite(array)):
            raise InvalidServingRequest("inputs must be finite numbers", field="inputs")
        return array, single

    def predict(self, inputs: Any, parameters: dict[str, Any]) -> Any:
        matrix, single = self._matrix(inputs)
        out = matrix @ self.weight + self.bias
        return out[0].tolist() if single else out.tolist()

    def describe(self) -> dict[str, Any]:
        return {
            "framework": BUILTIN,
            "in_dim": int(self.weight.shape[0]),
            "out_dim": int(self.weight.shape[1]),
        }


class VllmModel:  # pragma: no cover - needs vLLM and a GPU model directory
    """vLLM's offline engine on a model directory (the location's path)."""

    def __init__(self, path: str) -> None:
        import vllm

        self._vllm = vllm
        self.llm = vllm.LLM(model=path)

    def predict(self, inputs: Any, parameters: dict[str, Any]) -> Any:
        prompts = [inputs] if isinstance(inputs, str) else list(inputs)
        params = self._vllm.SamplingParams(max_tokens=int(parameters.get("max_new_tokens", 16)))
        return [choice.outputs[0].text for choice in self.llm.generate(prompts, params)]

    def describe(self) -> dict[str, Any]:
        return {"framework": VLLM}
