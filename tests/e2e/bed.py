"""What the test-bed tests need on the machine, and their verdict when it is not there."""

from __future__ import annotations

import os
import shutil

import pytest

from bench.cluster import POSTGRES_ADMIN_URL
from loadtest.chaos.suite import postgres_problem


def require_bed() -> None:
    """Skip (fail when CI is set) without redis-server or PostgreSQL, naming what is missing."""
    missing = []
    if shutil.which("redis-server") is None:
        missing.append("redis-server is not on PATH (apt-get install redis-server)")
    if problem := postgres_problem(POSTGRES_ADMIN_URL):
        missing.append(problem)
    if missing:
        message = "the test-bed needs " + "; ".join(missing)
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
