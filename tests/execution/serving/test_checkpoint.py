"""The shared test checkpoint: exact size, real safetensors, weights from the seed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file

from runtime.execution.serving.checkpoint import MIN_BYTES, make_checkpoint, read_checkpoint, weights


@pytest.mark.parametrize("size", [MIN_BYTES, MIN_BYTES + 1, MIN_BYTES + 5, 4096, 1_000_003])
def test_checkpoint_is_exactly_the_size_asked_and_loads_with_safetensors(tmp_path: Path, size: int) -> None:
    path = make_checkpoint(tmp_path / "c.safetensors", size, seed=3)
    assert path.stat().st_size == size
    tensors = load_file(str(path))
    weight, bias = weights(3)
    assert np.array_equal(tensors["weight"], weight)
    assert np.array_equal(tensors["bias"], bias)
    assert np.array_equal(read_checkpoint(path.read_bytes()).weight, weight)


def test_seeds_give_different_weights_and_the_same_seed_the_same_bytes(tmp_path: Path) -> None:
    a = make_checkpoint(tmp_path / "a", 8192, seed=1).read_bytes()
    b = make_checkpoint(tmp_path / "b", 8192, seed=1).read_bytes()
    c = make_checkpoint(tmp_path / "c", 8192, seed=2).read_bytes()
    assert a == b
    assert a != c


def test_a_size_below_the_smallest_checkpoint_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="below the smallest"):
        make_checkpoint(tmp_path / "x", MIN_BYTES - 1)


def test_bytes_that_are_not_safetensors_are_refused() -> None:
    from runtime.execution.serving.checkpoint import CheckpointError

    with pytest.raises(CheckpointError):
        read_checkpoint(b"\xff" * 64)
