"""The test checkpoint: a real safetensors file whose weights the built-in runner computes with.

`make_checkpoint(path, size_bytes, seed)` writes a file of exactly `size_bytes` bytes (at
least `MIN_BYTES`): tensors `weight` (float32, IN_DIM × OUT_DIM) and `bias` (float32,
OUT_DIM) drawn from `seed`, and `filler` (uint8) making up the size, so one generator
serves the tests (a few KiB) and the cold-start benchmark (GiBs) alike. It streams the
bytes (memory stays at one block whatever the size) and needs only numpy: the serving
side loads it with the `safetensors` library, or with `read_checkpoint` here when that
is not installed. The format is safetensors' own: an 8-byte little-endian header length,
a JSON header (padded with spaces to 8 bytes), then the tensors' bytes back to back.
"""

from __future__ import annotations

import hashlib
import json
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

IN_DIM = 16
OUT_DIM = 8
FORMAT = "grey-test-checkpoint"
BLOCK_BYTES = 8 * 1024 * 1024
_DTYPES = {"F32": np.float32, "U8": np.uint8, "F16": np.float16, "I64": np.int64, "I32": np.int32}


def _header(filler: int, seed: int) -> bytes:
    weight = IN_DIM * OUT_DIM * 4
    bias = OUT_DIM * 4
    tensors = {
        "__metadata__": {"format": FORMAT, "seed": str(seed), "in_dim": str(IN_DIM), "out_dim": str(OUT_DIM)},
        "weight": {"dtype": "F32", "shape": [IN_DIM, OUT_DIM], "data_offsets": [0, weight]},
        "bias": {"dtype": "F32", "shape": [OUT_DIM], "data_offsets": [weight, weight + bias]},
        "filler": {"dtype": "U8", "shape": [filler], "data_offsets": [weight + bias, weight + bias + filler]},
    }
    raw = json.dumps(tensors, separators=(",", ":")).encode()
    return raw + b" " * (-len(raw) % 8)


def _layout(size_bytes: int, seed: int) -> tuple[bytes, int]:
    """The header and the filler length that make the file exactly `size_bytes`."""
    fixed = IN_DIM * OUT_DIM * 4 + OUT_DIM * 4
    filler = 0
    for _ in range(8):  # the header's length depends on the filler's digits: a fixpoint
        header = _header(filler, seed)
        wanted = size_bytes - 8 - len(header) - fixed
        if wanted < 0:
            raise ValueError(f"size_bytes {size_bytes} is below the smallest checkpoint ({min_bytes(seed)})")
        if wanted == filler:
            return header, filler
        filler = wanted
    # The header shrank or grew by a digit each turn: pad it with spaces to close the gap.
    header = _header(filler, seed)
    gap = size_bytes - 8 - len(header) - fixed - filler
    if gap < 0:
        filler += gap
        header = _header(filler, seed)
        gap = size_bytes - 8 - len(header) - fixed - filler
    return header + b" " * gap, filler


def min_bytes(seed: int = 0) -> int:
    return 8 + len(_header(0, seed)) + IN_DIM * OUT_DIM * 4 + OUT_DIM * 4


MIN_BYTES = min_bytes()


def weights(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The weight matrix and bias a checkpoint of `seed` holds (what tests expect back)."""
    rng = np.random.default_rng(seed)
    weight = rng.standard_normal((IN_DIM, OUT_DIM), dtype=np.float32)
    bias = rng.standard_normal(OUT_DIM, dtype=np.float32)
    return weight, bias


def make_checkpoint(path: str | Path, size_bytes: int, seed: int = 0) -> Path:
    """Writes the checkpoint of `seed` at `path`, exactly `size_bytes` long; returns the path."""
    path = Path(path)
    header, filler = _layout(int(size_bytes), seed)
    weight, bias = weights(seed)
    rng = np.random.default_rng(seed + 1)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as out:
        out.write(struct.pack("<Q", len(header)))
        out.write(header)
        out.write(weight.astype("<f4").tobytes())
        out.write(bias.astype("<f4").tobytes())
        left = filler
        while left > 0:
            n = min(left, BLOCK_BYTES)
            out.write(rng.integers(0, 256, n, dtype=np.uint8).tobytes())
            left -= n
    return path


def sha256_of(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as source:
        while block := source.read(BLOCK_BYTES):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class Checkpoint:
    """The tensors of a loaded checkpoint and its metadata."""

    tensors: dict[str, np.ndarray]
    metadata: dict[str, str]

    @property
    def weight(self) -> np.ndarray:
        return self.tensors["weight"]

    @property
    def bias(self) -> np.ndarray:
        return self.tensors["bias"]


class CheckpointError(ValueError):
    """The bytes are not a safetensors checkpoint with a `weight` matrix."""


def read_checkpoint(data: bytes | bytearray | memoryview) -> Checkpoint:
    """Parses safetensors bytes (no copy of the tensors' bytes: views into `data`)."""
    view = memoryview(data)
    if len(view) < 8:
        raise CheckpointError("too short for a safetensors header")
    (length,) = struct.unpack("<Q", view[:8])
    if length > len(view) - 8 or length > 100 * 1024 * 1024:
        raise CheckpointError("safetensors header length is out of range")
    try:
        header = json.loads(bytes(view[8 : 8 + length]))
    except ValueError as error:
        raise CheckpointError(f"safetensors header is not JSON: {error}") from None
    if not isinstance(header, dict):
        raise CheckpointError("safetensors header is not an object")
    base = 8 + length
    metadata = {str(k): str(v) for k, v in (header.pop("__metadata__", None) or {}).items()}
    tensors: dict[str, np.ndarray] = {}
    for name, spec in header.items():
        try:
            dtype = np.dtype(_DTYPES[spec["dtype"]]).newbyteorder("<")
            start, end = (int(x) for x in spec["data_offsets"])
            shape = tuple(int(x) for x in spec["shape"])
        except (KeyError, TypeError, ValueError):
            raise CheckpointError(f"tensor {name!r}: unsupported or malformed entry") from None
        if not 0 <= start <= end <= len(view) - base:
            raise CheckpointError(f"tensor {name!r}: offsets out of range")
        array = np.frombuffer(view[base + start : base + end], dtype=dtype)
        if array.size != int(np.prod(shape)):
            raise CheckpointError(f"tensor {name!r}: shape does not match its bytes")
        tensors[name] = array.reshape(shape)
    if "weight" not in tensors or tensors["weight"].ndim != 2:
        raise CheckpointError("checkpoint has no 2-D `weight` tensor")
    return Checkpoint(tensors, metadata)
