"""`python -m loadtest.websocket`, small: it starts `grey serve`, holds its clients, and
reports messages, delivery latency and the server's RSS and descriptors from /proc."""

from __future__ import annotations

import csv
import re
import subprocess
import sys
from pathlib import Path

from tests.e2e.conftest import ROOT


def _fds(out: str) -> dict[str, int]:
    return {
        when: int(n)
        for when, n in re.findall(r"server (before|during|after)[^\n]*?RSS\s+[\d.]+ MiB\s+fds (\d+)", out)
    }


def test_the_websocket_load_run_reports_its_figures_and_the_server_lets_go_of_its_sockets(
    tmp_path: Path,
) -> None:
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "loadtest.websocket",
            "--clients",
            "20",
            "--seconds",
            "4",
            "--event-every",
            "0.5",
            "--out",
            str(tmp_path),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    out = run.stdout
    assert "connected 20, failed 0" in out
    assert re.search(r"event delivery \(\d+ receipts\): p50 [\d.]+ ms, p95 [\d.]+ ms", out), out
    fds = _fds(out)
    assert fds["during"] >= fds["before"] + 20  # a socket per client while they listen
    assert fds["after"] < fds["during"] - 15  # and closed with them
    assert (tmp_path / "websocket.png").stat().st_size > 0


def test_the_locust_mode_runs_the_locust_users_and_reports_their_figures(tmp_path: Path) -> None:
    run = subprocess.run(
        [
            *(sys.executable, "-m", "loadtest.websocket", "--locust"),
            *("--clients", "15", "--seconds", "5", "--ramp", "50", "--event-every", "0.5"),
            *("--out", str(tmp_path)),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    out = run.stdout
    assert "connected 15, failed 0" in out, out
    assert re.search(r"locust: users reached 15, exit code 0, .* failures 0, exceptions 0", out), out
    with (tmp_path / "websocket_locust_stats.csv").open(newline="") as handle:
        rows = {row["Name"]: row for row in csv.DictReader(handle)}
    assert rows["connect"]["Request Count"] == "15" and rows["connect"]["Failure Count"] == "0"
    # every user got the worker events the run made, each with an age (its p95) in the table
    assert int(rows["worker_registered"]["Request Count"]) >= 15 * 2
    assert int(rows["worker_disconnected"]["Request Count"]) >= 15 * 2
    assert re.search(r"locust worker_registered: \d+ \(0 failed\), message age p50 \d+ ms, p95 \d+ ms", out)
    fds = _fds(out)
    assert fds["during"] >= fds["before"] + 15  # the users' sockets, held
    assert fds["after"] < fds["during"] - 10
    assert (tmp_path / "websocket.png").stat().st_size > 0
