"""The chaos suite at its small size: every fault scenario loses no task and finishes none twice.

It runs real processes: its own redis-server, a PostgreSQL database of its own on
127.0.0.1:5432 (or GREY_TEST_POSTGRES_URL), `grey serve` gateways and a `grey worker`.
Without redis-server or PostgreSQL it is skipped with a message naming what is missing,
and fails when CI is set. About two minutes on two cores when every scenario passes.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bench.cluster import POSTGRES_ADMIN_URL
from loadtest.chaos.suite import postgres_problem
from tests.e2e.conftest import ROOT


def _missing() -> list[str]:
    missing = []
    if shutil.which("redis-server") is None:
        missing.append("redis-server is not on PATH (apt-get install redis-server)")
    if problem := postgres_problem(POSTGRES_ADMIN_URL):
        missing.append(problem)
    return missing


def test_chaos_suite_small_size_loses_nothing(tmp_path: Path) -> None:
    if missing := _missing():
        message = "the chaos suite needs " + "; ".join(missing)
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    result = tmp_path / "chaos.json"
    done = subprocess.run(
        [sys.executable, "-m", "loadtest.chaos", "--size", "small", "--json", str(result)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.exists(), f"no result (exit {done.returncode}):\n{done.stdout}\n{done.stderr}"
    report = json.loads(result.read_text())
    outcomes = report["outcomes"]
    assert {o["scenario"] for o in outcomes} >= {
        "postgres-refuses",
        "redis-restart-empty",
        "broker-down-burst",
        "gateway-sigterm",
        "sqlite-disk-full",
        "worker-kill9",
        "gateway-kill9",
        "redis-kill9",
    }
    # Only the disk-full scenario may be skipped, and only when no tmpfs can be mounted here.
    not_run = [o for o in outcomes if o["result"] == "not run"]
    assert all(o["scenario"] == "sqlite-disk-full" for o in not_run), not_run
    bad = [o for o in outcomes if o["result"] not in ("pass", "not run")]
    evidence = "\n".join(
        f"{o['store']} {o['scenario']}: {'; '.join(o['reasons'])}\n    " + "\n    ".join(o["evidence"][:6])
        for o in bad
    )
    assert not bad, f"\n{report['markdown']}\n\n{evidence}\n(logs: {report['logs']})"
    for outcome in outcomes:
        if outcome["result"] == "pass":
            assert outcome["lost"] == 0 and outcome["finished_twice"] == 0
            assert outcome["tasks"] > 0 and outcome["recovery_seconds"] is not None
    assert done.returncode == 0, done.stdout[-4000:]
