"""Random streams keyed by purpose, for reproducible runs and common random numbers."""

from __future__ import annotations

import zlib

import numpy as np


def rng_for(seed: int, replication: int, tag: str, index: int = 0) -> np.random.Generator:
    """An independent random stream per (replication, purpose, index).

    Streams are keyed by purpose rather than drawn in sequence, so two runs that differ only
    in node counts see the same arrivals and service times (common random numbers), which
    makes the planner's comparisons much less noisy.
    """
    key = (replication, zlib.crc32(tag.encode()), index)
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=key))
