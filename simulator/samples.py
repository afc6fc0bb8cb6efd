"""Measured service times read from a file (the `empirical` distribution), read once per path."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from runtime.config import ConfigError

_samples_cache: dict[str, np.ndarray] = {}


def read_samples(path: str | Path) -> np.ndarray:
    """Measured service times, one non-negative number per line (`#` starts a comment)."""
    key = str(path)
    if key in _samples_cache:
        return _samples_cache[key]
    p = Path(path)
    try:
        lines = p.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ConfigError(p, [("", f"cannot read sample file: {exc.strerror or exc}")]) from exc
    values: list[float] = []
    for lineno, raw in enumerate(lines, start=1):
        text = raw.split("#", 1)[0].strip()
        if not text:
            continue
        try:
            v = float(text)
        except ValueError:
            what = f"expected a number of seconds, got {text!r}"
            raise ConfigError(p, [(f"line {lineno}", what)]) from None
        if not math.isfinite(v) or v < 0:
            what = f"expected a finite number >= 0, got {text!r}"
            raise ConfigError(p, [(f"line {lineno}", what)])
        values.append(v)
    if not values:
        raise ConfigError(p, [("", "expected at least one sample, the file has none")])
    arr = np.asarray(values, dtype=float)
    _samples_cache[key] = arr
    return arr
